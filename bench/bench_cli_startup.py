"""How long ``propsync --version`` and ``propsync get`` take from start to exit (issue #13).

Not a test: it measures. Each source tree given runs each command as a fresh process, the trees
taking turns in blocks (half the runs of A, of B, then the other half of each, every block after
one unmeasured run), and the median wall time and CPU time (user + system, of exactly that child:
``os.wait4``) of ``--runs`` runs are reported, with the stages of ``get`` in the last tree (the
median of each, timed inside the process). Blocks, not single runs in turn: a run right after the
old tree's (which loads Polars) took a third longer. On a busy machine the wall time is the first
to suffer; the CPU time tells what the process itself costs.

    git archive HEAD~N src | tar -x -C /tmp/before      # the tree to compare with
    .venv/bin/python bench/bench_cli_startup.py --tree before=/tmp/before/src --tree after=src

The warehouse is the demo's (``propsync demo``, written once by the last tree into a temporary
directory); ``get`` reads ``registered:mgalik`` from it. Bytecode caching is on whatever
``PYTHONDONTWRITEBYTECODE`` says: an installed package has its ``.pyc`` files, and compiling the
sources on every start would be measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = "import sys; from propsync.cli import main; sys.exit(main())"  # the console script's body

# The stages of `propsync get`, timed inside one process (seconds since the interpreter started
# running this code; the interpreter's own start-up is measured apart, as `python -c pass`).
STAGES = """
import json, sys, time
t = [time.perf_counter()]
from propsync.cli import build_parser
build_parser(); t.append(time.perf_counter())
import duckdb; t.append(time.perf_counter())
from propsync.store.read import CustomerRef, get_customer, render_customer
from propsync.store.warehouse import Warehouse; t.append(time.perf_counter())
con = Warehouse(sys.argv[1]).connect_published(); t.append(time.perf_counter())
customer = get_customer(con, CustomerRef.parse("registered:mgalik")); t.append(time.perf_counter())
render_customer(customer, False); con.close(); t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
STAGE_NAMES = (
    "propsync.cli and its parser",
    "import duckdb",
    "store.warehouse, store.read",
    "open the published catalog",
    "the queries (3)",
    "render, close",
)


def child_env(tree: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": tree}


def run(tree: str, args: list[str], code: str = ENTRY) -> tuple[float, float]:
    """(wall, CPU) seconds of one run."""
    env = child_env(tree)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, args
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="LABEL=SRC_DIR")
    parser.add_argument("--runs", type=int, default=10)
    opts = parser.parse_args()
    trees = dict(t.split("=", 1) for t in opts.tree)
    last = list(trees.values())[-1]
    with tempfile.TemporaryDirectory() as tmp:
        wh = str(Path(tmp) / "demo")
        run(last, ["demo", "--warehouse", wh])
        commands = {
            "propsync --version": ["--version"],
            "propsync get": ["get", "registered:mgalik", "--warehouse", wh],
        }
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for block in (opts.runs // 2, opts.runs - opts.runs // 2):
            for label, tree in trees.items():
                for name, args in commands.items():
                    run(tree, args)  # unmeasured (and the first writes the bytecode caches)
                    for _ in range(block):
                        times.setdefault((name, label), []).append(run(tree, args))
        stages = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", STAGES, wh],
                    env=child_env(last),
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(opts.runs)
        ]
        bare = [run(last, [], "pass")[0] for _ in range(opts.runs)]
        floor = [run(last, [], "import duckdb")[0] for _ in range(opts.runs)]
    print(f"median of {opts.runs} runs, ms; load average {os.getloadavg()[0]:.2f}")
    print(f"| command | {' | '.join(f'{t} wall | {t} CPU' for t in trees)} |")
    print(f"|---|{'---:|' * 2 * len(trees)}")
    for name in commands:
        cells = [
            f"{statistics.median(x[i] for x in times[(name, label)]) * 1000:.0f}"
            for label in trees
            for i in (0, 1)
        ]
        print(f"| `{name}` | {' | '.join(cells)} |")
    print(f"\nstages of `propsync get` ({list(trees)[-1]}), median wall ms:")
    print(f"| interpreter start-up (`python -c pass`) | {statistics.median(bare) * 1000:.0f} |")
    for i, name in enumerate(STAGE_NAMES):
        print(f"| {name} | {statistics.median(s[i] for s in stages) * 1000:.0f} |")
    print(f"\n`python -c 'import duckdb'`, start to exit: {statistics.median(floor) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
