"""Identity resolution: which internal customer each incoming row belongs to.

Rules: unknown ids make a new customer that owns them all; ids of one customer add the new ids to
it; ids of several customers merge them into one (the smallest internal id survives, the others
keep resolving through aliases). Two different values of a *hard* id type never meet in one
customer: the row that would join them is rejected, with its reason.

Rows with a single id (the usual import) resolve in one vectorised SQL statement. Rows with several
ids go through a union-find in row order, so a conflict rejects exactly the row that causes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

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


def _union_find(
    con: duckdb.DuckDBPyConnection, looked_up: pl.DataFrame, hard_types: frozenset[str]
) -> _Resolved:
    """Rows that share ids or customers, in row order, so a conflict rejects the row causing it."""
    existing = looked_up["existing_customer_id"].drop_nulls().unique().to_list()
    hard_of_existing: dict[str, dict[str, str]] = {}
    if existing and hard_types:
        keys = looked_up["existing_customer_key"].drop_nulls().unique().to_list()
        rows = con.execute(
            sql.load("apply/hard_ids_of_customers"),
            {"customer_keys": keys, "hard_types": sorted(hard_types)},
        ).fetchall()
        for customer, id_type, id_value in rows:
            hard_of_existing.setdefault(customer, {})[id_type] = id_value

    uf = _UnionFind()
    node_of_id: dict[tuple[str, str], int] = {}
    node_of_customer: dict[str, int] = {}
    customers_at: dict[int, set[str]] = {}  # root -> existing customers in the component
    hard_at: dict[int, dict[str, str]] = {}  # root -> hard ids of the component
    ids_at: dict[int, list[tuple[str, str]]] = {}  # root -> all ids in the component

    for customer in existing:
        node = uf.add()
        node_of_customer[customer] = node
        customers_at[node] = {customer}
        hard_at[node] = dict(hard_of_existing.get(customer, {}))
        ids_at[node] = []

    row_root: dict[int, int] = {}
    rejected: list[dict[str, object]] = []
    row_nrs = looked_up["row_nr"].to_list()
    types = looked_up["id_type"].to_list()
    values = looked_up["id_value"].to_list()
    owners = looked_up["existing_customer_id"].to_list()
    i, n = 0, len(row_nrs)
    while i < n:
        row = row_nrs[i]
        j = i
        while j < n and row_nrs[j] == row:
            j += 1
        roots: set[int] = set()
        pending: list[tuple[str, str]] = []
        for k in range(i, j):
            key = (types[k], values[k])
            known = node_of_id.get(key)
            if known is None and owners[k] is not None:
                known = node_of_id[key] = node_of_customer[owners[k]]
            if known is None:
                pending.append(key)
            else:
                roots.add(uf.find(known))
        combined: dict[str, str] = {}
        conflict = None
        hard_sources = [list(hard_at[r].items()) for r in roots]
        hard_sources.append([key for key in pending if key[0] in hard_types])
        for items in hard_sources:
            for t, v in items:
                if combined.setdefault(t, v) != v:
                    conflict = (t, combined[t], v)
        if conflict is not None:
            t, a, b = conflict
            rejected.append(
                {
                    "row_nr": row,
                    "scope": "row",
                    "column": t,
                    "raw_value": f"{a} / {b}",
                    "reason": f"would merge customers with different hard ids {t}={a!r} and {t}={b!r}",
                }
            )
            i = j
            continue
        for key in pending:
            if key not in node_of_id:  # the same new id twice in one row
                node = node_of_id[key] = uf.add()
                customers_at[node], hard_at[node], ids_at[node] = set(), {}, [key]
                roots.add(node)
        root, *others = sorted(roots)
        for other in others:
            uf.parent[other] = root
            customers_at[root] |= customers_at.pop(other)
            hard_at.pop(other)
            ids_at[root] += ids_at.pop(other)
        hard_at[root] = combined
        row_root[row] = root
        i = j

    # One internal id per component: the smallest existing one, else derived from its first id.
    component_customer: dict[int, str] = {}
    merges: list[tuple[str, str]] = []
    created = 0
    for root, customers in customers_at.items():
        if customers:
            survivor = min(customers)
            merges += [(c, survivor) for c in sorted(customers) if c != survivor]
        elif ids_at[root]:
            survivor = new_customer_id(*min(ids_at[root]))
            created += 1
        else:
            continue
        component_customer[root] = survivor

    customer_nodes = set(node_of_customer.values())
    row_customers = pl.DataFrame(
        {
            "row_nr": list(row_root),
            "customer_id": [component_customer[uf.find(r)] for r in row_root.values()],
        },
        schema=_ROW_CUSTOMERS,
    )
    new_ids = pl.DataFrame(
        [
            (t, v, component_customer[uf.find(node)])
            for (t, v), node in node_of_id.items()
            if node not in customer_nodes
        ],
        schema=_NEW_IDS,
        orient="row",
    )
    return _Resolved(
        row_customers=row_customers,
        new_ids=new_ids,
        merges=pl.DataFrame(merges, schema=_MERGES, orient="row"),
        rejections=pl.DataFrame(rejected, schema=REJECTIONS_SCHEMA)
        if rejected
        else empty(REJECTIONS_SCHEMA),
        customers_created=created,
    )
