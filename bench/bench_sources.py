"""What the source rules (docs/sources.md) cost: ``normalize_file`` on 1M x 10 variants, A/B.

Not a test: it measures. The bench_import data (1M rows x 10 properties) is written as CSV
variants and as JSON Lines; each is normalised in a fresh child process by each source tree given
(alternately: A, B, A, B, ...), wall time and CPU time of the child reported as medians.

    git archive HEAD~N src | tar -x -C /tmp/before      # the tree to compare with
    .venv/bin/python bench/bench_sources.py --tree before=/tmp/before/src --tree after=src

Variants: ``csv`` (the last column is never empty: no per-line scan), ``csv_last_empty`` (1 % of
last cells empty: the scan runs), ``csv_quoted_last_empty`` (every field quoted as well), ``jsonl``
(written by Polars: explicit nulls in 2 % of rows).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHILD = """
import json, resource, sys, time
from pathlib import Path
from propsync.mapping import load_mapping
from propsync.normalize import normalize_file
t = time.perf_counter()
b = normalize_file(Path(sys.argv[1]), load_mapping(sys.argv[2]), batch_id="b", source="s",
                   started_at_us=1_700_000_000_000_000, now_us=1_800_000_000_000_000,
                   max_future_skew_us=600_000_000)
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": r.ru_utime + r.ru_stime, "rss_mib": r.ru_maxrss / 1024,
                  "rows": b.rows_read, "cells": b.cells.height}))
"""


def variants(data: Path) -> dict[str, Path]:
    import bench_import
    import polars as pl

    files = bench_import.generate(data, 1_000_000, 10, 42, "csv")
    out = {"csv": files["update"]}
    df = pl.read_csv(files["update"], infer_schema=False)
    last_empty = df.select([c for c in df.columns if c != "visits"] + ["visits"])
    targets = {
        "csv_last_empty": lambda p: last_empty.write_csv(p),
        "csv_quoted_last_empty": lambda p: _quoted_with_empty_last(last_empty, p),
        "jsonl": lambda p: df.write_ndjson(p),
    }
    for name, write in targets.items():
        path = data / f"{name}.{'jsonl' if name == 'jsonl' else 'csv'}"
        if not path.exists():
            write(path)
        out[name] = path
    out["mapping"] = files["mapping"]
    return out


def _quoted_with_empty_last(df: object, path: Path) -> None:
    """Every field quoted, a null last cell empty and unquoted (Polars would write "")."""
    df.write_csv(path, quote_style="always")  # type: ignore[attr-defined]
    path.write_bytes(path.read_bytes().replace(b',""\n', b",\n"))


def run(tree: Path, source: Path, mapping: Path) -> dict[str, float]:
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(mapping)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", required=True, help="NAME=SRC_DIR")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path("/tmp/propsync-bench-sources"))
    parser.add_argument("--only", nargs="*", help="variants to run")
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    files = variants(args.data)
    mapping = files.pop("mapping")
    for name, source in files.items():
        if args.only and name not in args.only:
            continue
        runs: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
        for _ in range(args.repeat):
            for tree, src in trees.items():
                runs[tree].append(run(Path(src), source, mapping))
        for tree, rs in runs.items():
            med = {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu", "rss_mib")}
            print(
                f"{name:<22} {tree:<8} wall {med['wall']:6.2f} s  cpu {med['cpu']:6.2f} s  "
                f"rss {med['rss_mib']:6.0f} MiB  (walls {[round(r['wall'], 2) for r in rs]})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
