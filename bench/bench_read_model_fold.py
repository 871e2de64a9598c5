"""The read model's follow and fold, CPU a row: what a tracked property costs the follower.

    .venv/bin/python bench/bench_read_model_fold.py bench/out/api/run/serving/read_model.sqlite

Copies the model (a ``bench_api.py`` run's, 1M x 10), folds what it has live, then on fresh
copies, ``--rounds`` times for each count of ``--segments``: appends ``--rows`` recent rows
(random customers x 2 properties, as the 50,000 commands/s load sends) as that many follows'
segments through ``read_model.key_properties`` and ``append_segment``, and folds them all through
``read_model.maintenance_step`` in 16 slices, each committed and checkpointed as the follower's
checkpointer does. Prints the CPU of both a row and the size of ``properties``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import polars as pl

from propsync.store import read_model

SLICES = 16
PROPS = ("last_seen_app", "prop_0")


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")  # as the follower's writer
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA wal_autocheckpoint = 0")
    return con


def _checkpoint(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def folded_copy(source: Path, dest: Path) -> list[int]:
    """``source`` copied to ``dest`` with no live segment; the customers' keys."""
    shutil.copy(source, dest)
    con = _connect(dest)
    read_model.FOLD_MIN_ROWS, read_model.FOLD_SHARE = 0, 10**12
    while read_model.maintenance_step(con):
        _checkpoint(con)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    keys = [r[0] for r in con.execute("SELECT customer_key FROM customers")]
    con.close()
    return keys


def table_mib(path: Path, table: str) -> float:
    """The pages of ``table``'s B-tree, in MiB (SQLite's ``dbstat``; NaN where it is missing)."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (table,)).fetchall()
        return float(rows[0][0]) / 2**20
    except sqlite3.OperationalError:
        return float("nan")
    finally:
        con.close()


def append_and_fold(
    path: Path, ids: list[int], rows: int, segments: int, seed: int
) -> tuple[float, float]:
    """CPU microseconds a row to append ``rows`` rows in ``segments`` follows, then to fold."""
    rng = random.Random(seed)
    customers = rng.sample(ids, rows // len(PROPS))
    rng.shuffle(customers)
    per = len(customers) // segments
    con = _connect(path)
    # Appends never go in place, and nothing is folded before every segment is there.
    read_model.FOLD_MIN_ROWS, read_model.FOLD_SHARE = 10**12, 1
    read_model.MAX_SEGMENTS, read_model.MERGE_MAX_ROWS = 10**6, 0
    appended = 0.0
    for n in range(segments):
        part = sorted(customers[n * per : (n + 1) * per])
        frame = pl.DataFrame(
            {
                "customer_key": [c for c in part for _ in PROPS],
                "name": [p for _ in part for p in PROPS],
                "value": [f'"v{n}"'] * (len(part) * len(PROPS)),
                "update_ts": [1_900_000_000_000_000 + n] * (len(part) * len(PROPS)),
            }
        )
        started = time.process_time()
        con.execute("BEGIN IMMEDIATE")
        read_model.append_segment(con, read_model.key_properties(con, frame))
        con.execute("COMMIT")
        appended += time.process_time() - started
        _checkpoint(con)
    written = per * segments * len(PROPS)
    read_model.FOLD_MIN_ROWS, read_model.FOLD_SHARE = 0, 10**12
    read_model.FOLD_SLICE_ROWS = -(-written // SLICES)
    started = time.process_time()
    while read_model.maintenance_step(con):
        _checkpoint(con)
    folded = time.process_time() - started
    left = con.execute("SELECT count(*) FROM recent_properties").fetchall()[0][0]
    assert left == 0, f"{left} recent rows left after the fold"
    con.close()
    return appended / written * 1e6, folded / written * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a read_model.sqlite (copied, never changed)")
    ap.add_argument("--rows", type=int, default=1_600_000)
    ap.add_argument("--segments", default="8,28")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="scratch directory (default: /tmp)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rm-fold-", dir=args.work))
    try:
        base = work / "base.sqlite"
        ids = folded_copy(args.model, base)
        print(
            f"{len(ids)} customers; properties {table_mib(base, 'properties'):.0f} MiB, file"
            f" {base.stat().st_size / 2**20:.0f} MiB",
            flush=True,
        )
        for segments in (int(s) for s in args.segments.split(",")):
            for round_ in range(args.rounds):
                copy = work / "measured.sqlite"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{copy}{suffix}").unlink(missing_ok=True)
                shutil.copy(base, copy)
                append, fold = append_and_fold(copy, ids, args.rows, segments, seed=round_)
                print(
                    f"{segments} segments, round {round_ + 1}: append {append:.2f} us CPU a row,"
                    f" fold {fold:.2f} us CPU a row ({fold * args.rows / 1e6:.1f} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
