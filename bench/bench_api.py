"""HTTP service benchmark: tracking throughput with durability, GET latency, zero loss.

    .venv/bin/python bench/bench_api.py                       # 1M customers x 10 properties
    .venv/bin/python bench/bench_api.py --customers 20000 --duration 5 --get-duration 5   # quick
    .venv/bin/python bench/bench_api.py --write-docs          # + the "HTTP service" section

What it does (everything under ``--out``, default ``bench/out/api``):

1. Template warehouse of N customers x P properties (ids ``registered:user<k>``), built once
   through ``apply_batch`` and cached; every run starts from a fresh copy.
2. Starts ``propsync serve`` (a child process) on a free loopback port.
3. Tracking: ``--connections`` keep-alive connections send ``POST .../batch`` bodies of
   ``--batch`` ``customers`` commands for ``--duration`` seconds (closed loop: each connection
   sends its next batch when the previous one is answered). Every command updates ``prop_0`` of
   its own existing customer (one customer per command, so each acknowledged command can be
   checked) with an ``update_timestamp``. Commands/s and batch latency p50/p99 are measured by the
   client. The load generator is raw asyncio HTTP/1.1 in this process (no client library).
4. Right after the last response the server gets SIGKILL. ``apply_journal`` then applies the
   journal into the warehouse and every acknowledged command is looked up: its value must be
   there (zero acknowledged commands lost). The apply time is reported too.
5. GET: a fresh server on the applied warehouse; ``--get-connections`` connections request
   ``GET /api/customers/registered:user<random>?include_timestamps=1`` for ``--get-duration``
   seconds; p50/p99/max are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from propsync.batch import CELLS_SCHEMA, IDS_SCHEMA, UpdateBatch
from propsync.config import Settings
from propsync.journal import apply_journal
from propsync.store.apply import apply_batch, publish_pending
from propsync.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-project-token"
KEY = ("bench", "bench-secret")
BASE_TS_US = 1_600_000_000_000_000
# Indexes proposed for the core schema (see docs/benchmarks.md): point reads by id and customer.
PROPOSED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS customer_ids_by_value ON customer_ids (id_value)",
    "CREATE INDEX IF NOT EXISTS customer_ids_by_customer ON customer_ids (customer_id)",
    "CREATE INDEX IF NOT EXISTS customer_aliases_by_old ON customer_aliases (old_customer_id)",
    "CREATE INDEX IF NOT EXISTS properties_by_customer ON properties (customer_id)",
)


# -- template warehouse ---------------------------------------------------------------------------


def build_template(path: Path, customers: int, properties: int, indexes: bool) -> float:
    """N customers x P properties through the core apply path; returns seconds taken."""
    if (path / "propsync.duckdb").exists():
        return 0.0
    shutil.rmtree(path, ignore_errors=True)
    started = time.monotonic()
    rows = pl.int_range(1, customers + 1, eager=True, dtype=pl.Int64).alias("row_nr")
    ids = (
        pl.DataFrame({"row_nr": rows})
        .select("row_nr", id_type=pl.lit("registered"), id_value=pl.format("user{}", "row_nr"))
        .cast(IDS_SCHEMA)  # type: ignore[arg-type]
    )
    cells = pl.concat(
        [
            ids.select(
                "row_nr",
                property=pl.lit(f"prop_{p}"),
                value=pl.format('"value {} of user{}"', pl.lit(p), "row_nr"),
                update_ts=pl.lit(BASE_TS_US, dtype=pl.Int64) + pl.col("row_nr"),
            )
            for p in range(properties)
        ]
    ).cast(CELLS_SCHEMA)  # type: ignore[arg-type]
    batch = UpdateBatch(
        batch_id=f"bench-template-{customers}x{properties}",
        kind="import",
        source="bench_api template",
        ids=ids,
        cells=cells,
        rows_read=customers,
        cells_incoming=cells.height,
        started_at_us=BASE_TS_US,
    )
    settings = Settings(warehouse=path)
    warehouse = Warehouse(path)
    result = apply_batch(warehouse, batch, settings, publish=False)
    assert result.status == "applied", result.message
    if indexes:  # built once after the bulk load; apply_batch maintains them from then on
        with warehouse.write_lock():
            con = warehouse.connect_work()
            for statement in PROPOSED_INDEXES:
                con.execute(statement)
            con.execute("CHECKPOINT")
            con.close()
    publish_pending(warehouse, settings)
    return time.monotonic() - started


def copy_warehouse(template: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template, dest, symlinks=True)
    os.sync()


# -- server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @classmethod
    def start(cls, warehouse: Path, log: Path, *, apply: bool, workers: int) -> Server:
        port = free_port()
        env = {
            **os.environ,
            "PROPSYNC_PROJECT_TOKENS": TOKEN,
            "PROPSYNC_API_KEYS": f"{KEY[0]}:{KEY[1]}",
        }
        cmd = [
            sys.executable,
            "-m",
            "propsync.cli",
            "serve",
            "--warehouse",
            str(warehouse),
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        if not apply:
            cmd.append("--no-apply")
        with open(log, "ab") as f:
            proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
        server = cls(proc, port, log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: see {log}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 0.2) as s,
            ):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return server
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError("server did not become healthy")

    def kill9(self) -> None:
        # With --workers the uvicorn worker processes (our grandchildren) are killed as well.
        children = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        self.proc.send_signal(signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- raw HTTP/1.1 client --------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


def request_bytes(method: str, path: str, body: bytes | None, auth: str | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if auth:
        head.append(f"Authorization: Basic {auth}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # sequence numbers of acknowledged commands
    errors: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0


class SeqSource:
    """Hands out command sequence numbers; command ``s`` updates customer ``user(s % N + 1)``."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, n: int) -> range:
        r = range(self.next, self.next + n)
        self.next += n
        return r


def tracking_body(seqs: range, run: str, customers: int, t0: float) -> bytes:
    # update_timestamp grows with the sequence number, so the last command per customer wins.
    commands = [
        {
            "name": "customers",
            "command_id": s,
            "data": {
                "customer_ids": {"registered": f"user{s % customers + 1}"},
                "properties": {"prop_0": f"{run} seq {s}", "last_seen_app": "bench"},
                "update_timestamp": round(t0 + s * 1e-6, 6),
            },
        }
        for s in seqs
    ]
    return json.dumps({"commands": commands}, separators=(",", ":")).encode()


async def tracking_load(
    port: int, connections: int, duration: float, batch: int, run: str, customers: int
) -> LoadResult:
    result = LoadResult()
    seqs = SeqSource()
    path = f"/track/v2/projects/{TOKEN}/batch"
    deadline = time.perf_counter() + duration
    t0 = round(time.time() - 1.0, 6)

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                taken = seqs.take(batch)
                req = request_bytes("POST", path, tracking_body(taken, run, customers, t0))
                sent = time.perf_counter()
                writer.write(req)
                status, _ = await read_response(reader)
                result.latencies.append(time.perf_counter() - sent)
                if status == 200:
                    result.acked.extend(taken)
                else:
                    result.errors[status] = result.errors.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


async def get_load(port: int, connections: int, duration: float, customers: int) -> LoadResult:
    result = LoadResult()
    auth = base64.b64encode(f"{KEY[0]}:{KEY[1]}".encode()).decode()
    deadline = time.perf_counter() + duration
    rng = random.Random(7)

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                k = rng.randint(1, customers)
                req = request_bytes(
                    "GET", f"/api/customers/registered:user{k}?include_timestamps=1", None, auth
                )
                t0 = time.perf_counter()
                writer.write(req)
                status, body = await read_response(reader)
                result.latencies.append(time.perf_counter() - t0)
                if status != 200 or f'"user{k}"'.encode() not in body:
                    result.errors[status] = result.errors.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000 if s else float("nan")


# -- verification ---------------------------------------------------------------------------------


def verify(warehouse: Path, run: str, acked: list[int], customers: int) -> dict[str, Any]:
    """Every acknowledged command's value must be stored (or beaten by a later command)."""
    with duckdb.connect(str(Warehouse(warehouse).published_file()), read_only=True) as con:
        rows = con.execute(
            "SELECT value FROM properties WHERE property = 'prop_0' AND value LIKE $p",
            {"p": f'"{run} seq %'},
        ).fetchall()
    # Command s updated customer s % N; its value must be stored or beaten by a later command
    # (a greater sequence number, hence a newer update_timestamp) of the same customer.
    latest: dict[int, int] = {}
    for (v,) in rows:
        s = int(json.loads(v).rsplit(" ", 1)[1])
        latest[s % customers] = max(s, latest.get(s % customers, -1))
    missing = [s for s in acked if latest.get(s % customers, -1) < s]
    return {
        "acked": len(acked),
        "customers_updated": len(latest),
        "missing": len(missing),
        "examples": missing[:5],
    }


# -- main -----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn workers), from /proc."""
    total = 0.0
    pids = [
        pid,
        *map(
            int,
            subprocess.run(
                ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
            ).stdout.split(),
        ),
    ]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def fsync_probe(directory: Path, n: int = 100) -> float:
    """Median milliseconds of ``write`` 8 KiB + ``fdatasync`` on the warehouse's disk."""
    path = directory / ".fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    lat = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 8192)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    return round(statistics.median(lat) * 1000, 2)


def health_journal(port: int) -> dict[str, Any]:
    import httpx

    data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()[
        "journal"
    ]
    return data


def patch_latencies(port: int, n: int, customers: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=KEY, timeout=120) as c:
        for i in range(n):
            k = random.Random(i).randint(1, customers)
            t0 = time.perf_counter()
            r = c.patch(
                f"/api/customers/registered:user{k}", json={"properties": {"prop_9": f"edited {i}"}}
            )
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            assert r.json()["properties"]["prop_9"]["value"] == f"edited {i}"
    return out


def get_phase(port: int, connections: int, duration: float, customers: int) -> dict[str, Any]:
    gets = asyncio.run(get_load(port, connections, duration, customers))
    result = {
        "connections": connections,
        "requests": len(gets.latencies),
        "per_s": round(len(gets.latencies) / gets.elapsed),
        "p50_ms": round(pct(gets.latencies, 0.5), 2),
        "p99_ms": round(pct(gets.latencies, 0.99), 2),
        "max_ms": round(max(gets.latencies) * 1000, 1),
        "mean_ms": round(statistics.fmean(gets.latencies) * 1000, 2),
        "errors": gets.errors,
    }
    print(f"  GET x{connections}: {result}", flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--properties", type=int, default=10)
    ap.add_argument("--duration", type=float, default=30.0, help="tracking load seconds")
    ap.add_argument("--connections", type=int, default=32, help="tracking connections")
    ap.add_argument("--batch", type=int, default=50, help="commands per tracking batch")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument(
        "--background-apply", action="store_true", help="server applies during the load"
    )
    ap.add_argument("--get-duration", type=float, default=20.0)
    ap.add_argument("--get-connections", default="1,4", help="comma-separated GET concurrencies")
    ap.add_argument("--patches", type=int, default=5, help="sequential PATCHes to time")
    ap.add_argument("--skip-tracking", action="store_true", help="only GET and PATCH")
    ap.add_argument(
        "--no-indexes", action="store_true", help="template without the proposed indexes"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "api")
    ap.add_argument(
        "--write-docs", action="store_true", help="rewrite the HTTP section of docs/benchmarks.md"
    )
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    indexes = not args.no_indexes
    tag = f"{args.customers}x{args.properties}{'-idx' if indexes else ''}"
    template = args.out / f"template-{tag}"
    print(f"template {template} ...", flush=True)
    build_s = build_template(template, args.customers, args.properties, indexes)
    if build_s:
        print(f"  built in {build_s:.1f} s", flush=True)
    run_dir = args.out / "run"
    log = args.out / "server.log"
    log.unlink(missing_ok=True)
    copy_warehouse(template, run_dir)
    run = f"r{int(time.time())}"
    results: dict[str, Any] = {
        "customers": args.customers,
        "properties": args.properties,
        "proposed_indexes": indexes,
        "warehouse_bytes": (template / "work.duckdb").stat().st_size,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "fdatasync_ms_p50": fsync_probe(run_dir),
    }
    ok = True

    if not args.skip_tracking:
        server = Server.start(run_dir, log, apply=args.background_apply, workers=args.workers)
        print(
            f"tracking: {args.connections} connections x {args.batch} commands for "
            f"{args.duration:g} s, {args.workers} worker(s)"
            f"{', background apply' if args.background_apply else ''}",
            flush=True,
        )
        cpu0, client0 = cpu_seconds(server.proc.pid), time.process_time()
        track = asyncio.run(
            tracking_load(
                server.port, args.connections, args.duration, args.batch, run, args.customers
            )
        )
        cpu, client_cpu = cpu_seconds(server.proc.pid) - cpu0, time.process_time() - client0
        health = health_journal(server.port) if args.workers == 1 else {}
        server.kill9()  # right after the last acknowledged response
        journal_bytes = sum(p.stat().st_size for p in (run_dir / "journal").glob("*.jsonl"))
        commands = len(track.acked)
        throughput = commands / track.elapsed
        print(
            f"  {commands:,} commands acknowledged in {track.elapsed:.1f} s = {throughput:,.0f} "
            f"commands/s; batch latency p50 {pct(track.latencies, 0.5):.1f} ms p99 "
            f"{pct(track.latencies, 0.99):.1f} ms; CPU server {cpu:.1f} s, load generator "
            f"{client_cpu:.1f} s; errors {track.errors}",
            flush=True,
        )
        print("killed -9; applying the journal ...", flush=True)
        t0 = time.monotonic()
        applied = apply_journal(Warehouse(run_dir), Settings(warehouse=run_dir))
        apply_s = time.monotonic() - t0
        check = verify(run_dir, run, track.acked, args.customers)
        print(
            f"  applied {applied:,} commands in {apply_s:.1f} s; verification {check}", flush=True
        )
        results["tracking"] = {
            "workers": args.workers,
            "background_apply": args.background_apply,
            "connections": args.connections,
            "batch": args.batch,
            "duration_s": round(track.elapsed, 2),
            "commands_acked": commands,
            "commands_per_s": round(throughput),
            "batch_latency_ms": {
                "p50": round(pct(track.latencies, 0.5), 2),
                "p99": round(pct(track.latencies, 0.99), 2),
            },
            "server_cpu_s": round(cpu, 1),
            "load_generator_cpu_s": round(client_cpu, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "requests_per_fsync": round(health["records_written"] / max(1, health["fsyncs"]), 2)
            if health
            else None,
            "errors": track.errors,
            "journal_bytes_left_at_kill": journal_bytes,
            "apply_after_kill": {"commands": applied, "seconds": round(apply_s, 1)},
            "verification": check,
        }
        ok = check["missing"] == 0 and not track.errors

    server = Server.start(run_dir, log, apply=False, workers=args.workers)
    print(
        f"GET for {args.get_duration:g} s at concurrency {args.get_connections}, "
        f"{args.workers} worker(s)",
        flush=True,
    )
    asyncio.run(get_load(server.port, 1, 3.0, args.customers))  # warm-up
    results["get"] = [
        {
            **get_phase(server.port, int(c), args.get_duration, args.customers),
            "workers": args.workers,
        }
        for c in args.get_connections.split(",")
    ]
    if args.patches:
        lat = patch_latencies(server.port, args.patches, args.customers)
        results["patch_ms"] = {
            "median": round(statistics.median(lat) * 1000),
            "max": round(max(lat) * 1000),
        }
        print(f"  PATCH: {results['patch_ms']}", flush=True)
    server.stop()

    scenario = ("get-only-" if args.skip_tracking else "") + (
        f"w{args.workers}{'-apply' if args.background_apply else ''}"
    )
    out = args.out / f"results-{tag}-{scenario}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    if args.write_docs:
        write_docs(args.out)
    return 0 if ok else 1


def _scenario(r: dict[str, Any]) -> str:
    t = r["tracking"]
    return f"{t['workers']} worker{'s' if t['workers'] > 1 else ''}" + (
        ", background apply on" if t["background_apply"] else ", `--no-apply`"
    )


def _run_label(r: dict[str, Any]) -> str:
    t = r.get("tracking")
    if t is None:
        return "GET/PATCH only"
    return f"after tracking, {_scenario(r)}"


def _targets(results: list[dict[str, Any]], busy: list[dict[str, Any]]) -> list[str]:
    """The issue's targets against the measurements."""
    rate = {_scenario(r): r["tracking"]["commands_per_s"] for r in results if "tracking" in r}
    acked = sum(r["tracking"]["commands_acked"] for r in [*results, *busy] if "tracking" in r)
    lost = sum(
        r["tracking"]["verification"]["missing"] for r in [*results, *busy] if "tracking" in r
    )
    get1: dict[bool, float] = {}  # the worst one-connection p99 per schema
    for r in results:
        for g in r.get("get", []):
            if g["connections"] == 1:
                key = bool(r["proposed_indexes"])
                get1[key] = max(get1.get(key, 0.0), g["p99_ms"])
    if not rate:
        return []
    rates = ", ".join(f"{v:,} ({k})" for k, v in rate.items())
    out = [
        "",
        f"**Targets.** At least 20,000 commands/s sustained with durability: "
        f"{'met' if max(rate.values()) >= 20_000 else 'NOT met'} on a quiet host: {rates}. "
        f"Zero acknowledged commands lost: {'met' if lost == 0 else 'NOT met'}, "
        f"{lost} of {acked:,} acknowledged commands missing over all runs here, each ended by "
        "`kill -9`.",
    ]
    if True in get1:
        text = (
            f"GET p99 under 10 ms: {'met' if get1[True] < 10 else 'NOT met'} with the proposed "
            f"indexes (p99 at most {get1[True]:.1f} ms with one connection)"
        )
        if False in get1:
            text += f", not on the core schema as is (p99 {get1[False]:,.0f} ms)"
        out += ["", text + ": the indexes are a core decision, see below."]
    return out


def _fsync_range(results: list[dict[str, Any]]) -> str:
    values = sorted(r["fdatasync_ms_p50"] for r in results if "fdatasync_ms_p50" in r)
    if not values:
        return "?"
    return f"{values[0]:.1f}" if values[0] == values[-1] else f"{values[0]:.1f}-{values[-1]:.1f}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def render_section(results: list[dict[str, Any]], busy: list[dict[str, Any]] | None = None) -> str:
    """The "## HTTP service" section of docs/benchmarks.md from the results files (``busy``: the
    same scenarios measured while other work loaded the host, kept for comparison)."""
    tracked = [r for r in results if "tracking" in r]
    lines = [
        "## HTTP service",
        "",
        "```sh",
        ".venv/bin/python bench/bench_api.py                          # 1 worker, --no-apply",
        ".venv/bin/python bench/bench_api.py --workers 2",
        ".venv/bin/python bench/bench_api.py --background-apply",
        ".venv/bin/python bench/bench_api.py --no-indexes --skip-tracking   # GET on the core schema",
        ".venv/bin/python bench/bench_api.py --write-docs               # + regenerate this section",
        "```",
        "",
        "Setup: this machine (2 vCPUs, shared: the load generator runs on the same host over "
        "loopback, and other work ran on the host at times; the load average before each run is "
        "recorded in `bench/out/api/results-*.json`). Warehouse: 1M customers x 10 properties "
        "(ids `registered:user<k>`), built once through `apply_batch`, a fresh copy per run; "
        "`propsync serve` runs as a child process. Tracking load: 32 keep-alive connections, "
        "closed loop, raw asyncio HTTP/1.1, batches of 50 `customers` commands, each with an "
        "`update_timestamp` and updating its own existing customer. Durability on: a 200 is sent "
        "only after the batch is fsync'd (`fdatasync` of the journal segment, group commit). An "
        f"8 KiB `write` + `fdatasync` took {_fsync_range(results)} ms (median) on this VM's disk "
        "around these runs, and about 4 ms while another benchmark was writing to it: the "
        "virtual disk acknowledges flushes quickly when idle, so the fsync cost here is low; "
        'group commit is what keeps throughput when it is not (see "requests per fsync" in '
        "the busy runs). Right after the last response the server gets `kill -9`; then "
        "`apply_journal` runs and every acknowledged command is looked up in the published "
        "warehouse.",
        "",
        "### Tracking intake",
        "",
        "| Scenario | commands/s | batch p50 | batch p99 | requests per fsync "
        "| server CPU per 1k commands | acknowledged | lost after kill -9 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in tracked:
        t = r["tracking"]
        per_fsync = t.get("requests_per_fsync")
        lines.append(
            f"| {_scenario(r)}{'' if r['proposed_indexes'] else ', core schema as is'} | "
            f"**{t['commands_per_s']:,}** | {t['batch_latency_ms']['p50']:.0f} ms | "
            f"{t['batch_latency_ms']['p99']:.0f} ms | "
            f"{'-' if per_fsync is None else f'{per_fsync:.1f}'} | "
            f"{t['server_cpu_s'] / max(1, t['commands_acked']) * 1e6:.0f} ms | "
            f"{t['commands_acked']:,} | **{t['verification']['missing']}** |"
        )
    lines += _targets(results, busy or [])
    busy_tracked = [r for r in busy or [] if "tracking" in r]
    if busy_tracked:
        lines += [
            "",
            "The same scenarios while another benchmark kept one to two of the vCPUs busy "
            "(1-minute load average before / after the run):",
            "",
            "| Scenario | commands/s | batch p50 | batch p99 | requests per fsync | acknowledged "
            "| lost after kill -9 | load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in busy_tracked:
            t = r["tracking"]
            lines.append(
                f"| {_scenario(r)} | {t['commands_per_s']:,} | "
                f"{t['batch_latency_ms']['p50']:.0f} ms | {t['batch_latency_ms']['p99']:.0f} ms | "
                f"{'-' if t.get('requests_per_fsync') is None else t['requests_per_fsync']} | "
                f"{t['commands_acked']:,} | **{t['verification']['missing']}** | "
                f"{r['loadavg_before'][0]:.1f} / {t['loadavg_after'][0]:.1f} |"
            )
    lines += [
        "",
        "Group commit is what makes durability cheap: one `fdatasync` covers every batch that "
        'arrived while the previous one was running ("requests per fsync"), so throughput is '
        "bounded by CPU (validation in `parse_commands` is about half of it), not by the disk. "
        "The latency of a batch is one fsync plus queueing behind the other 31 connections. "
        "With one worker the server saturates one core; `--workers 2` uses the second core, "
        "which the load generator shares on this host.",
        "",
        "### Applying the journal (visibility lag)",
        "",
        "| Scenario | commands applied | seconds | commands/s |",
        "|---|---:|---:|---:|",
    ]
    for r in tracked:
        a = r["tracking"]["apply_after_kill"]
        lines.append(
            f"| backlog of {_scenario(r)} | {a['commands']:,} | {a['seconds']:.0f} | "
            f"{a['commands'] / max(a['seconds'], 0.1):,.0f} |"
        )
    lines += [
        "",
        "Applying goes through `apply_batch`, the single writer, in batches of up to 250,000 "
        "commands with one publish at the end; a backlog like the one above is applied at about "
        "the intake rate. Each apply also has a fixed cost on this warehouse of about 2 s (the "
        "post-merge audit queries join the whole `properties` table, `CHECKPOINT`, and "
        "publishing copies the whole database file; the one-edit PATCH below is almost only "
        "that). So the visibility lag of a tracked update is the apply interval (2 s) plus one "
        "apply: a few seconds on a light load; under a sustained heavy load each apply takes "
        "what arrived during the previous one, batches grow until the applier keeps up, and the "
        "lag grows to tens of seconds (the acknowledged commands are safe meanwhile; `/healthz` "
        "shows `unapplied_bytes`). With background apply on, the applier competes with the "
        "server for the two vCPUs (it runs at nice 10), which costs intake throughput above. "
        "Cheaper applies are core work.",
        "",
        "### GET latency",
        "",
        "`GET /api/customers/registered:user<random>?include_timestamps=1` with HTTP Basic "
        "auth, from the latest published version, after a warm-up, for 10-15 s per row:",
        "",
        "| Warehouse | run | workers | connections | GETs/s | p50 | p99 | max |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        schema = (
            f"with the proposed indexes ({_mb(r['warehouse_bytes'])})"
            if r["proposed_indexes"]
            else f"core schema as is ({_mb(r['warehouse_bytes'])})"
        )
        for g in r.get("get", []):
            lines.append(
                f"| 1M x 10, {schema} | {_run_label(r)} | {g.get('workers', 1)} | "
                f"{g['connections']} | "
                f"{g['per_s']:,} | {g['p50_ms']:.1f} ms | **{g['p99_ms']:.1f} ms** | "
                f"{g['max_ms']:.0f} ms |"
            )
    lines += [
        "",
        "The core schema has no index: finding a customer scans `customer_ids` (1M rows) and "
        "`properties` (10M rows) on every read. The rows marked *with the proposed indexes* "
        "ran on a warehouse with four ART indexes (`bench_api.PROPOSED_INDEXES`, created once "
        "after the bulk load, maintained by `apply_batch` from then on):",
        "",
        "```sql",
        *[f"{statement};" for statement in PROPOSED_INDEXES],
        "```",
        "",
        "A read is then two index probes (resolve the id; ids and properties in one UNION ALL) "
        "plus HTTP; the GET p99 target (10 ms) is met with one connection, and with more "
        "concurrent readers than vCPUs the requests queue (the 4-connection rows). The indexes "
        "are a core schema change and not part of "
        "this service: they more than double the database file (and so the publish copy) and "
        "make a 40,000-command tracking apply on 1M x 10 about 35% slower (13.9 s instead of "
        "10.2 s in a one-off measurement); the import benchmark would need re-measuring.",
    ]
    patches = [r for r in results if "patch_ms" in r]
    if patches:
        lines += [
            "",
            "### PATCH",
            "",
            "A PATCH applies one edit synchronously through `apply_batch` and publishes, so its "
            "time is the per-batch fixed cost (audit queries, checkpoint, publish copy):",
            "",
        ]
        for r in patches:
            schema = "with the proposed indexes" if r["proposed_indexes"] else "core schema as is"
            lines.append(
                f"* 1M x 10, {schema}: median {r['patch_ms']['median']:,} ms, "
                f"max {r['patch_ms']['max']:,} ms"
            )
    lines += [
        "",
        "Load average of the host (1 min) before / after each run (the load generator and the "
        "server alone make about 1.5 after a run; a load above ~1 *before* a run means other work "
        "shared the two vCPUs):",
        "",
    ]
    for r in results:
        after = r.get("tracking", {}).get("loadavg_after", [None])[0]
        lines.append(
            f"* {_run_label(r)}{'' if r['proposed_indexes'] else ' (core schema as is)'}: "
            f"{r['loadavg_before'][0]:.1f} / {'-' if after is None else f'{after:.1f}'} "
            f"({r['when']})"
        )
    lines += [
        "",
        "With background apply on, the server CPU column includes the applier process (a child "
        "of the server, at nice 10).",
    ]
    lines.append("")
    return "\n".join(lines)


def write_docs(out: Path) -> None:
    """Replace (or append) the "## HTTP service" section of docs/benchmarks.md."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("results-*.json"))]
    busy = [json.loads(p.read_text()) for p in sorted(out.glob("busy/results-*.json"))]
    section = render_section(results, busy)
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    start = text.find("## HTTP service")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end == -1 else text[end:])
    doc.write_text(text)
    print(f"wrote the HTTP section of {doc}")


if __name__ == "__main__":
    sys.exit(main())
