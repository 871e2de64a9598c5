"""Edits (propsync.operations.edit) on a real warehouse: the id an edit is written under, its
validation, its apply as kind ``edit``, its refusals and its journal record."""

from __future__ import annotations

import duckdb
import pytest

from propsync.config import Settings
from propsync.journal import Record
from propsync.operations.edit import EditError, apply_edit, prepare_edit, write_ids
from propsync.operations.track import track_now
from propsync.store.read import Customer, CustomerRef, get_customer
from propsync.store.warehouse import Warehouse

NOW = 1_800_000_000_000_000


def customer(ids: dict[str, list[str]]) -> Customer:
    return Customer("c0ffee", ids, [])


def test_write_ids_follow_the_reference_then_hard_ids_then_the_first_type() -> None:
    hard = ("registered", "email")
    both = customer({"cookie": ["k2", "k1"], "email": ["e"], "registered": ["r"]})
    assert write_ids(CustomerRef("cookie", "k9"), None, hard) == {"cookie": "k9"}
    assert write_ids(CustomerRef("cookie", "k9"), both, hard) == {"cookie": "k9"}
    assert write_ids(CustomerRef(None, "c0ffee"), both, hard) == {"registered": "r"}
    assert write_ids(CustomerRef(None, "c0ffee"), both, ("email", "registered")) == {"email": "e"}
    soft = customer({"phone": ["p"], "cookie": ["k2", "k1"]})
    assert write_ids(CustomerRef(None, "c0ffee"), soft, hard) == {"cookie": "k2"}
    with pytest.raises(EditError) as exc:
        write_ids(CustomerRef(None, "c0ffee"), customer({}), hard)
    assert exc.value.stage == "no_ids" and "no ids" in exc.value.message
    with pytest.raises(ValueError):
        write_ids(CustomerRef(None, "c0ffee"), None, hard)


def test_an_invalid_edit_is_refused_before_anything_is_written(
    warehouse: Warehouse, settings: Settings
) -> None:
    with pytest.raises(EditError) as exc:
        prepare_edit({"registered": "a"}, {"": 1}, settings, stamp_us=NOW, source="test")
    assert exc.value.stage == "invalid" and exc.value.errors
    assert not warehouse.root.exists()


def test_an_edit_is_applied_as_kind_edit_stamped_and_published(
    warehouse: Warehouse, settings: Settings
) -> None:
    edit = prepare_edit(
        {"registered": "a"}, {"age": 33, "city": "Brno"}, settings, stamp_us=NOW, source="test"
    )
    assert edit.batch_id.startswith("edit-") and edit.stamp_us == NOW
    result = apply_edit(warehouse, edit, settings)
    assert (result.status, result.properties_applied) == ("applied", 2)
    assert result.published_version == warehouse.published_version()
    with warehouse.connect_published() as con:
        got = get_customer(con, CustomerRef("registered", "a"))
    assert {p.name: (p.value, p.update_ts) for p in got.properties} == {
        "age": ("33", NOW),
        "city": ('"Brno"', NOW),
    }
    with duckdb.connect(str(warehouse.work_path), read_only=True) as con:
        kinds = con.execute(
            "SELECT kind FROM batches WHERE batch_id = $b", {"b": edit.batch_id}
        ).fetchall()
    assert kinds == [("edit",)]


def test_an_edit_the_apply_rejects_raises_with_the_commands_errors(
    warehouse: Warehouse, settings: Settings
) -> None:
    # Two customers with different registered ids; an edit naming one's registered id and the
    # other's cookie would merge them, which the hard id forbids: rejected at apply time.
    tb = track_now(
        warehouse,
        settings,
        {
            "commands": [
                {"name": "customers", "data": {"customer_ids": {"registered": "a"}}},
                {
                    "name": "customers",
                    "data": {"customer_ids": {"registered": "b", "cookie": "kb"}},
                },
            ]
        },
        max_commands=50,
        receive_us=NOW,
        source="test",
    )
    assert [r["success"] for r in tb.results] == [True, True]
    edit = prepare_edit(
        {"registered": "a", "cookie": "kb"}, {"x": 1}, settings, stamp_us=NOW + 1, source="t"
    )
    with pytest.raises(EditError) as exc:
        apply_edit(warehouse, edit, settings)
    assert exc.value.stage == "rejected" and "registered" in exc.value.message


def test_an_edit_journals_as_a_record_of_kind_edit(settings: Settings) -> None:
    edit = prepare_edit({"registered": "a"}, {"x": 1}, settings, stamp_us=NOW, source="test")
    record = Record.decode(edit.record().encode().rstrip(b"\n"))
    assert record is not None
    assert record.kind == "edit" and record.batch_id == edit.batch_id
    assert [(cell[1], cell[2], cell[3]) for cell in record.cells] == [("x", "1", NOW)]
