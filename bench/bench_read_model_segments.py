"""GET latency on the read model against the number of live segments (store/read_model.py).

    .venv/bin/python bench/bench_read_model_segments.py bench/out/api/run/serving/read_model.sqlite

Copies the model, folds its live segments, and appends segments of ``--segment-rows`` random property rows
(of customers the model has) until each count of ``--counts`` is live; at each, times
``read_model.read_customer`` by ``registered:userN`` for ``--reads`` random users (one
connection, as a server worker's) and prints p50/p99 beside the same reads with no segment.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from propsync.store import read_model
from propsync.store.read import CustomerRef


def timed_reads(path: Path, refs: list[CustomerRef]) -> tuple[float, float]:
    con = read_model.connect_reader(path)
    try:
        for ref in refs[:200]:  # warm the page cache and the statement cache
            read_model.read_customer(con, ref)
        lat = []
        for ref in refs:
            t = time.perf_counter()
            read_model.read_customer(con, ref)
            lat.append(time.perf_counter() - t)
    finally:
        con.close()
    lat.sort()
    return statistics.median(lat) * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", type=Path)
    ap.add_argument("--counts", default="0,8,16,32,48")
    ap.add_argument("--segment-rows", type=int, default=25_000)
    ap.add_argument("--reads", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.model.parent.parent) as tmp:
        path = Path(tmp) / "model.sqlite"
        shutil.copy(args.model, path)
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        users = con.execute(
            "SELECT i.id_value, c.customer_key FROM customer_ids AS i "
            "JOIN customers AS c USING (customer_id) WHERE i.id_type = 'registered'"
        ).fetchall()
        # Fold whatever the copy has live: the first count is then the model without segments.
        read_model.FOLD_MIN_ROWS, read_model.FOLD_SHARE = 0, 10**12
        started = time.perf_counter()
        while read_model.maintenance_step(con):
            pass
        print(f"{len(users)} customers; folded the copy in {time.perf_counter() - started:.1f} s")
        live = 0
        rng = random.Random(1)
        refs = [CustomerRef("registered", u) for u, _ in rng.choices(users, k=args.reads)]
        ts = 1_900_000_000_000_000
        for count in (int(c) for c in args.counts.split(",")):
            while live < count:
                rows = sorted(
                    (cid, f"prop_{rng.randrange(10)}")
                    for _, cid in rng.sample(users, args.segment_rows)
                )
                rows = sorted(dict(rows).items())
                segment = pl.DataFrame(
                    {
                        "customer_key": [c for c, _ in rows],
                        "name": [p for _, p in rows],
                        "value": ['"x"'] * len(rows),
                        "update_ts": [ts] * len(rows),
                    }
                )
                con.execute("BEGIN")
                read_model.append_segment(con, read_model.key_properties(con, segment))
                con.execute("COMMIT")
                live += 1
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            p50, p99 = timed_reads(path, refs)
            print(f"segments {live:3d}: GET p50 {p50:.3f} ms, p99 {p99:.3f} ms")
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
