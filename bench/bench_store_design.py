"""Measurements behind the store redesign (issue #9, docs/store-redesign.md).

Each figure is one building block of a candidate design, measured side by side in one run on
synthetic data of ``--customers`` customers x 10 properties:

- the writer's newer-wins join of a batch of K updates against the stored state, on integer and
  on text keys, in one DuckDB table and in per-bucket Parquet files;
- a point read of one customer's properties: a Parquet bucket file, a DuckDB ART index, SQLite;
- what a publish by manifest costs: writing a batch's run file and a catalog of views;
- what analysts pay: a full scan of one DuckDB table, of B Parquet base files, and of the merged
  view over base plus runs.

    .venv/bin/python bench/bench_store_design.py --customers 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

PROPERTIES = 10


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def percentiles_ms(fn: Callable[[int], object], keys: list[int]) -> tuple[float, float]:
    times = []
    for k in keys:
        start = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e3, times[int(len(times) * 0.99)] * 1e3


def build_state(con: duckdb.DuckDBPyConnection, customers: int) -> None:
    con.execute(
        "CREATE TABLE p AS SELECT c.range AS customer_key, p.range::INTEGER AS property_id, "
        "'\"value-' || (c.range * 7 + p.range) || '\"' AS value, "
        "1700000000000000 + c.range AS update_ts "
        f"FROM range({customers}) AS c, range({PROPERTIES}) AS p"
    )
    con.execute(
        "CREATE TABLE pv AS SELECT md5(customer_key::VARCHAR) AS customer_id, "
        "'prop' || property_id AS property, value, update_ts FROM p"
    )


def write_buckets(con: duckdb.DuckDBPyConnection, root: Path, buckets: int) -> list[str]:
    target = root / f"base{buckets}"
    con.execute(
        f"COPY (SELECT *, (hash(customer_key) % {buckets})::INTEGER AS bucket FROM p "
        "ORDER BY bucket, customer_key, property_id) "
        f"TO '{target}' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE)"
    )
    return [str(target / f"bucket={b}" / "data_0.parquet") for b in range(buckets)]


def stage(con: duckdb.DuckDBPyConnection, customers: int, k: int) -> None:
    keys = random.sample(range(customers), k)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE s AS SELECT unnest($k)::BIGINT AS customer_key, "
        "3::INTEGER AS property_id, '\"x\"' AS value, 1800000000000000::BIGINT AS update_ts",
        {"k": keys},
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE sv AS SELECT md5(customer_key::VARCHAR) AS customer_id, "
        "'prop3' AS property, value, update_ts FROM s"
    )


def writer_joins(
    con: duckdb.DuckDBPyConnection, customers: int, files: dict[int, list[str]]
) -> None:
    print("\n## The writer's newer-wins join of K staged updates against the stored state")
    print(
        "| K | DuckDB table, BIGINT keys | DuckDB table, VARCHAR keys | "
        + " | ".join(f"touched Parquet buckets (B={b})" for b in files)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(files))
    for k in (1, 40_000):
        stage(con, customers, k)
        row = [
            median_ms(
                lambda: con.execute(
                    "SELECT count(*) FROM s JOIN p USING (customer_key, property_id) "
                    "WHERE s.update_ts > p.update_ts"
                ).fetchall()
            ),
            median_ms(
                lambda: con.execute(
                    "SELECT count(*) FROM sv JOIN pv USING (customer_id, property) "
                    "WHERE sv.update_ts > pv.update_ts"
                ).fetchall()
            ),
        ]
        for b, paths in files.items():
            touched = sorted(
                {
                    paths[r[0]]
                    for r in con.execute(
                        f"SELECT DISTINCT (hash(customer_key) % {b})::INTEGER FROM s"
                    ).fetchall()
                }
            )
            row.append(
                median_ms(
                    lambda t=touched: con.execute(
                        "SELECT count(*) FROM s JOIN read_parquet($f) AS p USING (customer_key, property_id) "
                        "WHERE s.update_ts > p.update_ts",
                        {"f": t},
                    ).fetchall()
                )
            )
        print(f"| {k:,} | " + " | ".join(f"{v:.1f} ms" for v in row) + " |")


def point_reads(
    root: Path, con: duckdb.DuckDBPyConnection, customers: int, paths: list[str]
) -> None:
    print("\n## A point read of one customer's 10 properties (p50 / p99 over 2,000 random keys)")
    keys = random.sample(range(customers), 2000)
    buckets = len(paths)
    bucket_of = dict(
        con.execute(
            f"SELECT range, (hash(range::BIGINT) % {buckets})::INTEGER FROM range({customers})"
        ).fetchall()
    )
    reader = duckdb.connect(config={"threads": 1})
    pq = percentiles_ms(
        lambda k: reader.execute(
            f"SELECT property_id, value, update_ts FROM read_parquet('{paths[bucket_of[k]]}') "
            "WHERE customer_key = $k",
            {"k": k},
        ).fetchall(),
        keys,
    )

    art_path = root / "art.duckdb"
    art = duckdb.connect(str(art_path))
    art.execute("CREATE TABLE p AS SELECT * FROM read_parquet($f)", {"f": paths})
    art.execute("CREATE INDEX p_customer ON p (customer_key)")
    art.close()
    art = duckdb.connect(str(art_path), read_only=True, config={"threads": 1})
    ddb = percentiles_ms(
        lambda k: art.execute(
            "SELECT property_id, value, update_ts FROM p WHERE customer_key = $k", {"k": k}
        ).fetchall(),
        keys,
    )

    lite = sqlite3.connect(root / "read_model.sqlite")
    lite.execute("PRAGMA journal_mode = WAL")
    lite.execute(
        "CREATE TABLE p (customer_key INTEGER, property_id INTEGER, value TEXT, update_ts INTEGER, "
        "PRIMARY KEY (customer_key, property_id)) WITHOUT ROWID"
    )
    start = time.perf_counter()
    rows = art.execute("SELECT customer_key, property_id, value, update_ts FROM p ORDER BY 1, 2")
    while batch := rows.fetchmany(100_000):
        lite.executemany("INSERT INTO p VALUES (?, ?, ?, ?)", batch)
    lite.commit()
    load_s = time.perf_counter() - start
    lt = percentiles_ms(
        lambda k: lite.execute(
            "SELECT property_id, value, update_ts FROM p WHERE customer_key = ?", (k,)
        ).fetchall(),
        keys,
    )
    print("| store | p50 | p99 |\n|---|---|---|")
    for name, (p50, p99) in (
        (f"Parquet bucket file (B={buckets}), DuckDB read_parquet", pq),
        ("DuckDB table + ART index, read-only", ddb),
        ("SQLite WITHOUT ROWID, primary key (customer_key, property_id)", lt),
    ):
        print(f"| {name} | {p50:.3f} ms | {p99:.3f} ms |")
    print(
        f"\nBuilding the SQLite read model from DuckDB took {load_s:.1f} s "
        f"({customers * PROPERTIES / load_s / 1e6:.2f}M rows/s)."
    )


def publish_and_analysts(
    root: Path, con: duckdb.DuckDBPyConnection, customers: int, paths: list[str]
) -> None:
    print("\n## Publishing by manifest, and what analysts pay")
    runs_dir = root / "runs"
    runs_dir.mkdir()
    buckets = len(paths)
    run_paths = []
    for r in range(20):
        stage(con, customers, 40_000)
        path = runs_dir / f"r{r:03d}.parquet"
        run_paths.append(str(path))
        con.execute(
            f"COPY (SELECT *, {r + 2}::INTEGER AS batch_seq, "
            f"(hash(customer_key) % {buckets})::INTEGER AS bucket FROM s "
            f"ORDER BY bucket, customer_key) TO '{path}' (FORMAT parquet)"
        )
    stage(con, customers, 40_000)
    run_ms = median_ms(
        lambda: con.execute(
            f"COPY (SELECT * FROM s ORDER BY customer_key) TO '{runs_dir / 'x.parquet'}' (FORMAT parquet)"
        )
    )
    catalog = root / "catalog.duckdb"

    def write_catalog() -> None:
        catalog.unlink(missing_ok=True)
        c = duckdb.connect(str(catalog))
        c.execute(f"CREATE VIEW base AS SELECT * FROM read_parquet({paths!r})")
        c.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet({run_paths!r})")
        c.execute(
            "CREATE VIEW properties AS WITH latest AS (SELECT * FROM runs QUALIFY row_number() "
            "OVER (PARTITION BY customer_key, property_id ORDER BY batch_seq DESC) = 1) "
            "SELECT customer_key, property_id, value, update_ts FROM base "
            "ANTI JOIN latest USING (customer_key, property_id) "
            "UNION ALL SELECT customer_key, property_id, value, update_ts FROM latest"
        )
        c.close()
        fd = os.open(catalog, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    cat_ms = median_ms(write_catalog)
    c = duckdb.connect(str(catalog), read_only=True)
    scan = "SELECT count(*), sum(update_ts) FROM {}"
    table_ms = median_ms(lambda: con.execute(scan.format("p")).fetchall(), 3)
    base_ms = median_ms(lambda: c.execute(scan.format("base")).fetchall(), 3)
    merged_ms = median_ms(lambda: c.execute(scan.format("properties")).fetchall(), 3)
    print("| step | median |\n|---|---|")
    print(f"| write one batch's run file (40k rows, Parquet) | {run_ms:.1f} ms |")
    print(
        f"| write + fsync a catalog of views over {len(paths) + len(run_paths)} files | {cat_ms:.1f} ms |"
    )
    print(f"| analyst full scan: one DuckDB table | {table_ms:.1f} ms |")
    print(f"| analyst full scan: {buckets} Parquet base files | {base_ms:.1f} ms |")
    print(f"| analyst full scan: merged view, base + 20 runs of 40k | {merged_ms:.1f} ms |")


_NEWER = (
    "(coalesce(i.update_ts, -1) > coalesce(s.update_ts, -1) OR (coalesce(i.update_ts, -1) = "
    "coalesce(s.update_ts, -1) AND i.value > s.value))"
)
_KEY = "s.customer_key = i.customer_key AND s.property_id = i.property_id"


def _merge_pair(con: duckdb.DuckDBPyConnection, where: str = "") -> None:
    source = f"(SELECT * FROM staged {where})"
    con.execute(
        f"MERGE INTO properties AS s USING {source} AS i ON {_KEY} "
        f"WHEN MATCHED AND {_NEWER} THEN DELETE"
    ).fetchall()
    con.execute(
        f"MERGE INTO properties AS s USING {source} AS i ON {_KEY} "
        "WHEN NOT MATCHED THEN INSERT VALUES (i.customer_key, i.property_id, i.value, i.update_ts)"
    ).fetchall()


def _rewrite(con: duckdb.DuckDBPyConnection) -> None:
    wins = f"(s.customer_key IS NULL OR (i.customer_key IS NOT NULL AND {_NEWER}))"
    con.execute(
        "CREATE TABLE rewritten AS SELECT coalesce(i.customer_key, s.customer_key) AS customer_key, "
        "coalesce(i.property_id, s.property_id) AS property_id, "
        f"CASE WHEN {wins} THEN i.value ELSE s.value END AS value, "
        f"CASE WHEN {wins} THEN i.update_ts ELSE s.update_ts END AS update_ts "
        "FROM properties AS s FULL OUTER JOIN staged AS i "
        "ON s.customer_key = i.customer_key AND s.property_id = i.property_id"
    )
    con.execute("DROP TABLE properties")
    con.execute("ALTER TABLE rewritten RENAME TO properties")


def import_floor(root: Path, customers: int) -> None:
    print(
        f"\n## The import's merge on integer keys: {customers * PROPERTIES:,} staged updates "
        f"(6 in 7 newer) into {customers * PROPERTIES:,} stored rows, one run each"
    )
    print("| merge | memory_limit | wall |\n|---|---|---|")
    variants: list[tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
        ("MERGE pair (DELETE beaten, INSERT absent)", _merge_pair),
        ("rewrite: FULL OUTER JOIN into a new table, swap", _rewrite),
        (
            "MERGE pair per bucket (16 hash buckets of customers)",
            lambda c: [_merge_pair(c, f"WHERE hash(customer_key) % 16 = {b}") for b in range(16)],
        ),
    ]
    for limit in ("768MB", None):
        for name, merge in variants:
            path = root / "import.duckdb"
            path.unlink(missing_ok=True)
            config: dict[str, str | bool] = {
                "preserve_insertion_order": False,
                "temp_directory": str(root / "spill"),
            }
            if limit:
                config["memory_limit"] = limit
            con = duckdb.connect(str(path), config=config)
            con.execute("SET enable_progress_bar = false")
            build_state(con, customers)
            con.execute("DROP TABLE pv")
            con.execute("ALTER TABLE p RENAME TO properties")
            con.execute(
                "CREATE TABLE staged AS SELECT c.range AS customer_key, p.range::INTEGER AS property_id, "
                "'\"new-' || (c.range + p.range) || '\"' AS value, CASE WHEN (c.range + p.range) % 7 = 0 "
                "THEN 1600000000000000 ELSE 1800000000000000 END AS update_ts "
                f"FROM range({customers}) AS c, range({PROPERTIES}) AS p"
            )
            con.execute("CHECKPOINT")
            start = time.perf_counter()
            con.execute("BEGIN TRANSACTION")
            merge(con)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
            wall = time.perf_counter() - start
            con.close()
            print(f"| {name} | {limit or 'default (80% of RAM)'} | {wall:.1f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--import-floor", action="store_true", help="also time the import merge")
    args = parser.parse_args()
    random.seed(7)
    with tempfile.TemporaryDirectory(prefix="propsync-store-design-") as tmp:
        root = Path(tmp)
        con = duckdb.connect(str(root / "state.duckdb"))
        con.execute("SET enable_progress_bar = false")
        build_state(con, args.customers)
        files = {b: write_buckets(con, root, b) for b in (16, 256)}
        print(
            f"# Store design measurements: {args.customers:,} customers x {PROPERTIES} properties, "
            f"DuckDB {duckdb.__version__}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
        )
        writer_joins(con, args.customers, files)
        point_reads(root, con, args.customers, files[16])
        publish_and_analysts(root, con, args.customers, files[16])
        con.close()
        if args.import_floor:
            import_floor(root, args.customers)


if __name__ == "__main__":
    main()
