"""Scaling benchmark: what one small write costs as the warehouse grows (issue #9, BEFORE curve).

Not a test: it measures. For each warehouse size (customers x 10 properties) it builds, once, a
warehouse with propsync's own ``propsync import`` of a generated base CSV (the product's real
layout; cached under ``bench/out/scaling/template-<size>/``), then, on a fresh copy of it:

1. ``propsync set crm:<id> city=<value>``: wall time of the whole new process (interpreter start
   included), median and p90 of ``--set-runs`` (after one unmeasured warm-up).
2. ``PATCH /api/customers/crm:<id>`` through a real ``propsync serve`` on loopback: seconds until
   the response arrives (it shows the edit: read-your-writes), median and p99 of ``--patch-runs``.
3. Tracked -> visible: POST one tracking command to the same server (background applier on, its
   default intervals), then poll ``GET /api/customers/crm:<id>`` every 20 ms until the new value is
   visible; median and p99 of ``--track-runs`` (after one unmeasured warm-up).

    .venv/bin/python bench/bench_scaling.py --sizes 50000,500000,5000000
    .venv/bin/python bench/bench_scaling.py --sizes 50000 --set-runs 7 --patch-runs 20 --track-runs 10
    .venv/bin/python bench/bench_scaling.py --render 50000,500000,1000000   # table + plot from saved results

Output: progress on stdout, one ``bench/out/scaling/results-<size>.json`` per size, a Markdown
table on stdout and the plot ``docs/img/scaling-before.png`` (needs the ``bench`` extra:
``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLOT = REPO / "docs" / "img" / "scaling-before.png"
TOKEN = "bench-scaling-token"
KEY = ("bench", "bench-secret")
PROPS = 10
SEED = 20240601
CHUNK = 500_000  # rows generated and written per step
EDIT_PROPERTY = "city"  # a string property of bench_import's data


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..1): with 20 samples p99 is the maximum."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p * len(ordered) + 0.5) - 1))]


def customer(size: int, k: int) -> str:
    """The external id of customer number ``k`` (1-based), as bench_import's generator writes it."""
    return f"c{k:0{max(7, len(str(size)))}d}"


# --------------------------------------------------------------------------------------------------
# Data and the cached warehouse
# --------------------------------------------------------------------------------------------------


def generate_main(argv: list[str]) -> int:
    """``_generate SIZE DIR``: base.csv (bench_import's base snapshot, in chunks) + mapping.json."""
    import numpy as np
    import polars as pl

    sys.path.insert(0, str(HERE))
    import bench_import as bi

    size, data_dir = int(argv[0]), Path(argv[1])
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    props = bi.properties(PROPS)
    width = max(7, len(str(size)))
    partial = data_dir / "base.csv.partial"
    with partial.open("wb") as f:
        for start in range(1, size + 1, CHUNK):
            stop = min(size + 1, start + CHUNK)
            digits = pl.Series(np.arange(start, stop), dtype=pl.Int64).cast(pl.String)
            ids = pl.select(pl.lit("c") + digits.str.zfill(width)).to_series()
            frame = bi._snapshot(ids, bi.BASE_TS, props, rng, update=False)
            frame.write_csv(f, include_header=start == 1)
            print(f"  generated {stop - 1:,} / {size:,} rows", flush=True)
    partial.rename(data_dir / "base.csv")
    mapping = {
        "ids": [{"from_column": bi.ID_COLUMN, "to_id": bi.ID_TYPE}],
        "update_timestamp": {"from_column": bi.TS_COLUMN},
        "timezone": "UTC",
        "properties": [{"from_column": n, "to_property": n, "type": t} for n, t, _ in props],
    }
    (data_dir / "mapping.json").write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")
    return 0


def propsync_cli() -> str:
    exe = Path(sys.executable).parent / "propsync"
    if exe.exists():
        return str(exe)
    found = shutil.which("propsync")
    if not found:
        raise SystemExit("propsync CLI not found: install the package (pip install -e .)")
    return found


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PROPSYNC_")}


def run_with_progress(cmd: list[str], logfile: Path, what: str, watch: Path | None = None) -> float:
    """Run ``cmd`` (output to ``logfile``), printing progress every 15 s; returns wall seconds."""
    started = time.perf_counter()
    with logfile.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env())
        next_note = started + 15
        while proc.poll() is None:
            time.sleep(0.2)
            if time.perf_counter() >= next_note:
                next_note += 15
                extra = ""
                if watch is not None and watch.exists():
                    extra = f", {watch.name} {watch.stat().st_size / 2**20:,.0f} MiB"
                log(f"  {what}: {time.perf_counter() - started:.0f} s{extra}")
    if proc.returncode != 0:
        tail = logfile.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{what} failed ({proc.returncode}), see {logfile}:\n{tail}")
    return time.perf_counter() - started


def build_template(out: Path, size: int) -> dict[str, Any]:
    """The cached warehouse of ``size`` customers x 10 properties (built once, by propsync import)."""
    template = out / f"template-{size}"
    info_file = out / f"template-{size}.json"
    if info_file.exists() and (template / "work.duckdb").exists():
        info: dict[str, Any] = json.loads(info_file.read_text())
        log(
            f"size {size:,}: reusing the cached warehouse {template} (built in {info['import_s']:.0f} s)"
        )
        return info
    data_dir = out / "data" / str(size)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    gen_s = 0.0
    if not (data_dir / "base.csv").exists() or not (data_dir / "mapping.json").exists():
        log(f"size {size:,}: generating base.csv ({size:,} rows x {PROPS} properties)")
        cmd = [sys.executable, str(Path(__file__).resolve()), "_generate", str(size), str(data_dir)]
        gen_s = run_with_progress(cmd, logs / f"generate-{size}.log", "generate")
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    log(f"size {size:,}: propsync import base.csv into an empty warehouse")
    cmd = [
        propsync_cli(),
        "import",
        str(data_dir / "base.csv"),
        "--mapping",
        str(data_dir / "mapping.json"),
        "--warehouse",
        str(template),
        "--json",
    ]
    import_s = run_with_progress(
        cmd, logs / f"import-{size}.log", "import", template / "work.duckdb"
    )
    shutil.rmtree(template / "tmp", ignore_errors=True)
    info = {
        "size": size,
        "props": PROPS,
        "generate_s": round(gen_s, 1),
        "import_s": round(import_s, 1),
        "csv_mib": round((data_dir / "base.csv").stat().st_size / 2**20, 1),
        "work_mib": round((template / "work.duckdb").stat().st_size / 2**20, 1),
    }
    info_file.write_text(json.dumps(info, indent=2))
    log(
        f"size {size:,}: warehouse built in {import_s:.0f} s, work.duckdb {info['work_mib']:,.0f} MiB"
    )
    return info


def fresh_copy(template: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, symlinks=True)
    with contextlib.suppress(FileNotFoundError):
        (target / "write.lock").unlink()
    os.sync()


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------


def measure_set(wh: Path, size: int, runs: int) -> list[float]:
    cli, env = propsync_cli(), child_env()
    rnd = random.Random(1)
    out = []
    for i in range(runs + 1):  # the first is a warm-up (page cache, .pyc)
        ref = f"crm:{customer(size, rnd.randint(1, size))}"
        cmd = [cli, "set", "--warehouse", str(wh), ref, f"{EDIT_PROPERTY}=set {i}"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"propsync set failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        got = subprocess.run(
            [cli, "get", "--warehouse", str(wh), ref], capture_output=True, text=True, env=env
        )
        if f"set {i}" not in got.stdout:
            raise SystemExit(f"propsync get does not show the edit:\n{got.stdout}\n{got.stderr}")
        if i:
            out.append(wall)
        log(f"  set {i or 'warm-up'}: {wall:.2f} s")
    return out


class Server:
    def __init__(self, wh: Path, logfile: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = child_env() | {
            "PROPSYNC_PROJECT_TOKENS": TOKEN,
            "PROPSYNC_API_KEYS": f"{KEY[0]}:{KEY[1]}",
        }
        cmd = [
            sys.executable,
            "-m",
            "propsync.cli",
            "serve",
            "--warehouse",
            str(wh),
            "--port",
            str(self.port),
            "--log-level",
            "info",
        ]
        self.wh = wh
        self.log = logfile.open("ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 3600) -> float:
        """Until /healthz answers and the server serves the published version from its read model."""
        import httpx

        from propsync.store.warehouse import Warehouse

        published = Warehouse(self.wh).published_version()
        started = time.perf_counter()
        next_note = started + 15
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited ({self.proc.returncode}): see {self.log.name}")
            with contextlib.suppress(httpx.HTTPError):
                serving = httpx.get(self.url() + "/healthz", timeout=5).json().get("serving", {})
                if serving.get("indexed") and serving.get("version", 0) >= published:
                    return time.perf_counter() - started
            if time.perf_counter() > started + timeout:
                raise SystemExit(f"no read model of the published version after {timeout:.0f} s")
            if time.perf_counter() >= next_note:
                next_note += 15
                log(f"  server: building its read model, {time.perf_counter() - started:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()  # this child only
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def measure_patch(c: Any, size: int, runs: int) -> list[float]:
    rnd = random.Random(2)
    out = []
    for i in range(runs + 2):  # two warm-ups
        ref = f"crm:{customer(size, rnd.randint(1, size))}"
        value = f"patch {i}"
        t0 = time.perf_counter()
        r = c.patch(f"/api/customers/{ref}", json={"properties": {EDIT_PROPERTY: value}})
        wall = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        assert r.json()["properties"][EDIT_PROPERTY]["value"] == value, r.text
        if i >= 2:
            out.append(wall)
        log(f"  PATCH {'warm-up' if i < 2 else i - 1}: {wall * 1000:,.0f} ms")
    return out


def measure_track(c: Any, size: int, runs: int, timeout: float) -> list[float]:
    rnd = random.Random(3)
    out = []
    for i in range(runs + 1):  # one warm-up: the applier may not have published for a while
        ext = customer(size, rnd.randint(1, size))
        value = f"tracked {i}"
        command = {
            "name": "customers",
            "data": {
                "customer_ids": {"crm": ext},
                "properties": {EDIT_PROPERTY: value},
                "update_timestamp": round(time.time(), 6),
            },
        }
        t0 = time.perf_counter()
        r = c.post(f"/track/v2/projects/{TOKEN}/batch", json={"commands": [command]})
        assert r.status_code == 200, r.text
        while True:
            got = c.get(f"/api/customers/crm:{ext}")
            if got.status_code == 200 and got.json()["properties"].get(EDIT_PROPERTY) == value:
                break
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"tracked update not visible after {timeout:.0f} s")
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        if i:
            out.append(wall)
        log(f"  tracked -> visible {i or 'warm-up'}: {wall:.2f} s")
    return out


def measure_size(out: Path, size: int, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    info = build_template(out, size)
    wh = out / "run"
    result: dict[str, Any] = {
        "size": size,
        "props": PROPS,
        "template": info,
        "machine": machine_info(),
        "loadavg_1m_before": loadavg(),
    }
    log(f"size {size:,}: fresh copy of the warehouse")
    fresh_copy(out / f"template-{size}", wh)
    log(f"size {size:,}: propsync set x {args.set_runs} (+1 warm-up)")
    result["set_s"] = measure_set(wh, size, args.set_runs)
    log(f"size {size:,}: propsync serve")
    server = Server(wh, out / "logs" / f"serve-{size}.log")
    try:
        result["server_ready_s"] = round(server.wait_ready(), 1)
        log(f"  server ready (read model) after {result['server_ready_s']} s")
        with httpx.Client(base_url=server.url(), auth=KEY, timeout=args.timeout) as c:
            log(f"size {size:,}: PATCH x {args.patch_runs} (+2 warm-ups)")
            result["patch_s"] = measure_patch(c, size, args.patch_runs)
            log(f"size {size:,}: tracked -> visible x {args.track_runs} (+1 warm-up)")
            result["track_s"] = measure_track(c, size, args.track_runs, args.timeout)
    finally:
        server.stop()
    result["loadavg_1m_after"] = loadavg()
    result["work_mib_after"] = round((wh / "work.duckdb").stat().st_size / 2**20, 1)
    shutil.rmtree(wh, ignore_errors=True)
    (out / f"results-{size}.json").write_text(json.dumps(result, indent=2))
    return result


def machine_info() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "python": platform.python_version(),
        "duckdb": version("duckdb"),
        "polars": version("polars"),
        "propsync": version("propsync"),
    }


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

METRICS = [  # (key, label, upper percentile, its label)
    ("set_s", "`propsync set` (new process)", 0.90, "p90"),
    ("patch_s", "PATCH until the response", 0.99, "p99"),
    ("track_s", "tracked -> visible", 0.99, "p99"),
]


def fmt_s(x: float) -> str:
    return f"{x * 1000:,.0f} ms" if x < 1 else f"{x:,.2f} s"


def render(results: list[dict[str, Any]]) -> str:
    results = sorted(results, key=lambda r: r["size"])
    head = "| customers x 10 | cells | work.duckdb | build (import) |"
    rule = "|---:|---:|---:|---:|"
    for _, label, _, up in METRICS:
        head += f" {label} median | {up} |"
        rule += "---:|---:|"
    lines = [head, rule]
    for r in results:
        t = r["template"]
        row = (
            f"| {r['size']:,} | {r['size'] * PROPS / 1e6:g}M | {t['work_mib']:,.0f} MiB | "
            f"{t['import_s']:.0f} s |"
        )
        for key, _, p, _ in METRICS:
            xs = r[key]
            row += f" **{fmt_s(statistics.median(xs))}** (n={len(xs)}) | {fmt_s(pct(xs, p))} |"
        lines.append(row)
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        row = f"| **ratio {hi['size']:,} / {lo['size']:,}** | {hi['size'] / lo['size']:g}x | | |"
        for key, _, p, _ in METRICS:
            m = statistics.median(hi[key]) / statistics.median(lo[key])
            row += f" **{m:.1f}x** ({'met' if m <= 1.5 else 'NOT met'}) | {pct(hi[key], p) / pct(lo[key], p):.1f}x |"
        lines.append(row)
    loads = ", ".join(
        f"{r['size']:,}: {r['loadavg_1m_before']:.1f} / {r['loadavg_1m_after']:.1f}"
        for r in results
    )
    lines += [
        "",
        "Target (issue #9): largest / smallest <= 1.5x for every metric. "
        f"Load average (1 min) before / after each size: {loads}. "
        f"Measured {results[0]['machine']['date']} - {results[-1]['machine']['date']}, "
        f"propsync {results[0]['machine']['propsync']}, DuckDB {results[0]['machine']['duckdb']}.",
    ]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    results = sorted(results, key=lambda r: r["size"])
    sizes = [r["size"] for r in results]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for (key, label, p, up), marker in zip(METRICS, "osD", strict=True):
        medians = [statistics.median(r[key]) for r in results]
        uppers = [pct(r[key], p) for r in results]
        line = ax.plot(sizes, medians, marker=marker, label=f"{label.replace('`', '')}: median")
        ax.plot(sizes, uppers, ls="--", lw=1, color=line[0].get_color(), label=f"  {up}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("warehouse size (customers x 10 properties)")
    ax.set_ylabel("seconds per one-property write")
    ax.set_title(f"Cost of one small write vs warehouse size ({title})")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g} s"))
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda y, _: f"{y:g}" if f"{y:g}"[0] in "25" else "")
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_generate":
        return generate_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="50000,500000,5000000", help="customers, comma-separated")
    p.add_argument("--set-runs", type=int, default=7)
    p.add_argument("--patch-runs", type=int, default=20)
    p.add_argument("--track-runs", type=int, default=10)
    p.add_argument("--timeout", type=float, default=900, help="seconds per request / visibility")
    p.add_argument("--out", type=Path, default=HERE / "out" / "scaling")
    p.add_argument("--plot", type=Path, default=PLOT, help="PNG to write")
    p.add_argument("--title", default="before the store redesign", help="the plot's subtitle")
    p.add_argument("--render", metavar="SIZES", help="only render saved results of these sizes")
    args = p.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.render:
        sizes = [int(s) for s in args.render.split(",")]
        results = [json.loads((out / f"results-{s}.json").read_text()) for s in sizes]
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        results = []
        for size in sizes:
            results.append(measure_size(out, size, args))
            log(f"size {size:,} done: results-{size}.json")
    print()
    print(render(results))
    plot(results, args.plot, args.title)
    log(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
