"""Reading customers from the published version (propsync.store.read): references, the customer
with all its ids and properties, and the specification's GET body exactly."""

from __future__ import annotations

import json

import pytest

from propsync.config import Settings
from propsync.errors import UnknownCustomer
from propsync.store.read import Customer, CustomerRef, Property, get_customer, render_customer
from propsync.store.warehouse import Warehouse
from tests.helpers import apply


def test_a_reference_splits_at_the_first_colon_or_is_an_internal_id() -> None:
    assert CustomerRef.parse("email:a:b@x") == CustomerRef("email", "a:b@x")
    assert CustomerRef.parse("0" * 32) == CustomerRef(None, "0" * 32)
    assert CustomerRef.parse(":x") == CustomerRef("", "x")
    for text in ("email:a:b@x", "0" * 32):
        assert str(CustomerRef.parse(text)) == text


def test_a_customer_is_found_by_any_of_its_ids_or_its_internal_ids(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(
        warehouse,
        settings,
        "b1",
        [({"registered": "ann"}, "name", "Ann", 1.0), ({"cookie": "c1"}, "plan", "free", 2.0)],
    )
    with warehouse.connect_published() as con:
        old_cookie_customer = get_customer(con, CustomerRef("cookie", "c1")).customer_id
    # The cookie's customer is merged into Ann's.
    apply(warehouse, settings, "b2", [({"registered": "ann", "cookie": "c1"}, "age", 30, 3.0)])
    with warehouse.connect_published() as con:
        ann = get_customer(con, CustomerRef("registered", "ann"))
        assert get_customer(con, CustomerRef("cookie", "c1")) == ann
        assert get_customer(con, CustomerRef(None, ann.customer_id)) == ann
        assert get_customer(con, CustomerRef(None, old_cookie_customer)) == ann  # merged away
        with pytest.raises(UnknownCustomer) as info:
            get_customer(con, CustomerRef("registered", "nobody"))
    assert ann.ids == {"cookie": ["c1"], "registered": ["ann"]}
    assert sorted(ann.properties, key=lambda p: p.name) == [
        Property("age", "30", 3_000_000),
        Property("name", '"Ann"', 1_000_000),
        Property("plan", '"free"', 2_000_000),
    ]
    assert info.value.to_dict() == {
        "error": "UnknownCustomer",
        "message": "no customer 'registered:nobody'",
        "customer": "registered:nobody",
    }


def test_the_body_embeds_values_as_stored_and_timestamps_as_exact_decimals() -> None:
    customer = Customer(
        "c0ffee",
        {"registered": ["ann"], "cookie": ["k2", "k1"]},
        [
            Property("big", "12345678901234567890", 1_570_001_049_000_001),
            Property("name", '"Anna ž"', 1_570_001_049_000_000),
            Property("legacy", "null", None),
        ],
    )
    plain = render_customer(customer, include_timestamps=False)
    assert plain == (
        '{"properties": {"big": 12345678901234567890, "name": "Anna ž", "legacy": null},'
        ' "ids": {"cookie": ["k2", "k1"], "registered": ["ann"]}, "customer_id": "c0ffee"}'
    )
    timed = json.loads(render_customer(customer, include_timestamps=True), parse_float=str)
    assert timed["properties"] == {
        "big": {"value": 12345678901234567890, "last_update": "1570001049.000001"},
        "name": {"value": "Anna ž", "last_update": 1570001049},
        "legacy": {"value": None, "last_update": -1},
    }
