"""Plot tracking intake throughput from ``bench_api.py`` results (docs/img/intake.png).

    .venv/bin/python bench/plot_intake.py --out docs/img/intake.png \\
        "before (Polars per request)=bench/out/old/results-50000x10-rm-w1.json" \\
        "now, 2 workers=bench/out/api/results-50000x10-rm-w2.json" ...

Each argument is ``LABEL=RESULTS.json``; a results file with a ``wrk`` phase adds its propsync
and bare-stack rows. Bars are commands/s acknowledged with fsync, annotated with batch p99.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def rows(label: str, path: Path) -> list[tuple[str, float, float]]:
    r = json.loads(path.read_text())
    out = []
    if "tracking" in r:
        t = r["tracking"]
        out.append(
            (f"{label}\n(Python load gen.)", t["commands_per_s"], t["batch_latency_ms"]["p99"])
        )
    if "wrk" in r:
        w = r["wrk"]
        out.append((f"{label}\n(wrk)", w["propsync"]["commands_per_s"], w["propsync"]["p99_ms"]))
        out.append(
            (
                f"bare uvicorn stack\n(wrk, same run as {label.split(',')[-1].strip()})",
                w["bare"]["commands_per_s"],
                w["bare"]["p99_ms"],
            )
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("runs", nargs="+", help="LABEL=results.json")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--title", default="Tracking intake, 50-command batches, 32 connections, 2 vCPUs"
    )
    args = ap.parse_args()
    data: list[tuple[str, float, float]] = []
    for arg in args.runs:
        label, _, path = arg.partition("=")
        data += rows(label, Path(path))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    names = [d[0] for d in data]
    values = [d[1] for d in data]
    bars = ax.barh(names, values, color=["#999" if "bare" in n else "#3b7dd8" for n in names])
    ax.set_xscale("log")
    ax.axvline(100_000, color="#c33", linestyle="--", linewidth=1)
    ax.text(100_000, -0.6, " issue #10 target: 100k/s", color="#c33", fontsize=8, va="bottom")
    for bar, (_, v, p99) in zip(bars, data, strict=True):
        ax.text(
            v * 1.05,
            bar.get_y() + bar.get_height() / 2,
            f"{v:,.0f}/s, p99 {p99:g} ms",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    ax.set_xlabel("commands/s acknowledged (fsync'd), log scale")
    ax.set_title(args.title, fontsize=10)
    ax.set_xlim(5_000, 5_000_000)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
