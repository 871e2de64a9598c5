"""A user's edit of one customer's properties: ``propsync set``, ``PATCH /api/customers/...`` and
the profile page's form. An edit is a tracking command of kind ``edit`` stamped now, written under
one of the customer's ids, applied at once; where the caller cannot wait for the write lock (the
HTTP service), it journals the edit's record instead (``Edit.record``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from propsync.config import Settings
from propsync.errors import PropsyncError
from propsync.journal import Record, record_from_tracking
from propsync.operations.track import apply_commands
from propsync.store.apply import BatchResult
from propsync.store.read import Customer, CustomerRef
from propsync.store.warehouse import Warehouse
from propsync.tracking import TrackingBatch, finish_results, new_batch_id, parse_commands


class EditError(PropsyncError):
    """The edit was refused; ``errors`` are the command's. ``stage``: ``invalid`` (its values,
    nothing written), ``rejected`` (at apply time, e.g. a hard-id conflict: quarantined) or
    ``no_ids`` (the customer has no id to write it under)."""

    def __init__(self, message: str, *, stage: str, errors: list[str]) -> None:
        super().__init__(message, stage=stage, errors=errors)
        self.stage = stage
        self.errors = errors


def write_ids(
    ref: CustomerRef, customer: Customer | None, hard_id_types: tuple[str, ...]
) -> dict[str, str]:
    """The one id an edit is written under: the reference's own (``registered:alice``), else one
    of the customer's hard ids (in ``hard_id_types`` order), else its first id by type. A
    reference by internal id needs ``customer``; a typed one does not (an edit may create it)."""
    if ref.id_type is not None:
        return {ref.id_type: ref.value}
    if customer is None:
        raise ValueError("an edit by internal id needs the customer it names")
    for id_type in hard_id_types:
        if customer.ids.get(id_type):
            return {id_type: customer.ids[id_type][0]}
    if not customer.ids:
        message = f"customer {customer.customer_id} has no ids to edit through"
        raise EditError(message, stage="no_ids", errors=[message])
    id_type = sorted(customer.ids)[0]
    return {id_type: customer.ids[id_type][0]}


@dataclass(frozen=True)
class Edit:
    """A validated edit, ready to apply (``apply_edit``) or to journal (``record``)."""

    tracked: TrackingBatch
    commands: list[dict[str, Any]]

    @property
    def batch_id(self) -> str:
        return self.tracked.batch.batch_id

    @property
    def stamp_us(self) -> int:
        return self.tracked.receive_us

    def record(self) -> Record:
        """The edit as a journal record of kind ``edit`` (applied by the next journal apply)."""
        record = record_from_tracking(self.tracked, self.commands, kind="edit")
        assert record is not None  # a valid edit has its one command
        return record


def prepare_edit(
    ids: dict[str, str],
    properties: dict[str, Any],
    settings: Settings,
    *,
    stamp_us: int,
    source: str,
) -> Edit:
    """Validate ``properties`` as one ``customers`` command under ``ids``, stamped ``stamp_us``.
    Raises ``EditError`` (stage ``invalid``) with the command's errors."""
    commands = [{"name": "customers", "data": {"customer_ids": ids, "properties": properties}}]
    tb = parse_commands(
        {"commands": commands},
        receive_us=stamp_us,
        max_future_skew_us=settings.max_future_skew_us,
        batch_id=new_batch_id("edit"),
        source=source,
    )
    tb.batch.kind = "edit"
    result = tb.results[0]
    if not result["success"]:
        raise EditError("; ".join(result["errors"]), stage="invalid", errors=result["errors"])
    return Edit(tb, commands)


def apply_edit(warehouse: Warehouse, edit: Edit, settings: Settings) -> BatchResult:
    """Apply and publish the edit, waiting ``settings.lock_timeout_seconds`` for the write lock
    (``WarehouseLocked`` after that). Raises ``EditError`` (stage ``rejected``) when the apply
    refused its command."""
    applied = apply_commands(warehouse, edit.tracked.batch, settings)
    finish_results(edit.tracked, applied.rejections)
    result = edit.tracked.results[0]
    if not result["success"]:
        raise EditError("; ".join(result["errors"]), stage="rejected", errors=result["errors"])
    return applied
