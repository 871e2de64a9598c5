"""Identity resolution: which internal customer each incoming row belongs to.

Rules: unknown ids make a new customer that owns them all; ids of one customer add the new ids to
it; ids of several customers merge them into one (the smallest internal id survives, the others
keep resolving through aliases). Two different values of a *hard* id type never meet in one
customer: the row that would join them is rejected, with its reason.

Rows with a single id (the usual import) resolve in one vectorised SQL statement. Rows with several
ids go through a union-find in row order, so a conflict rejects exactly the row that causes it.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

import duckdb
import polars as pl

from propsync import frames, sql
from propsync.batch import REJECTIONS_SCHEMA, empty
from propsync.store import meta


def new_customer_id(id_type: str, id_value: str) -> str:
    """Internal id of a customer created by this id; must equal the SQL of resolve_single_ids."""
    return hashlib.md5(f"{id_type}\x1f{id_value}".encode()).hexdigest()


@dataclass
class Resolution:
    """What ``resolve`` found. The rows' customers are in the connection's temp tables
    ``row_customers`` (row_nr, customer_id, shared), ``new_ids`` (id_type, id_value,
    customer_id), ``merges`` (old_customer_id, customer_id) and ``known_customers``
    (customer_id, customer_key: the existing customers the batch's ids were found under)."""

    rejections: pl.DataFrame  # rows refused for hard-id conflicts
    customers_created: int
    customers_merged: int
    ids_added: int  # rows of new_ids: ids no customer held before


_ROW_CUSTOMERS = {"row_nr": pl.Int64, "customer_id": pl.String}
_NEW_IDS = {"id_type": pl.String, "id_value": pl.String, "customer_id": pl.String}
_MERGES = {"old_customer_id": pl.String, "customer_id": pl.String}
RESOLVED_TABLES = ("row_customers", "new_ids", "merges", "known_customers")


def resolve(
    con: duckdb.DuckDBPyConnection, one_id_per_row: bool, hard_types: Iterable[str]
) -> Resolution:
    """Resolve the ids of the relation ``batch_ids`` (row_nr, id_type, id_value) into the temp
    tables named in ``Resolution``. With ``one_id_per_row`` it all runs in DuckDB (a batch of
    any size: it spills); rows with several ids go through the union-find in Python."""
    try:
        con.execute(sql.load("apply/looked_up_ids"))
        if one_id_per_row:
            return _resolve_single(con)
        return _resolve_general(con, frozenset(hard_types))
    finally:
        con.execute("DROP TABLE IF EXISTS looked_up_ids")
        con.execute("DROP TABLE IF EXISTS resolved_ids")


# id_hashes is rewritten in hash order once the ids appended since its last sort reach a quarter
# of the sorted ones (at least this many): a scan of the unsorted tail costs a few milliseconds
# per million rows, the rewrite about a second per ten million, so per new id it stays constant.
UNSORTED_ID_HASHES = 1_000_000
_SORTED_ROWS = "id_hashes_sorted_rows"


def sort_id_hashes(con: duckdb.DuckDBPyConnection, *, force: bool = False) -> bool:
    """Rewrite ``id_hashes`` in hash order when its unsorted tail is due (or ``force``); returns
    whether it did. Call inside the writer's transaction, after new ids were stored."""
    rows = int(con.execute("SELECT count(*) FROM id_hashes").fetchall()[0][0])
    sorted_rows = int(meta.get(con, _SORTED_ROWS) or 0)
    if not force and 4 * (rows - sorted_rows) <= max(sorted_rows, 4 * UNSORTED_ID_HASHES):
        return False
    con.execute(sql.load("apply/sort_id_hashes"))
    meta.put(con, _SORTED_ROWS, str(rows))
    return True


def _resolve_single(con: duckdb.DuckDBPyConnection) -> Resolution:
    con.execute(sql.load("apply/resolved_single_ids"))
    for name in ("row_customers", "new_ids", "known_customers", "no_merges"):
        con.execute(sql.load(f"apply/{name}"))
    # Each new id of a single-id row creates its own customer.
    created = int(con.execute("SELECT count(*) FROM new_ids").fetchall()[0][0])
    return Resolution(
        empty(REJECTIONS_SCHEMA), customers_created=created, customers_merged=0, ids_added=created
    )


def _materialize(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """``frame`` as the temp table ``name`` (one of RESOLVED_TABLES, or resolved_ids)."""
    frames.register(con, "resolved_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM resolved_frame")
    finally:
        con.unregister("resolved_frame")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root


@dataclass
class _Resolved:
    """Part of a resolution in Polars, before ``_resolve_general`` hands it to DuckDB."""

    row_customers: pl.DataFrame  # row_nr, customer_id
    new_ids: pl.DataFrame  # id_type, id_value, customer_id
    merges: pl.DataFrame  # old_customer_id, customer_id
    rejections: pl.DataFrame
    customers_created: int


def _resolve_general(con: duckdb.DuckDBPyConnection, hard_types: frozenset[str]) -> Resolution:
    classified = con.sql(
        sql.load("apply/classify_ids"), params={"hard_types": sorted(hard_types)}
    ).pl()
    simple = classified.filter(pl.col("independent"))
    created = simple.group_by("row_nr").agg(pl.col("existing_customer_id").is_null().all())
    independent = _Resolved(
        row_customers=simple.select(list(_ROW_CUSTOMERS)).unique("row_nr"),
        new_ids=simple.filter(pl.col("existing_customer_id").is_null()).select(list(_NEW_IDS)),
        merges=empty(_MERGES),
        rejections=empty(REJECTIONS_SCHEMA),
        customers_created=int(created["existing_customer_id"].sum()),
    )
    rest = _union_find(con, classified.filter(~pl.col("independent")), hard_types)
    known = (
        classified.filter(pl.col("existing_customer_key").is_not_null())
        .select(
            customer_id=pl.col("existing_customer_id"),
            customer_key=pl.col("existing_customer_key").cast(pl.Int64),
        )
        .unique("customer_id")
    )
    _materialize(con, "resolved_ids", pl.concat([independent.row_customers, rest.row_customers]))
    con.execute(sql.load("apply/row_customers"))
    new_ids = pl.concat([independent.new_ids, rest.new_ids])
    _materialize(con, "new_ids", new_ids)
    _materialize(con, "merges", rest.merges)
    _materialize(con, "known_customers", known)
    return Resolution(
        rest.rejections,
        customers_created=independent.customers_created + rest.customers_created,
        customers_merged=rest.merges.height,
        ids_added=new_ids.height,
    )


Id = tuple[str, str]  # (id type, id value)


class _Components:
    """Existing customers and the batch's ids joined row by row, each component with its hard ids.

    A row joins the components of its ids unless that would give one component two values of a
    hard id type; then the row is kept apart (rejected) and nothing is joined."""

    def __init__(self, hard_types: frozenset[str]) -> None:
        self.hard_types = hard_types
        self.uf = _UnionFind()
        self.node_of_id: dict[Id, int] = {}
        self.node_of_customer: dict[str, int] = {}
        self.customers_at: dict[int, set[str]] = {}  # root -> existing customers
        self.hard_at: dict[int, dict[str, str]] = {}  # root -> hard ids
        self.ids_at: dict[int, list[Id]] = {}  # root -> new ids

    def add_customer(self, customer: str, hard: dict[str, str]) -> None:
        self.node_of_customer[customer] = node = self.uf.add()
        self.customers_at[node], self.hard_at[node], self.ids_at[node] = {customer}, hard, []

    def join_row(self, keys: list[Id], owners: list[str | None]) -> int | tuple[str, str, str]:
        """The root of the row's component, or the conflict ``(type, a, b)`` that rejects it."""
        node_of_id, find, hard_at = self.node_of_id, self.uf.find, self.hard_at
        roots: set[int] = set()
        pending: list[Id] = []
        for key, owner in zip(keys, owners, strict=True):
            known = node_of_id.get(key)
            if known is None and owner is not None:
                known = node_of_id[key] = self.node_of_customer[owner]
            if known is None:
                pending.append(key)
            else:
                roots.add(find(known))
        combined: dict[str, str] = {}
        conflict = None
        for t, v in chain.from_iterable(hard_at[r].items() for r in roots):
            if combined.setdefault(t, v) != v:
                conflict = (t, combined[t], v)
        for t, v in pending:
            if t in self.hard_types and combined.setdefault(t, v) != v:
                conflict = (t, combined[t], v)
        if conflict is not None:
            return conflict
        for key in pending:
            if key not in node_of_id:  # the same new id twice in one row
                node_of_id[key] = node = self.uf.add()
                self.customers_at[node], hard_at[node], self.ids_at[node] = set(), {}, [key]
                roots.add(node)
        root, *others = sorted(roots)
        for other in others:
            self.uf.parent[other] = root
            self.customers_at[root] |= self.customers_at.pop(other)
            hard_at.pop(other)
            self.ids_at[root] += self.ids_at.pop(other)
        hard_at[root] = combined
        return root

    def survivors(self) -> tuple[dict[int, str], list[tuple[str, str]], int]:
        """One internal id per component (the smallest existing one, else derived from its first
        id), the merges of the other existing ones into it, and how many were created."""
        survivor_at: dict[int, str] = {}
        merges: list[tuple[str, str]] = []
        created = 0
        for root, customers in self.customers_at.items():
            if customers:
                survivor = min(customers)
                merges += [(c, survivor) for c in sorted(customers) if c != survivor]
            elif self.ids_at[root]:
                survivor = new_customer_id(*min(self.ids_at[root]))
                created += 1
            else:
                continue
            survivor_at[root] = survivor
        return survivor_at, merges, created

    def new_ids(self, survivor_at: dict[int, str]) -> list[tuple[str, str, str]]:
        customer_nodes = set(self.node_of_customer.values())
        return [
            (t, v, survivor_at[self.uf.find(node)])
            for (t, v), node in self.node_of_id.items()
            if node not in customer_nodes
        ]


def _hard_ids_of_existing(
    con: duckdb.DuckDBPyConnection, looked_up: pl.DataFrame, hard_types: frozenset[str]
) -> dict[str, dict[str, str]]:
    keys = looked_up["existing_customer_key"].drop_nulls().unique().to_list()
    if not keys or not hard_types:
        return {}
    found: dict[str, dict[str, str]] = {}
    rows = con.execute(
        sql.load("apply/hard_ids_of_customers"),
        {"customer_keys": keys, "hard_types": sorted(hard_types)},
    ).fetchall()
    for customer, id_type, id_value in rows:
        found.setdefault(customer, {})[id_type] = id_value
    return found


def _rows_of_ids(looked_up: pl.DataFrame) -> Iterator[tuple[int, list[Id], list[str | None]]]:
    """Each row's ids and their existing owners, in row order (``looked_up`` is sorted by row)."""
    row_nrs = looked_up["row_nr"].to_list()
    ids = list(zip(looked_up["id_type"].to_list(), looked_up["id_value"].to_list(), strict=True))
    owners = looked_up["existing_customer_id"].to_list()
    i, n = 0, len(row_nrs)
    while i < n:
        j = i + 1
        while j < n and row_nrs[j] == row_nrs[i]:
            j += 1
        yield row_nrs[i], ids[i:j], owners[i:j]
        i = j


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The union-find makes a few containers per id and none of them cyclic; the cyclic
    collector's passes over them took 40% of its time (300k two-id rows: 4.8 s -> 2.9 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _hard_id_rejection(row: int, conflict: tuple[str, str, str]) -> dict[str, object]:
    t, a, b = conflict
    return {
        "row_nr": row,
        "scope": "row",
        "column": t,
        "raw_value": f"{a} / {b}",
        "reason": f"would merge customers with different hard ids {t}={a!r} and {t}={b!r}",
    }


def _union_find(
    con: duckdb.DuckDBPyConnection, looked_up: pl.DataFrame, hard_types: frozenset[str]
) -> _Resolved:
    """Rows that share ids or customers, in row order, so a conflict rejects the row causing it."""
    components = _Components(hard_types)
    hard_of_existing = _hard_ids_of_existing(con, looked_up, hard_types)
    row_root: dict[int, int] = {}
    rejected: list[dict[str, object]] = []
    with _no_cycle_collection():
        for customer in looked_up["existing_customer_id"].drop_nulls().unique().to_list():
            components.add_customer(customer, hard_of_existing.get(customer, {}))
        for row, keys, owners in _rows_of_ids(looked_up):
            joined = components.join_row(keys, owners)
            if isinstance(joined, int):
                row_root[row] = joined
            else:
                rejected.append(_hard_id_rejection(row, joined))
        survivor_at, merges, created = components.survivors()
    find = components.uf.find
    return _Resolved(
        row_customers=pl.DataFrame(
            {
                "row_nr": list(row_root),
                "customer_id": [survivor_at[find(r)] for r in row_root.values()],
            },
            schema=_ROW_CUSTOMERS,
        ),
        new_ids=pl.DataFrame(components.new_ids(survivor_at), schema=_NEW_IDS, orient="row"),
        merges=pl.DataFrame(merges, schema=_MERGES, orient="row"),
        rejections=pl.DataFrame(rejected, schema=REJECTIONS_SCHEMA)
        if rejected
        else empty(REJECTIONS_SCHEMA),
        customers_created=created,
    )
