"""Operations: ``GET /healthz``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from propsync.api.deps import ServiceDep
from propsync.api.errors import NO_STORE, json_response
from propsync.journal import journal_status
from propsync.store.read_model import SegmentsState

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and journal state")
def healthz(service: ServiceDep) -> Response:
    journal = service.open_journal
    ok = journal is not None and journal.healthy
    status = journal_status(service.warehouse.root)
    body = {
        "status": "ok" if ok else "unavailable",
        "published_version": service.warehouse.published_version(),
        # What this server process reads from: the read model (indexed) or, until it is built,
        # the plain published file.
        "serving": {
            "version": service.reader.version,
            "indexed": service.reader.indexed,
            "segments": _segments(service.reader.segments()),
        },
        "journal": {
            "segments": status.segments,
            "live_segments": status.live_segments,
            "unapplied_bytes": status.unapplied_bytes,
            "records_written": journal.stats.records if journal else 0,
            "fsyncs": journal.stats.syncs if journal else 0,
            "write_errors": journal.stats.errors if journal else 0,
        },
    }
    return json_response(200 if ok else 503, body, NO_STORE)


def _segments(state: SegmentsState | None) -> dict[str, object] | None:
    """The read model's recent segments (docs/warehouse.md#the-read-model): how many a GET
    probes, their rows, and a fold's progress (null when none is under way)."""
    if state is None:
        return None
    fold = None if state.fold is None else {"slices_done": state.fold[0], "slices": state.fold[1]}
    return {"live": state.segments, "rows": state.rows, "fold": fold}
