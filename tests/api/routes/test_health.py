"""``GET /healthz`` (propsync.api.routes.health) through the real app: liveness, what the server
reads and the journal's state; 503 once the journal cannot take records."""

from __future__ import annotations

from pathlib import Path

import httpx

from propsync.config import Settings
from propsync.store.warehouse import Warehouse
from tests.api.conftest import TOKEN, batch_url, customers_command, serve_in_process, service_app
from tests.helpers import apply, wait_for


def test_a_fresh_service_is_ok_with_an_empty_journal(app_url: str) -> None:
    r = httpx.get(f"{app_url}/healthz")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.json() == {
        "status": "ok",
        "published_version": 0,
        "serving": {"version": 0, "indexed": False, "segments": None},
        "journal": {
            "segments": 0,
            "live_segments": 0,
            "unapplied_bytes": 0,
            "records_written": 0,
            "fsyncs": 0,
            "write_errors": 0,
        },
    }


def test_the_journal_counts_follow_tracking_and_a_closed_journal_is_503(tmp_path: Path) -> None:
    app = service_app(tmp_path / "warehouse")
    with serve_in_process(app) as url:
        command = customers_command({"registered": "a"}, {"p": 1})
        assert httpx.post(url + batch_url(TOKEN), json={"commands": [command]}).status_code == 200
        journal = httpx.get(f"{url}/healthz").json()["journal"]
        assert journal["records_written"] == 1 and journal["fsyncs"] >= 1
        assert (journal["segments"], journal["live_segments"]) == (1, 1)
        assert journal["unapplied_bytes"] > 0
        app.state.service.open_journal.close()  # as when the disk failed or the server stops
        r = httpx.get(f"{url}/healthz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"


def test_serving_shows_the_read_models_segments(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    settings = Settings(warehouse=root)
    apply(Warehouse(root), settings, "b1", [({"registered": "a"}, "p", 1, 1.7e9)])
    with serve_in_process(service_app(root)) as url:

        def serving() -> dict[str, object]:
            return dict(httpx.get(f"{url}/healthz").json()["serving"])

        wait_for(lambda: serving()["indexed"] is True)
        # Built from the published version: everything is in properties, no segment yet.
        assert serving()["segments"] == {"live": 0, "rows": 0, "fold": None}
        apply(Warehouse(root), settings, "b2", [({"registered": "a"}, "q", 2, 1.7e9)])
        apply(
            Warehouse(root),
            settings,
            "b3",
            [({"registered": f"n{i}"}, "p", i, 1.7e9) for i in range(3)],
        )
        wait_for(lambda: serving()["version"] == 3)
        segments = serving()["segments"]
        assert isinstance(segments, dict) and segments["rows"] == 4 and segments["fold"] is None
        assert segments["live"] in (1, 2)  # one follow each, or both runs in one
