"""Tracking commands applied at once (propsync.operations.track) on a real warehouse: one result
per command, the HTTP service's batch check, and rejections that fail only their command."""

from __future__ import annotations

import pytest

from propsync.config import Settings
from propsync.operations.track import track_now
from propsync.store.read import CustomerRef, get_customer
from propsync.store.warehouse import Warehouse
from propsync.tracking import BatchShapeError

NOW = 1_800_000_000_000_000


def command(ids: dict[str, str], **properties: object) -> dict[str, object]:
    return {"name": "customers", "data": {"customer_ids": ids, "properties": properties}}


def test_a_batch_applies_its_valid_commands_and_answers_each(
    warehouse: Warehouse, settings: Settings
) -> None:
    body = {
        "commands": [
            command({"registered": "a"}, age=1),
            {"name": "nonsense"},
            command({"registered": "b"}, age=2),
        ]
    }
    tb = track_now(warehouse, settings, body, max_commands=3, receive_us=NOW, source="test")
    assert [r["success"] for r in tb.results] == [True, False, True]
    assert tb.batch.kind == "track"
    with warehouse.connect_published() as con:
        got = get_customer(con, CustomerRef("registered", "b"))
    assert [(p.name, p.value, p.update_ts) for p in got.properties] == [("age", "2", NOW)]


def test_more_commands_than_allowed_is_a_shape_error_and_writes_nothing(
    warehouse: Warehouse, settings: Settings
) -> None:
    body = {"commands": [command({"registered": "a"}, age=1)] * 3}
    with pytest.raises(BatchShapeError) as exc:
        track_now(warehouse, settings, body, max_commands=2, receive_us=NOW, source="test")
    assert exc.value.name == "TooManyCommands" and "at most 2" in str(exc.value)
    assert not warehouse.root.exists()


def test_a_command_the_apply_rejects_fails_alone(warehouse: Warehouse, settings: Settings) -> None:
    first = {
        "commands": [command({"registered": "a"}), command({"registered": "b", "cookie": "k"})]
    }
    track_now(warehouse, settings, first, max_commands=50, receive_us=NOW, source="test")
    # The first command would merge a and b, which hold different registered ids: rejected; the
    # second applies in the same batch.
    body = {
        "commands": [
            command({"registered": "a", "cookie": "k"}, x=1),
            command({"registered": "c"}, x=2),
        ]
    }
    tb = track_now(warehouse, settings, body, max_commands=50, receive_us=NOW + 1, source="test")
    assert tb.results[0]["success"] is False and "registered" in tb.results[0]["errors"][0]
    assert tb.results[1] == {"success": True}
    with warehouse.connect_published() as con:
        c = get_customer(con, CustomerRef("registered", "c"))
        a = get_customer(con, CustomerRef("registered", "a"))
    assert [p.name for p in c.properties] == ["x"] and a.properties == []
