"""Identity resolution through the apply path: new, known, added and merged customers."""

from __future__ import annotations

import duckdb
import pytest

from propsync import identity
from propsync.config import Settings
from propsync.store.read import CustomerRef, get_customer
from propsync.store.warehouse import Warehouse
from tests.helpers import apply, ids_sets, props_of


def test_unknown_ids_create_one_customer_owning_all_of_them(
    warehouse: Warehouse, settings: Settings
) -> None:
    r = apply(warehouse, settings, "b1", [({"registered": "a", "cookie": "c1"}, "p", 1, 10)])
    assert r.customers_created == 1
    assert ids_sets(warehouse) == [{("registered", "a"), ("cookie", "c1")}]


def test_known_id_adds_new_ids_to_its_customer(warehouse: Warehouse, settings: Settings) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", 1, 10)])
    r = apply(warehouse, settings, "b2", [({"registered": "a", "cookie": "c2"}, "q", 2, 10)])
    assert (r.customers_created, r.customers_merged) == (0, 0)
    assert ids_sets(warehouse) == [{("registered", "a"), ("cookie", "c2")}]
    assert props_of(warehouse, "cookie", "c2") == {"p": (1, 10_000000), "q": (2, 10_000000)}


def test_ids_of_two_customers_merge_them_with_newer_wins(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(
        warehouse,
        settings,
        "b1",
        [
            ({"registered": "a"}, "name", "from a (newer)", 20),
            ({"registered": "a"}, "only_a", "x", 5),
            ({"cookie": "c"}, "name", "from cookie (older)", 10),
            ({"cookie": "c"}, "only_c", "y", 5),
        ],
    )
    with warehouse.connect_published() as con:
        old_cookie_customer = get_customer(con, CustomerRef("cookie", "c")).customer_id
    r = apply(warehouse, settings, "b2", [({"registered": "a", "cookie": "c"}, "seen", True, 30)])
    assert r.customers_merged == 1
    assert ids_sets(warehouse) == [{("registered", "a"), ("cookie", "c")}]
    assert props_of(warehouse, "registered", "a") == {
        "name": ("from a (newer)", 20_000000),
        "only_a": ("x", 5_000000),
        "only_c": ("y", 5_000000),
        "seen": (True, 30_000000),
    }
    # The internal id of the customer merged away keeps resolving.
    with warehouse.connect_published() as con:
        survivor = get_customer(con, CustomerRef("registered", "a")).customer_id
        assert get_customer(con, CustomerRef(None, old_cookie_customer)).customer_id == survivor


def test_merge_chains_keep_resolving_old_internal_ids(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(
        warehouse,
        settings,
        "b1",
        [({"cookie": "x"}, "p", 1, 1), ({"cookie": "y"}, "p", 2, 2), ({"cookie": "z"}, "p", 3, 3)],
    )
    with warehouse.connect_published() as con:
        originals = [get_customer(con, CustomerRef("cookie", c)).customer_id for c in "xyz"]
    apply(warehouse, settings, "b2", [({"cookie": "x", "email": "e"}, "q", 1, 1)])
    apply(warehouse, settings, "b3", [({"cookie": "y", "email": "e"}, "q", 1, 1)])
    apply(warehouse, settings, "b4", [({"cookie": "z", "email": "e"}, "q", 1, 1)])
    with warehouse.connect_published() as con:
        final = {get_customer(con, CustomerRef(None, c)).customer_id for c in originals}
    assert len(final) == 1
    assert props_of(warehouse, "email", "e")["p"] == (3, 3_000000)


def test_two_values_of_a_hard_id_are_never_merged(warehouse: Warehouse, settings: Settings) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a", "cookie": "c"}, "p", 1, 10)])
    r = apply(
        warehouse,
        settings,
        "b2",
        [
            ({"registered": "b", "cookie": "c"}, "p", 2, 20),
            ({"registered": "b"}, "q", 3, 20),
        ],
    )
    assert r.rows_rejected == 1
    [rej] = r.rejections.to_dicts()
    assert (
        rej["row_nr"] == 1
        and "registered='a'" in rej["reason"]
        and "registered='b'" in rej["reason"]
    )
    assert props_of(warehouse, "registered", "a") == {"p": (1, 10_000000)}
    assert props_of(warehouse, "registered", "b") == {"q": (3, 20_000000)}


def test_hard_conflict_inside_one_batch_rejects_the_row_that_causes_it(
    warehouse: Warehouse, settings: Settings
) -> None:
    r = apply(
        warehouse,
        settings,
        "b1",
        [
            ({"registered": "a", "cookie": "c"}, "p", 1, 10),
            ({"registered": "b", "cookie": "c"}, "p", 2, 10),
            ({"registered": "a", "registered2": "z"}, "p", 3, 5),
        ],
    )
    assert [row["row_nr"] for row in r.rejections.to_dicts()] == [2]
    assert ids_sets(warehouse) == [{("registered", "a"), ("cookie", "c"), ("registered2", "z")}]


def test_hard_id_types_are_configurable(warehouse: Warehouse, settings: Settings) -> None:
    soft = settings.model_copy(update={"hard_id_types": ("email",)})
    apply(warehouse, soft, "b1", [({"registered": "a", "cookie": "c"}, "p", 1, 10)])
    r = apply(warehouse, soft, "b2", [({"registered": "b", "cookie": "c"}, "p", 2, 20)])
    assert r.rows_rejected == 0
    assert ids_sets(warehouse) == [{("registered", "a"), ("registered", "b"), ("cookie", "c")}]


def test_id_values_are_case_sensitive(warehouse: Warehouse, settings: Settings) -> None:
    apply(
        warehouse,
        settings,
        "b1",
        [({"cookie": "Abc"}, "p", 1, 10), ({"cookie": "abc"}, "p", 2, 10)],
    )
    assert len(ids_sets(warehouse)) == 2


def test_an_otherwise_independent_row_with_a_contradicting_hard_id_is_rejected(
    warehouse: Warehouse, settings: Settings
) -> None:
    apply(warehouse, settings, "b1", [({"registered": "a", "cookie": "c"}, "p", 1, 10)])
    r = apply(
        warehouse,
        settings,
        "b2",
        [
            ({"registered": "x", "cookie": "x1"}, "p", 2, 20),  # new customer
            ({"registered": "b", "cookie": "c"}, "p", 3, 20),  # contradicts registered=a
            ({"registered": "a", "email": "a@x"}, "p", 4, 20),  # adds an id to the existing one
        ],
    )
    assert [row["row_nr"] for row in r.rejections.to_dicts()] == [2]
    assert (r.customers_created, r.properties_applied) == (1, 2)
    assert ids_sets(warehouse) == [
        {("registered", "a"), ("cookie", "c"), ("email", "a@x")},
        {("registered", "x"), ("cookie", "x1")},
    ]
    assert props_of(warehouse, "cookie", "c") == {"p": (4, 20_000000)}


def test_id_hashes_tail_is_sorted_when_due_and_every_id_stays_found(
    warehouse: Warehouse, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """id_hashes keeps new ids in an unsorted tail and rewrites itself in hash order once the tail
    reaches a quarter of the sorted rows (at least UNSORTED_ID_HASHES); lookups work either way,
    merges repoint the lookup rows too."""
    monkeypatch.setattr(identity, "UNSORTED_ID_HASHES", 3)
    for b in range(6):
        updates = [({"cookie": f"c{b}-{k}"}, "n", k, 1.0 + b) for k in range(4)]
        apply(warehouse, settings, f"b{b}", updates)
    apply(warehouse, settings, "merge", [({"cookie": "c0-0", "registered": "u"}, "n", 9, 50.0)])
    apply(warehouse, settings, "merge2", [({"cookie": "c1-1", "registered": "u"}, "n", 10, 60.0)])
    for b in range(6):  # every id resolves to its own customer: no customer is created again
        apply(warehouse, settings, f"again{b}", [({"cookie": f"c{b}-2"}, "m", b, 99.0)])
    with duckdb.connect(str(warehouse.work_path), read_only=True) as con:
        rows = con.execute("SELECT id_hash, customer_key FROM id_hashes").fetchall()
        sorted_rows = con.execute(
            "SELECT value FROM meta WHERE key = 'id_hashes_sorted_rows'"
        ).fetchall()
        missing = con.execute(
            "SELECT count(*) FROM id_keys ANTI JOIN id_hashes "
            "ON id_hashes.id_hash = id_hash(id_keys.id_type, id_keys.id_value) "
            "AND id_hashes.customer_key = id_keys.customer_key"
        ).fetchall()
        customers = con.execute("SELECT count(*) FROM customer_keys").fetchall()
    assert len(rows) == 6 * 4 + 1 and missing == [(0,)]
    assert sorted_rows and int(sorted_rows[0][0]) >= 12  # sorted at least once
    head = [h for h, _ in rows[: int(sorted_rows[0][0])]]
    assert head == sorted(head)
    assert customers == [(24,)]  # merged-away customers keep their keys; none was created anew
    merged = props_of(warehouse, "cookie", "c1-1")
    assert merged["n"][0] == 10 and props_of(warehouse, "registered", "u") == merged
    assert props_of(warehouse, "cookie", "c0-0") == merged


def test_an_id_whose_hash_collides_with_another_customers_id_is_not_theirs(
    warehouse: Warehouse, settings: Settings
) -> None:
    """Ids are looked up by a 64-bit hash and confirmed by their text: a hash shared with another
    customer's id (forged, or by chance) must not hand that customer's profile to the new id."""
    apply(warehouse, settings, "b1", [({"registered": "a"}, "p", "of a", 10)])
    con = duckdb.connect(str(warehouse.work_path))
    try:
        key_of_a = con.execute(
            "SELECT customer_key FROM id_keys WHERE id_type = 'registered' AND id_value = 'a'"
        ).fetchall()[0][0]
        # As if id_hash('registered', 'b') were also the hash of a's id.
        con.execute(
            "INSERT INTO id_hashes VALUES (id_hash('registered', 'b'), $key)", {"key": key_of_a}
        )
    finally:
        con.close()
    r = apply(warehouse, settings, "b2", [({"registered": "b"}, "p", "of b", 20)])
    assert (r.customers_created, r.customers_merged) == (1, 0)
    assert sorted(map(sorted, ids_sets(warehouse))) == [
        [("registered", "a")],
        [("registered", "b")],
    ]
    assert props_of(warehouse, "registered", "a") == {"p": ("of a", 10_000000)}
    assert props_of(warehouse, "registered", "b") == {"p": ("of b", 20_000000)}
