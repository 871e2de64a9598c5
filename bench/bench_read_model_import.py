"""What a large run costs the read model: an import of every customer x 10 properties, followed
in place (the upserts of format 2) against as a segment and its fold (format 3).

    .venv/bin/python bench/bench_read_model_import.py bench/out/api/run/serving/read_model.sqlite

Two copies of the model (its live segments folded first). On one, the run's rows are upserted
into ``properties`` in key order in one transaction and checkpointed (what ``apply_run`` does
when no segment is live); on the other, with one segment live, the run is applied by
``read_model.apply_run`` (a segment) and checkpointed (the import is visible then), and the
maintenance steps fold it. Prints the seconds of each part.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import polars as pl

from propsync.store import read_model


def open_copy(source: Path, target: Path) -> sqlite3.Connection:
    shutil.copy(source, target)
    con = sqlite3.connect(target, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA wal_autocheckpoint = 0")
    return con


def checkpoint(con: sqlite3.Connection) -> float:
    started = time.perf_counter()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", type=Path)
    ap.add_argument("--properties", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.model.parent.parent) as tmp:
        base = Path(tmp) / "base.sqlite"
        con = open_copy(args.model, base)
        read_model.FOLD_MIN_ROWS, read_model.FOLD_SHARE = 0, 10**12
        while read_model.maintenance_step(con):
            pass
        checkpoint(con)
        customers = [r[0] for r in con.execute("SELECT customer_key FROM customers")]
        con.close()
        n = len(customers)
        run = pl.DataFrame(
            {
                "customer_key": [c for c in customers for _ in range(args.properties)],
                "name": [f"prop_{j}" for _ in customers for j in range(args.properties)],
            }
        ).with_columns(
            kind=pl.lit("property"),
            merged_key=pl.lit(None, pl.Int64),
            value=pl.lit('"imported"'),
            update_ts=pl.lit(1_950_000_000_000_000, pl.Int64),
        )
        print(f"a run of {run.height} rows ({n} customers x {args.properties})")

        con = open_copy(base, Path(tmp) / "inplace.sqlite")
        started = time.perf_counter()
        props = run.select("customer_key", "name", "value", "update_ts")
        con.execute("BEGIN IMMEDIATE")
        read_model.upsert_properties(con, read_model.key_properties(con, props))
        con.execute("COMMIT")
        upsert = time.perf_counter() - started
        ckpt = checkpoint(con)
        con.close()
        print(f"in place: upsert {upsert:.1f} s + checkpoint {ckpt:.1f} s = {upsert + ckpt:.1f} s")

        con = open_copy(base, Path(tmp) / "segments.sqlite")
        read_model.FOLD_MIN_ROWS, read_model.FOLD_SHARE = 100_000, 8
        # One live segment: a run is then appended, whatever its size (read_model._in_place).
        read_model.apply_run(con, [run.head(1)], 999_998, "bench")
        started = time.perf_counter()
        read_model.apply_run(con, [run], 999_999, "bench")
        append = time.perf_counter() - started
        ckpt = checkpoint(con)
        started, steps, step_ckpt = time.perf_counter(), 0, 0.0
        while read_model.maintenance_step(con):
            steps += 1
            step_ckpt += checkpoint(con)
        fold = time.perf_counter() - started - step_ckpt
        con.close()
        print(
            f"segments: append {append:.1f} s + checkpoint {ckpt:.1f} s = {append + ckpt:.1f} s "
            f"(visible); then {steps} fold steps {fold:.1f} s + checkpoints {step_ckpt:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
