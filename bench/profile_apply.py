"""Profile the background applier's cycle in-process: apply, publish, read-model follow.

    .venv/bin/python bench/profile_apply.py bench/out/api/template-1000000x10 --commands 30000
    .venv/bin/python bench/profile_apply.py WAREHOUSE --commands 20000 --rounds 6 --top 20

Copies WAREHOUSE (a bench_api.py template: ``registered:user<k>`` customers) to ``--work`` and
applies ``--rounds`` batches of ``--commands`` tracking commands (two properties each, random
customers, as bench_api.py's tracking load) the way the server's applier does: through one
writer DuckDB instance, ``apply_batch(publish=False)``, then ``publish_pending``, then the read
model follows the new run. Prints each phase's milliseconds per round (and the process's CPU
milliseconds, DuckDB's threads included) and the SQL statements of the median round by time
(each by its ``sql/`` file name).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from propsync import journal, sql
from propsync.config import Settings
from propsync.store import apply, read_model
from propsync.store.warehouse import Warehouse


def _statement_names() -> dict[str, str]:
    root = Path(sql.__file__).parent
    return {
        sql.load(str(p.relative_to(root).with_suffix(""))).strip(): str(
            p.relative_to(root).with_suffix("")
        )
        for p in root.rglob("*.sql")
    }


_BY_TEXT = _statement_names()


def label(query: str) -> str:
    return _BY_TEXT.get(query.strip()) or " ".join(query.split())[:70]


class Timer:
    def __init__(self) -> None:
        self.statements: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.statements[name] = self.statements.get(name, 0.0) + seconds


class TimedConnection:
    def __init__(self, con: duckdb.DuckDBPyConnection, timer: Timer) -> None:
        self._con, self._timer = con, timer

    def execute(self, query: str, params: Any = None) -> Any:
        t = time.perf_counter()
        try:
            if params is None:
                return self._con.execute(query)
            return self._con.execute(query, params)
        finally:
            self._timer.add(label(query), time.perf_counter() - t)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._con, attr)


def make_records(
    n: int,
    customers: int,
    run: str,
    t0: float,
    id_type: str = "registered",
    ids: str = "user{}",
    props: tuple[str, str] = ("prop_0", "last_seen_app"),
) -> list[journal.Record]:
    records, i = [], 0
    while i < n:
        k = min(50, n - i)
        id_rows = []
        cells = []
        for j in range(1, k + 1):
            s = i + j
            user = random.randrange(customers) + 1
            ts = int((t0 + s * 1e-6) * 1e6)
            id_rows.append((j, id_type, ids.format(user)))
            cells.append((j, props[0], f'"{run} seq {s}"', ts))
            cells.append((j, props[1], '"bench"', ts))
        records.append(journal.Record(f"trk-{run}-{i}", int(t0 * 1e6), id_rows, cells, {}, k))
        i += k
    return records


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("template", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/propsync-profile-apply"))
    ap.add_argument("--commands", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--id",
        default="registered:user{}",
        help="the template's ids, {} the customer number (bench_scaling's: 'crm:c{:07d}')",
    )
    ap.add_argument(
        "--props", default="prop_0,last_seen_app", help="the two properties each command sets"
    )
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument(
        "--threads", type=int, help="DuckDB threads of the writer instance (default: its own)"
    )
    ap.add_argument("--no-follow", action="store_true")
    ap.add_argument(
        "--together", action="store_true", help="publish inside the apply's hold of the lock"
    )
    ap.add_argument(
        "--no-writer-instance", action="store_true", help="a new DuckDB instance per batch"
    )
    ap.add_argument("--checkpoint-on-detach", help="DuckDB's setting for the writer instance")
    ap.add_argument("--cprofile-follow", action="store_true", help="the last follow under cProfile")
    ap.add_argument(
        "--hold",
        action="store_true",
        help="keep the write lock and work.duckdb attached across rounds, as the applier does "
        "while it is behind (journal.ApplierHold); without: detached after each round",
    )
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.template, args.work, symlinks=True)
    settings = Settings(warehouse=args.work)
    wh = Warehouse(args.work)
    if not args.no_writer_instance:
        writer = wh.keep_writer_instance(settings.duckdb_memory_limit)
        if args.threads:
            writer.scratch().execute(f"SET threads = {int(args.threads)}")
        if args.checkpoint_on_detach:
            writer.scratch().execute(f"SET checkpoint_on_detach = '{args.checkpoint_on_detach}'")
    if args.hold:
        wh.hold_write_lock(60)
    model = None if args.no_follow else read_model.ReadModel(wh)
    if model is not None:
        t = time.perf_counter()
        model.follow(lock_timeout=60)  # built once (the template's serving copy, if any)
        print(f"read model ready in {time.perf_counter() - t:.1f} s", flush=True)
        # As in the server, a reader stays open: the follower's close is not the last one, so it
        # does not checkpoint the WAL (SQLite's last connection to close does).
        reader = read_model.connect_reader(model.path)
        reader.execute(sql.load("read_model/get_version")).fetchall()

    timer = Timer()
    original: Callable[..., Any] = wh.connect_work

    def connect_work(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        con = original(*a, **k)
        timer.add("(connect)", time.perf_counter() - t)
        return TimedConnection(con, timer)

    wh.connect_work = connect_work  # type: ignore[method-assign]

    rounds: list[dict[str, float]] = []
    per_round_statements: list[dict[str, float]] = []
    id_type, _, ids = args.id.partition(":")
    first, second = args.props.split(",")
    for r in range(args.rounds):
        timer.statements = {}
        records = make_records(
            args.commands, args.customers, f"r{r}", time.time(), id_type, ids, (first, second)
        )
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        batch, _ = journal.build_batch(
            f"jrn-profile-{r}-{random.getrandbits(32):08x}", records, "profile"
        )
        t1 = time.perf_counter()
        apply.apply_batch(wh, batch, settings, max_reject_ratio=1.0, publish=args.together)
        t2 = time.perf_counter()
        if not args.together:
            apply.publish_pending(wh, settings)
        t3 = time.perf_counter()
        if model is not None:
            if args.cprofile_follow and r == args.rounds - 1:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.runcall(model.follow, lock_timeout=60)
                pstats.Stats(prof).sort_stats("tottime").print_stats(15)
            else:
                model.follow(lock_timeout=60)
        t4 = time.perf_counter()
        if model is not None:  # what the server's checkpoint thread does after each follow
            ckpt = sqlite3.connect(model.path, isolation_level=None)
            ckpt.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            ckpt.close()
        t5 = time.perf_counter()
        phases = {
            "build": t1 - t0,
            "apply": t2 - t1,
            "publish": t3 - t2,
            "follow": t4 - t3,
            "checkpoint": t5 - t4,
            "cpu": _cpu_seconds() - cpu0,  # of every phase, DuckDB's threads included
        }
        rounds.append(phases)
        per_round_statements.append(dict(timer.statements))
        print(
            f"round {r}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in phases.items()),
            flush=True,
        )

    order = sorted(range(len(rounds)), key=lambda i: rounds[i]["apply"])
    median = order[len(order) // 2]
    for key in rounds[0]:
        print(f"{key}: median {statistics.median(r[key] for r in rounds) * 1000:.0f} ms")
    print(f"statements of round {median} (median apply):")
    for name, seconds in sorted(per_round_statements[median].items(), key=lambda kv: -kv[1])[
        : args.top
    ]:
        print(f"  {seconds * 1000:8.1f} ms  {name}")
    wh.release_write_lock()
    return 0


if __name__ == "__main__":
    sys.exit(main())
