"""Tracking commands into the warehouse: the rules every path that applies them shares."""

from __future__ import annotations

from typing import Any

from propsync.batch import UpdateBatch
from propsync.config import Settings
from propsync.store.apply import BatchResult, apply_batch
from propsync.store.warehouse import Warehouse
from propsync.tracking import TrackingBatch, check_batch, finish_results, parse_commands

# Tracking and edits never fail a whole batch for some bad rows: each rejected command is answered
# (or logged) on its own and its rows are quarantined in the rejections table.
TRACKING_REJECT_RATIO = 1.0


def apply_commands(
    warehouse: Warehouse, batch: UpdateBatch, settings: Settings, *, publish: bool = True
) -> BatchResult:
    """Apply a batch built from tracking commands or edits (one row per command)."""
    return apply_batch(
        warehouse, batch, settings, max_reject_ratio=TRACKING_REJECT_RATIO, publish=publish
    )


def track_now(
    warehouse: Warehouse,
    settings: Settings,
    body: Any,
    *,
    max_commands: int,
    receive_us: int,
    source: str,
) -> TrackingBatch:
    """A tracking API batch body applied at once (``propsync track``), with one result per
    command as the HTTP service answers them. Raises ``tracking.BatchShapeError`` when the body
    is not a batch of at most ``max_commands`` commands (the HTTP service's check, word for word)."""
    check_batch(body, max_commands)
    tb = parse_commands(
        body,
        receive_us=receive_us,
        max_future_skew_us=settings.max_future_skew_us,
        source=source,
    )
    result = apply_commands(warehouse, tb.batch, settings)
    finish_results(tb, result.rejections)
    return tb
