"""The in-transaction audits (sql/audit/*.sql) against a real in-memory DuckDB, full and sampled."""

from __future__ import annotations

from typing import Any, cast

import duckdb
import pytest

from propsync import sql
from propsync.store.apply import (
    _audit_modulus,
    _merge_staged,
    audit_merged,
    audit_problems,
    stored_rows,
)


def connect(*, batch_ids: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse schema and ``staged_properties``: with a batch id per row (the
    audits read either shape), or without (a batch's own updates, as ``_merge_staged`` takes
    them with a ``batch_id``)."""
    c = duckdb.connect()
    for statement in sql.schema_statements():
        c.execute(statement)
    c.execute(
        "CREATE TEMP TABLE staged_properties "
        "(customer_key BIGINT, property_id INTEGER, value VARCHAR, update_ts BIGINT"
        + (", batch_id VARCHAR)" if batch_ids else ")")
    )
    return c


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return connect()


def audit(con: duckdb.DuckDBPyConnection, *args: Any, **kwargs: Any) -> list[str]:
    """The problems ``audit_merged``'s counts make, as ``apply_batch`` words them."""
    return audit_problems(audit_merged(con, *args, **kwargs))


def customers_in_and_out_of_sample(con: duckdb.DuckDBPyConnection, modulus: int) -> tuple[int, int]:
    rows = con.execute(
        "SELECT i AS c, hash(i) % $m = 0 AS sampled FROM range(1, 200) t(i)",
        {"m": modulus},
    ).fetchall()
    return next(c for c, s in rows if s), next(c for c, s in rows if not s)


def add_id(con: duckdb.DuckDBPyConnection, customer: int) -> None:
    con.execute("INSERT INTO id_keys VALUES ('registered', 'r' || $c, $c, 'b')", {"c": customer})


def test_a_consistent_merge_passes_in_full_and_sampled(con: duckdb.DuckDBPyConnection) -> None:
    for i in range(1, 21):
        add_id(con, i)
        con.execute("INSERT INTO property_values VALUES ($c, 1, '\"new\"', 2, 'b')", {"c": i})
        con.execute("INSERT INTO staged_properties VALUES ($c, 1, '\"old\"', 1, 'b')", {"c": i})
    assert audit(con, 1) == audit(con, 3) == []
    # The audit's own temp tables are gone: nothing of it stays in the transaction.
    assert not con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'audit_%'"
    ).fetchall()


def test_a_stale_stored_value_is_found_in_full_and_in_a_sample_that_holds_it(
    con: duckdb.DuckDBPyConnection,
) -> None:
    inside, outside = customers_in_and_out_of_sample(con, 4)
    for customer in (inside, outside):
        add_id(con, customer)
        # The merge "forgot" this newer update: the stored value is older than the staged one.
        con.execute(
            "INSERT INTO property_values VALUES ($c, 1, '\"old\"', 1, 'b')", {"c": customer}
        )
        con.execute(
            "INSERT INTO staged_properties VALUES ($c, 1, '\"new\"', 2, 'b')", {"c": customer}
        )
    assert audit(con, 1) == ["2 incoming updates not reflected by newer-wins"]
    assert audit(con, 4) == ["1 incoming updates not reflected by newer-wins"]
    con.execute("DELETE FROM property_values WHERE customer_key = $c", {"c": inside})
    assert audit(con, 4) == ["1 incoming updates not reflected by newer-wins"]  # missing
    con.execute("INSERT INTO property_values VALUES ($c, 1, '\"new\"', 2, 'b')", {"c": inside})
    assert audit(con, 4) == []  # the error outside the sample is unseen
    assert audit(con, 1) == ["1 incoming updates not reflected by newer-wins"]


def test_duplicate_keys_and_orphans_are_counted_for_sampled_customers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    inside, outside = customers_in_and_out_of_sample(con, 3)
    for customer in (inside, outside):
        con.execute(
            "INSERT INTO property_values VALUES ($c, 1, '1', 5, 'b'), ($c, 1, '2', 5, 'b')",
            {"c": customer},
        )
        con.execute("INSERT INTO staged_properties VALUES ($c, 1, '2', 5, 'b')", {"c": customer})
    # The duplicate's lower value ('1' < '2' at the same time) also fails newer-wins.
    assert audit_merged(con, 1) == {
        "duplicate_keys": 2,
        "incoming_not_dominated": 2,
        "customers_without_id": 2,
    }
    assert audit(con, 1) == [
        "2 duplicate (customer, property) keys",
        "2 incoming updates not reflected by newer-wins",
        "2 customers without any id",
    ]
    assert audit(con, 3) == [
        "1 duplicate (customer, property) keys",
        "1 incoming updates not reflected by newer-wins",
        "1 customers without any id",
    ]
    add_id(con, inside)
    assert audit(con, 3) == [
        "1 duplicate (customer, property) keys",
        "1 incoming updates not reflected by newer-wins",
    ]


@pytest.mark.parametrize(
    ("staged", "full_max", "modulus"), [(0, 10, 1), (10, 10, 1), (11, 10, 2), (95, 10, 10)]
)
def test_the_sample_shrinks_as_the_batch_grows(
    con: duckdb.DuckDBPyConnection, staged: int, full_max: int, modulus: int
) -> None:
    assert _audit_modulus(staged, full_max) == modulus


def small_batch(con: duckdb.DuckDBPyConnection, customers: int) -> None:
    """Stored: one old row per customer; staged: batch B's newer update of each; the copy of the
    stored rows taken as a small batch's merge takes it (sql/apply/stored_of_batch.sql), and the
    winners with the stored rows they beat (sql/apply/winning_batch_properties.sql)."""
    for c in range(1, customers + 1):
        add_id(con, c)
        con.execute("INSERT INTO property_values VALUES ($c, 1, '\"old\"', 1, 'A')", {"c": c})
        con.execute("INSERT INTO staged_properties VALUES ($c, 1, '\"new\"', 2, 'B')", {"c": c})
    con.execute(sql.load("apply/stored_of_batch"))
    con.execute(sql.load("apply/winning_batch_properties"))


def test_a_small_batch_is_audited_on_the_rows_it_kept_and_inserted(
    con: duckdb.DuckDBPyConnection,
) -> None:
    small_batch(con, 3)
    con.execute("DELETE FROM property_values WHERE customer_key IN (1, 2, 3)")
    con.execute(
        "INSERT INTO property_values SELECT customer_key, 1, value, 2, 'B' FROM staged_properties"
    )
    assert audit(con, 1, small_batch_id="B") == []
    assert audit(con, 1) == []  # the scan agrees


def test_a_small_batch_reads_back_its_inserts_from_the_first_row_id_they_got(
    con: duckdb.DuckDBPyConnection,
) -> None:
    small_batch(con, 3)
    con.execute("DELETE FROM property_values WHERE customer_key IN (1, 2, 3)")
    first = stored_rows(con, "property_values")
    con.execute(
        "INSERT INTO property_values SELECT customer_key, 1, value, 2, 'B' FROM staged_properties"
    )
    inserted = con.execute("SELECT min(rowid), max(rowid) FROM property_values").fetchall()[0]
    assert first <= inserted[0] and inserted[1] - inserted[0] == 2
    assert audit(con, 1, small_batch_id="B", first_new_row=first) == []
    # Rows before first_new_row are not read back: an insert there counts as missing.
    assert audit(con, 1, small_batch_id="B", first_new_row=inserted[0] + 1) == [
        "1 incoming updates not reflected by newer-wins"
    ]


def test_a_small_batch_audit_finds_a_missed_insert(con: duckdb.DuckDBPyConnection) -> None:
    small_batch(con, 3)
    # Customer 2: the new row was not inserted; customers 1 and 3: merged right.
    con.execute("DELETE FROM property_values")
    con.execute(
        "INSERT INTO property_values SELECT customer_key, 1, value, 2, 'B' FROM staged_properties "
        "WHERE customer_key <> 2"
    )
    expected = ["1 incoming updates not reflected by newer-wins"]
    assert audit(con, 1, small_batch_id="B") == expected
    assert audit(con, 1) == expected  # the scan finds the same


def test_a_small_batch_audit_counts_on_its_delete_which_is_checked_instead(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The read-back trusts that the beaten rows are gone (no scan of every row id): a delete that
    left one in place is caught by its count (``_merge_staged``'s third result), not by it."""
    small_batch(con, 3)
    con.execute("DELETE FROM property_values WHERE customer_key IN (2, 3)")  # customer 1's stays
    con.execute(
        "INSERT INTO property_values SELECT customer_key, 1, value, 2, 'B' FROM staged_properties"
    )
    assert audit(con, 1, small_batch_id="B") == []
    assert audit(con, 1) == [  # the scan sees it (the old row also fails newer-wins)
        "1 duplicate (customer, property) keys",
        "1 incoming updates not reflected by newer-wins",
    ]

    # The count: a delete that finds one beaten row gone (a fault injected just before it) retired
    # one row fewer than the winners beat.
    fresh = connect(batch_ids=False)
    for c in (1, 2, 3):
        add_id(fresh, c)
        fresh.execute("INSERT INTO property_values VALUES ($c, 1, '\"old\"', 1, 'A')", {"c": c})
        fresh.execute("INSERT INTO staged_properties VALUES ($c, 1, '\"new\"', 2)", {"c": c})
    faulty = cast(duckdb.DuckDBPyConnection, _LosesARowBeforeTheDelete(fresh))
    assert _merge_staged(faulty, "B", small=True) == (3, True, 1)
    fresh.execute("UPDATE staged_properties SET update_ts = 3")
    assert _merge_staged(fresh, "C", small=True) == (3, True, 0)  # every beaten row retired


class _LosesARowBeforeTheDelete:
    """A connection whose small-batch delete (apply/retire_beaten_rows.sql) finds one of the rows
    it is to delete already gone."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, query: str, *args: Any) -> duckdb.DuckDBPyConnection:
        if query == sql.load("apply/retire_beaten_rows"):
            self.con.execute(
                "DELETE FROM property_values WHERE rowid = "
                "(SELECT min(stored_row) FROM winning_properties)"
            )
        return self.con.execute(query, *args)


def test_a_small_batch_audit_reads_the_values_of_rows_tied_in_time(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """A kept row tied in time with the update it beat is read back for its value (the copy has
    none): the one case a value decides."""
    add_id(con, 1)
    con.execute("INSERT INTO property_values VALUES (1, 1, '\"b\"', 5, 'A')")
    con.execute("INSERT INTO staged_properties VALUES (1, 1, '\"a\"', 5, 'B')")
    con.execute(sql.load("apply/stored_of_batch"))
    con.execute(sql.load("apply/winning_batch_properties"))
    con.execute(sql.load("apply/drop_tied_losers"))
    assert con.execute("SELECT count(*) FROM winning_properties").fetchall() == [(0,)]
    assert audit(con, 1, small_batch_id="B") == []
    # Were the kept value lower than the update's, the update should have won: the audit reads it.
    con.execute("UPDATE property_values SET value = '\"0\"'")
    assert audit(con, 1, small_batch_id="B") == ["1 incoming updates not reflected by newer-wins"]


def test_a_small_batch_audit_reads_back_what_is_stored_not_what_was_meant(
    con: duckdb.DuckDBPyConnection,
) -> None:
    small_batch(con, 2)
    con.execute("DELETE FROM property_values")
    # Inserted under another batch id, or with an older time than the staged one: not the batch's.
    con.execute(
        "INSERT INTO property_values VALUES (1, 1, '\"new\"', 2, 'other'), (2, 1, '\"new\"', 1, 'B')"
    )
    assert audit(con, 1, small_batch_id="B") == ["2 incoming updates not reflected by newer-wins"]
