"""Plot tracked -> visible lag against time, one line per bench_api.py run.

    .venv/bin/python bench/plot_lag.py --out docs/img/lag-20k.png \\
        "before=bench/out/lag/1-before.log" "after=bench/out/lag/4-final-a.log"

Each argument is LABEL=PATH, PATH a ``bench_api.py`` log (its ``lag: {...}`` line) or a results
JSON (its ``lag`` entry). A probe is sent every ``probe_every_s`` seconds, so probe i is plotted
at i * probe_every_s. Needs matplotlib (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any


def lag_of(path: Path) -> dict[str, Any]:
    if path.suffix == ".json":
        return dict(json.loads(path.read_text())["lag"])
    for line in path.read_text().splitlines():
        if line.strip().startswith("lag: {"):
            return dict(ast.literal_eval(line.strip()[len("lag: ") :]))
    raise SystemExit(f"{path}: no 'lag: {{...}}' line")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("runs", nargs="+", help="LABEL=PATH")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="Tracked -> visible at 1M customers x 10, 20,000 commands/s")
    ap.add_argument("--target", type=float, default=2.0, help="a dashed line at this lag (0: none)")
    ap.add_argument(
        "--load-end",
        type=float,
        help="seconds into the lag phase when the other tracking stopped: a dotted line of the "
        "probes seen at that moment (those above it were seen only once the load had stopped)",
    )
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    for spec in args.runs:
        label, _, path = spec.rpartition("=")
        lag = lag_of(Path(path))
        every = float(lag.get("probe_every_s", 2.0))
        lags = lag["lags_s"]
        xs = [i * every for i in range(len(lags))]
        ax.plot(
            xs,
            lags,
            marker="o",
            markersize=3,
            linewidth=1.2,
            label=f"{label} (p50 {lag['p50_s']} s, p99 {lag['p99_s']} s)",
        )
    if args.target:
        ax.axhline(args.target, color="grey", linestyle="--", linewidth=0.8)
        ax.text(
            ax.get_xlim()[1],
            args.target * 1.025,
            f"target p99 {args.target:g} s ",
            color="grey",
            fontsize=8,
            ha="right",
        )
    if args.load_end is not None:
        ax.plot(
            [0, args.load_end],
            [args.load_end, 0],
            color="grey",
            linestyle=":",
            linewidth=0.8,
            label="seen when the load stopped",
        )
    ax.set_xlabel("seconds into the lag phase (when the probe was sent)")
    ax.set_ylabel("tracked -> visible (s)")
    ax.set_title(args.title, fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
