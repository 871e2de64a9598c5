"""Profile PATCH /api/customers/<id> in-process: the HTTP service's edit path without HTTP.

    .venv/bin/python bench/profile_api.py bench/out/api/run            # a warehouse with a read model
    .venv/bin/python bench/profile_api.py WAREHOUSE --edits 10 --profile 1,5 --top 30

Opens the service on WAREHOUSE as ``propsync serve`` does (``Service.open``: journal writer,
read model follower, the writer's DuckDB instance and its warm-up), waits until the read model
serves the published version (build it first, e.g. with a bench_api.py run, or this waits for
the build), then runs ``--edits`` edits of ``prop_9`` of random ``registered:user<k>`` customers
through ``Service.edit`` (apply, publish, follow, read back: what a PATCH does) and prints each
one's milliseconds. The edits listed in ``--profile`` (1-based) run under cProfile; their
propsync, DuckDB, SQLite and Polars functions are printed by cumulative time. The warehouse is
changed (one version per edit): run it on a copy.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

from propsync.api.config import ServiceConfig
from propsync.api.service import Service
from propsync.config import Settings


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--customers", type=int, default=1_000_000, help="user<k> ids to pick from")
    ap.add_argument("--profile", default="1,2", help="1-based edit numbers to profile")
    ap.add_argument("--top", type=int, default=35, help="functions shown per profile")
    ap.add_argument(
        "--no-writer-instance",
        action="store_true",
        help="connect and close work.duckdb per batch (as before issue #9's writer instance)",
    )
    args = ap.parse_args()
    profiled = {int(x) for x in args.profile.split(",") if x}

    settings = Settings(warehouse=args.warehouse)
    service = Service(ServiceConfig(api_keys={"bench": "bench"}), settings, None)
    if args.no_writer_instance:
        service.warehouse.writer = None
    started = time.monotonic()
    service.open()
    published = service.warehouse.published_version()
    while not (service.reader.indexed and service.reader.version >= published):
        if time.monotonic() - started > 900:
            print("the read model did not serve the published version in 900 s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    if service.warm_up is not None:
        service.warm_up.join()
    print(f"open: serving version {published} after {time.monotonic() - started:.1f} s")
    try:
        times = []
        for i in range(1, args.edits + 1):
            k = random.Random(i).randint(1, args.customers)
            profiler = cProfile.Profile() if i in profiled else None
            t0 = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            status, _ = service.edit(
                f"registered:user{k}", {"prop_9": f"profiled {i} {time.time()}"}, "bench"
            )
            if profiler is not None:
                profiler.disable()
            ms = (time.perf_counter() - t0) * 1000
            times.append(ms)
            print(f"edit {i}: {status} in {ms:.1f} ms{' (profiled)' if profiler else ''}")
            if profiler is not None:
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(
                    r"propsync|duckdb|sqlite|polars", args.top
                )
                print(out.getvalue())
        plain = [t for i, t in enumerate(times, 1) if i not in profiled]
        if plain:
            print(
                f"unprofiled edits: median {statistics.median(plain):.1f} ms, "
                f"min {min(plain):.1f}, max {max(plain):.1f} (n={len(plain)})"
            )
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
