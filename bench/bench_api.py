"""HTTP service benchmark: tracking throughput with durability, GET latency, zero loss.

    .venv/bin/python bench/bench_api.py                       # 1M customers x 10 properties
    .venv/bin/python bench/bench_api.py --customers 20000 --duration 5 --get-duration 5   # quick
    .venv/bin/python bench/bench_api.py --write-docs          # + the "HTTP service" section

What it does (everything under ``--out``, default ``bench/out/api``):

1. Template warehouse of N customers x P properties (ids ``registered:user<k>``), built once
   through ``apply_batch`` and cached; every run starts from a fresh copy (with
   ``--reuse-read-model``: from the previous run's warehouse, whose read model is then only
   followed, not rebuilt).
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
   seconds (``--get-repeat`` times; the median of the repetitions is reported); p50/p99/max are
   reported. The warehouse is exactly what the product publishes (a plain copy, no indexes); the
   server reads from its SQLite read model (``propsync.store.read_model``, built once, then
   following each published run), and every phase starts once the server serves the published
   version from it (``/healthz``'s ``serving``).
6. Publish and read model cost (before the server starts): on fresh copies of the template, the
   product's publish (copy + fsync + symlink swap), a plain copy + fsync, the read model's
   bootstrap build, and its follow of a one-property run (``--follows`` one-property batches,
   each applied and published, then followed); file sizes of ``work.duckdb``, the published copy
   and the read model.
7. Visibility lag (``--lag-duration``): a server with the background applier (default publish
   pacing) gets one tracked update every 2 s; each is polled with GET until it is visible, the
   pending ones in turn at ``--lag-poll-rate`` GETs a second in all (each every 25 ms while it
   is alone, every P / 40 s among P pending). Until session 19 every pending update was polled
   every 50 ms: 20 GETs a second per pending update, so the probe's own load grew with the
   lag it measured (at a lag of 70 s, 700 GETs a second and about 17% of a core more for the
   probe and the HTTP workers) and could hold a saturated server behind.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
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
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-project-token"
KEY = ("bench", "bench-secret")
BASE_TS_US = 1_600_000_000_000_000


# -- template warehouse ---------------------------------------------------------------------------


def read_indexes(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM duckdb_indexes()").fetchall()[0][0])


def republish(path: Path) -> None:
    """Publish the template's work.duckdb again (as the product publishes now)."""
    warehouse = Warehouse(path)
    shutil.rmtree(warehouse.published_dir, ignore_errors=True)
    warehouse.current_path.unlink(missing_ok=True)
    publish_pending(warehouse, Settings(warehouse=path))


def build_template(path: Path, customers: int, properties: int) -> float:
    """N customers x P properties through the core apply path; returns seconds taken."""
    current = path / "propsync.duckdb"
    if current.exists():
        if read_indexes(current):  # published when publishing built the read indexes
            print("  the template's published copy has read indexes: publishing it again (lean)")
            republish(path)
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
    publish_pending(warehouse, settings)
    return time.monotonic() - started


def copy_warehouse(template: Path, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template, dest, symlinks=True)
    os.sync()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def one_property_batch(batch_id: str, k: int, value: str) -> UpdateBatch:
    return UpdateBatch(
        batch_id=batch_id,
        kind="edit",
        source="bench_api follow",
        ids=pl.DataFrame([(1, "registered", f"user{k}")], schema=IDS_SCHEMA, orient="row"),
        cells=pl.DataFrame(
            [(1, "prop_9", json.dumps(value), int(time.time() * 1e6))],
            schema=CELLS_SCHEMA,
            orient="row",
        ),
        rows_read=1,
        cells_incoming=1,
    )


def publish_costs(
    template: Path, scratch: Path, repeat: int, follows: int, customers: int
) -> dict[str, Any]:
    """Seconds to publish the template's work.duckdb (median of ``repeat``, each on a fresh copy):
    as the product does (copy, fsync, symlink swap: ``publish_pending``), a plain copy + fsync;
    the read model's bootstrap build on such a copy, and its follow of one-property runs."""
    product, plain, index, follow = [], [], [], []
    published_bytes = model_bytes = 0
    for _ in range(repeat):
        copy_warehouse(template, scratch)
        warehouse = Warehouse(scratch)
        shutil.rmtree(warehouse.published_dir)
        warehouse.current_path.unlink()
        started = time.monotonic()
        publish_pending(warehouse, Settings(warehouse=scratch))
        product.append(time.monotonic() - started)
        published_bytes = warehouse.published_file().stat().st_size
        copy = scratch / "plain-copy.duckdb"
        started = time.monotonic()
        shutil.copyfile(warehouse.work_path, copy)
        _fsync(copy)
        plain.append(time.monotonic() - started)
        copy.unlink()
        model = ReadModel(warehouse, memory_limit=Settings().duckdb_memory_limit)
        started = time.monotonic()
        built = model.follow()
        index.append(time.monotonic() - started)
        assert built is not None and built.rebuilt
        model_bytes = model.path.stat().st_size
        settings = Settings(warehouse=scratch)
        for i in range(follows):
            k = random.Random(i).randint(1, customers)
            result = apply_batch(warehouse, one_property_batch(f"follow-{i}", k, f"f{i}"), settings)
            assert result.status == "applied", result.message
            started = time.monotonic()
            followed = model.follow()
            follow.append(time.monotonic() - started)
            assert followed is not None and followed.runs == 1 and not followed.rebuilt
    shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "repeat": repeat,
        "publish_s": round(statistics.median(product), 2),
        "plain_copy_s": round(statistics.median(plain), 2),
        "read_model_build_s": round(statistics.median(index), 2),
        "read_model_follow_ms": round(statistics.median(follow) * 1000, 1) if follow else None,
        "runs": {
            "publish_s": [round(x, 2) for x in product],
            "plain_copy_s": [round(x, 2) for x in plain],
            "read_model_build_s": [round(x, 2) for x in index],
            "read_model_follow_ms": [round(x * 1000, 1) for x in follow],
        },
        "work_bytes": (template / "work.duckdb").stat().st_size,
        "published_bytes": published_bytes,
        "read_model_bytes": model_bytes,
    }
    print(f"  publish: {result}", flush=True)
    return result


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
    warehouse: Path

    @classmethod
    def start(
        cls,
        warehouse: Path,
        log: Path,
        *,
        apply: bool,
        workers: int,
        publish_interval: float | None = None,
        serving_timeout: float = 900.0,
        apply_interval: float | None = None,
    ) -> Server:
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
            "info",  # no access log; the applier's applies and publishes, with their durations
        ]
        if not apply:
            cmd.append("--no-apply")
        else:
            if publish_interval is not None:
                cmd += ["--publish-interval", str(publish_interval)]
            if apply_interval is not None:
                cmd += ["--apply-interval", str(apply_interval)]
        with open(log, "ab") as f:
            proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
        server = cls(proc, port, log, warehouse)
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
                    server.wait_serving(serving_timeout)
                    return server
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError("server did not become healthy")

    def wait_serving(self, timeout: float) -> None:
        """Until the server reads from an indexed serving copy of the published version."""
        published = Warehouse(self.warehouse).published_version()
        if not published:
            return
        started = time.monotonic()
        while True:
            with socket.create_connection(("127.0.0.1", self.port), 5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            serving = json.loads(data.split(b"\r\n\r\n", 1)[1]).get("serving", {})
            if serving.get("indexed") and serving.get("version", 0) >= published:
                print(
                    f"  serving an indexed copy of version {published} after "
                    f"{time.monotonic() - started:.1f} s",
                    flush=True,
                )
                return
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"no serving copy of version {published} after {timeout:g} s")
            time.sleep(0.2)

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
    port: int,
    connections: int,
    duration: float,
    batch: int,
    run: str,
    customers: int,
    rate: float | None = None,
) -> LoadResult:
    """Closed loop (each connection sends its next batch when the last is answered), or with
    ``rate`` open loop: each connection sends a batch every ``connections * batch / rate`` s."""
    result = LoadResult()
    seqs = SeqSource()
    path = f"/track/v2/projects/{TOKEN}/batch"
    deadline = time.perf_counter() + duration
    t0 = round(time.time() - 1.0, 6)
    period = connections * batch / rate if rate else 0.0

    async def conn(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        next_send = time.perf_counter() + period * i / connections
        try:
            while time.perf_counter() < deadline:
                if period:
                    await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
                    next_send += period
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
    await asyncio.gather(*(conn(i) for i in range(connections)))
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


def get_phases(
    port: int, connections: int, duration: float, customers: int, repeat: int
) -> dict[str, Any]:
    """``repeat`` GET phases; p50/p99/rate are the medians of the repetitions, max the maximum."""
    reps = [get_phase(port, connections, duration, customers) for _ in range(repeat)]
    if repeat == 1:
        return reps[0]
    return {
        "connections": connections,
        "requests": sum(r["requests"] for r in reps),
        "per_s": round(statistics.median(r["per_s"] for r in reps)),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in reps), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in reps), 2),
        "max_ms": max(r["max_ms"] for r in reps),
        "mean_ms": round(statistics.median(r["mean_ms"] for r in reps), 2),
        "errors": {k: v for r in reps for k, v in r["errors"].items()},
        "repetitions": reps,
    }


def paced_wrk_load(
    port: int, rate: float, duration: float, batch: int, customers: int, run: str, work: Path
) -> subprocess.Popen[str]:
    """``wrk`` (C, two threads, 16 connections) sending ``rate`` commands/s of new updates in
    ``batch``-command requests (``bench/lua/paced_tracking.lua``): the load of the lag phase
    without the Python generator's share of the two cores. ``wrk_load_result`` reads it."""
    work.mkdir(parents=True, exist_ok=True)
    t0 = round(time.time() - 1.0, 6)
    cmd = ["wrk", "-t2", "-c16", f"-d{duration:g}s", "--latency", "-s", str(PACED_LUA)]
    cmd += [f"http://127.0.0.1:{port}/track/v2/projects/{TOKEN}/batch", "--"]
    cmd += ["2", f"{rate:g}", str(batch), str(customers), f"{t0:.6f}", f"{run}-bg"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_load_result(proc: subprocess.Popen[str], rate: float, batch: int) -> dict[str, Any]:
    out, _ = proc.communicate()
    requests = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if proc.returncode or requests is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
    seconds = float(requests.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[requests.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    failed = int(non_2xx.group(1)) if non_2xx else 0
    result: dict[str, Any] = {
        "client": "wrk",
        "target_commands_per_s": rate,
        "commands_per_s": round((int(requests.group(1)) - failed) * batch / seconds),
        "batch_latency_ms": {},
        "errors": {"non_2xx": failed} if failed else {},
    }
    for name in ("50", "99"):
        m = re.search(rf"^\s+{name}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            result["batch_latency_ms"][f"p{name}"] = round(
                float(m.group(1)) * _WRK_UNITS[m.group(2)], 1
            )
    return result


def lag_phase(
    port: int,
    duration: float,
    customers: int,
    run: str,
    load: float = 0.0,
    batch: int = 50,
    every: float = 2.0,
    client: str = "python",
    work: Path | None = None,
    poll_rate: float = 40.0,
) -> dict[str, Any]:
    """One tracked update every ``every`` s for ``duration`` s; seconds from its 200 until GET
    shows it. With ``load`` (commands/s) other tracking runs meanwhile, open loop, on 16
    connections, from ``client``: the Python generator, or ``wrk`` (paced_wrk_load). The
    pending updates are polled in turn (round robin), ``poll_rate`` GETs a second in all: the
    probe's load stays the same whatever the lag (a lag is then measured to within about
    (pending updates) / ``poll_rate`` seconds)."""
    import threading

    import httpx

    background: dict[str, LoadResult] = {}
    loader = None
    wrk_proc = None
    if load and client == "wrk":
        assert work is not None
        wrk_proc = paced_wrk_load(port, load, duration + 2.0, batch, customers, run, work)
        time.sleep(2.0)  # the load runs before the first probe
    elif load:
        loader = threading.Thread(
            target=lambda: background.setdefault(
                "load",
                asyncio.run(
                    tracking_load(port, 16, duration + 2.0, batch, f"{run}-bg", customers, load)
                ),
            ),
            daemon=True,
        )
        loader.start()
        time.sleep(2.0)  # the load runs before the first probe
    lags: list[float] = []
    pending: dict[int, tuple[int, str, float]] = {}  # in the order they are polled next
    started = time.monotonic()
    next_send, i = started, 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=KEY, timeout=120) as c:
        while time.monotonic() < started + duration or pending:
            now = time.monotonic()
            if now > started + duration + 300:
                break  # never visible: reported as lost below
            if now >= next_send and now < started + duration:
                k = (i * 7919) % customers + 1  # a different customer each time
                value = f"{run} lag {i}"
                command = {
                    "name": "customers",
                    "data": {
                        "customer_ids": {"registered": f"user{k}"},
                        "properties": {"prop_1": value},
                        "update_timestamp": round(time.time(), 6),
                    },
                }
                r = c.post(f"/track/v2/projects/{TOKEN}/batch", json={"commands": [command]})
                assert r.status_code == 200, r.text
                pending[i] = (k, value, time.monotonic())
                i, next_send = i + 1, next_send + every
            if pending:
                j = next(iter(pending))
                k, value, sent = pending.pop(j)
                got = c.get(f"/api/customers/registered:user{k}")
                if got.status_code == 200 and got.json()["properties"].get("prop_1") == value:
                    lags.append(time.monotonic() - sent)
                else:
                    pending[j] = (k, value, sent)  # to the back of the turn
            time.sleep(1.0 / poll_rate)
    if loader is not None:
        loader.join()
    result: dict[str, Any] = {
        "duration_s": duration,
        "updates": i,
        "visible": len(lags),
        "p50_s": round(statistics.median(lags), 2) if lags else None,
        "p90_s": round(pct(lags, 0.90) / 1000, 2) if lags else None,
        "p99_s": round(pct(lags, 0.99) / 1000, 2) if lags else None,
        "probe_every_s": every,
        "poll_rate": poll_rate,
        "max_s": round(max(lags), 1) if lags else None,
        "lags_s": [round(x, 2) for x in lags],
    }
    if wrk_proc is not None:
        result["background"] = wrk_load_result(wrk_proc, load, batch)
    if loader is not None:
        bg = background["load"]
        result["background"] = {
            "client": "python",
            "target_commands_per_s": load,
            "commands_per_s": round(len(bg.acked) / bg.elapsed),
            "batch_latency_ms": {
                "p50": round(pct(bg.latencies, 0.5), 1),
                "p99": round(pct(bg.latencies, 0.99), 1),
            },
            "errors": bg.errors,
        }
    print(f"  lag: {result}", flush=True)
    return result


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
PACED_LUA = Path(__file__).with_name("lua") / "paced_tracking.lua"


def wrk_phase(
    url: str, body: bytes, connections: int, duration: float, work: Path
) -> dict[str, Any]:
    """``wrk`` posting ``body`` to ``url`` over ``connections`` keep-alive connections (two client
    threads: wrk is C, so the load generator takes a small share of the two cores); requests/s
    and latency percentiles as wrk reports them."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "body.json").write_bytes(body)
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{work / "body.json"}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    cmd = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    }  # type: ignore[union-attr]
    for pct_name in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct_name}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            result[f"p{pct_name}_ms"] = round(float(m.group(1)) * _WRK_UNITS[m.group(2)], 2)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    return result


def wrk_phases(args: argparse.Namespace, template: Path) -> dict[str, Any]:
    """The tracking batch route under ``wrk`` beside the bare stack (``bench/bare_asgi.py``), in
    one run, with the same body, connections and duration."""
    body = tracking_body(range(args.batch), "wrk", args.customers, round(time.time() - 1.0, 6))
    work = args.out / "wrk"
    shutil.rmtree(work, ignore_errors=True)
    results: dict[str, Any] = {"connections": args.connections, "batch": args.batch}
    port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(ROOT / "bench"),
            "bare_asgi:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the bare stack did not start"
                time.sleep(0.1)
        results["bare"] = wrk_phase(
            f"http://127.0.0.1:{port}/", body, args.connections, args.wrk, work
        )
    finally:
        bare.terminate()
        bare.wait(30)
    print(f"  wrk, bare uvicorn + ASGI: {results['bare']}", flush=True)
    wh = work / "warehouse"
    copy_warehouse(template, wh)
    server = Server.start(
        wh,
        work / "server.log",
        apply=args.background_apply,
        workers=args.workers,
        apply_interval=args.apply_interval,
    )
    try:
        url = f"http://127.0.0.1:{server.port}/track/v2/projects/{TOKEN}/batch"
        cpu0 = cpu_seconds(server.proc.pid)
        results["propsync"] = {
            **wrk_phase(url, body, args.connections, args.wrk, work),
            "workers": args.workers,
            "background_apply": args.background_apply,
            "server_cpu_s": round(cpu_seconds(server.proc.pid) - cpu0, 1),
            "unapplied_bytes_after": health_journal(server.port).get("unapplied_bytes"),
        }
    finally:
        server.stop()
        shutil.rmtree(wh, ignore_errors=True)
    for r in results["bare"], results["propsync"]:
        r["commands_per_s"] = round(r["requests_per_s"] * args.batch)
    print(f"  wrk, propsync serve: {results['propsync']}", flush=True)
    return results


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
    ap.add_argument("--get-repeat", type=int, default=2, help="GET phases per concurrency")
    ap.add_argument("--get-connections", default="1,4", help="comma-separated GET concurrencies")
    ap.add_argument("--patches", type=int, default=20, help="sequential PATCHes to time")
    ap.add_argument("--follows", type=int, default=5, help="one-property runs to follow")
    ap.add_argument("--skip-tracking", action="store_true", help="only GET and PATCH")
    ap.add_argument(
        "--wrk",
        type=float,
        default=0.0,
        help="seconds of tracking load from wrk (C), beside the bare uvicorn stack (0: skip)",
    )
    ap.add_argument(
        "--publish-repeat", type=int, default=2, help="publish-cost measurements (0: skip)"
    )
    ap.add_argument(
        "--publish-interval",
        type=float,
        help="the server's --publish-interval when it applies (default: propsync's automatic one)",
    )
    ap.add_argument(
        "--lag-duration",
        type=float,
        default=60.0,
        help="seconds of visibility-lag probes with the background applier (0: skip)",
    )
    ap.add_argument(
        "--lag-load",
        type=float,
        default=0.0,
        help="commands/s of other tracking (open loop) during the visibility-lag probes",
    )
    ap.add_argument(
        "--lag-every", type=float, default=2.0, help="seconds between two visibility-lag probes"
    )
    ap.add_argument(
        "--lag-poll-rate",
        type=float,
        default=40.0,
        help="GETs a second, in all, polling the visibility-lag probes not yet visible",
    )
    ap.add_argument(
        "--lag-client",
        choices=("python", "wrk"),
        default="python",
        help="what sends the --lag-load: the Python generator, or wrk (C: a small share of the "
        "cores the server needs)",
    )
    ap.add_argument(
        "--apply-interval", type=float, help="the server's --apply-interval (default: propsync's)"
    )
    ap.add_argument(
        "--reuse-read-model",
        action="store_true",
        help="start from the previous run's warehouse (--out/run) with its SQLite read model, "
        "instead of a fresh copy of the template whose model every server start rebuilds "
        "(35 s at 1M x 10); the first run copies the template",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "api")
    ap.add_argument(
        "--write-docs", action="store_true", help="rewrite the HTTP section of docs/benchmarks.md"
    )
    ap.add_argument(
        "--docs-only",
        action="store_true",
        help="measure nothing: rewrite the HTTP section from the results saved under --out",
    )
    args = ap.parse_args()
    # Before minutes of other phases, not after.
    if (args.wrk or args.lag_client == "wrk") and shutil.which("wrk") is None:
        ap.error("--wrk and --lag-client wrk need wrk on PATH (apt-get install wrk)")
    if args.docs_only:
        write_docs(args.out)
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    size = f"{args.customers}x{args.properties}"
    tag = f"{size}-rm"  # the server's SQLite read model (earlier: "-srv", "-pub")
    template = args.out / f"template-{size}"
    print(f"template {template} ...", flush=True)
    build_s = build_template(template, args.customers, args.properties)
    if build_s:
        print(f"  built in {build_s:.1f} s", flush=True)
    run_dir = args.out / "run"
    log = args.out / "server.log"
    log.unlink(missing_ok=True)
    results: dict[str, Any] = {
        "customers": args.customers,
        "properties": args.properties,
        "read_indexes": "read_model",
        "publish_interval": args.publish_interval,  # None: automatic
        "apply_interval": args.apply_interval,  # None: propsync's default
        "get_phases": f"{args.get_repeat} x {args.get_duration:g} s",
        "proposed_indexes": False,
        "warehouse_bytes": (template / "work.duckdb").stat().st_size,
        "published_bytes": Warehouse(template).published_file().stat().st_size,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if args.publish_repeat:
        print(f"publish cost ({args.publish_repeat} times) ...", flush=True)
        results["publish"] = publish_costs(
            template, args.out / "publish-run", args.publish_repeat, args.follows, args.customers
        )
    if args.reuse_read_model and (run_dir / "serving" / "read_model.sqlite").is_file():
        # The model follows the runs the previous runs added (edits, applied tracking): the
        # warehouse has a few more versions than the template, the same data size.
        print(f"reusing {run_dir} and its read model (--reuse-read-model)", flush=True)
    else:
        copy_warehouse(template, run_dir)
    results["reused_read_model"] = args.reuse_read_model
    results["fdatasync_ms_p50"] = fsync_probe(run_dir)
    run = f"r{int(time.time())}"
    ok = True

    if not args.skip_tracking:
        server = Server.start(
            run_dir,
            log,
            apply=args.background_apply,
            workers=args.workers,
            publish_interval=args.publish_interval,
            apply_interval=args.apply_interval,
        )
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

    if args.wrk:
        print(f"tracking under wrk for {args.wrk:g} s, beside the bare stack", flush=True)
        results["wrk"] = wrk_phases(args, template)

    server = Server.start(run_dir, log, apply=False, workers=args.workers)
    print(
        f"GET for {args.get_duration:g} s at concurrency {args.get_connections}, "
        f"{args.workers} worker(s)",
        flush=True,
    )
    asyncio.run(get_load(server.port, 1, 3.0, args.customers))  # warm-up
    results["get"] = [
        {
            **get_phases(server.port, int(c), args.get_duration, args.customers, args.get_repeat),
            "workers": args.workers,
        }
        for c in args.get_connections.split(",")
    ]
    if args.patches:
        lat = patch_latencies(server.port, args.patches, args.customers)
        results["patch_ms"] = {
            "median": round(statistics.median(lat) * 1000, 1),
            "p99": round(pct(lat, 0.99), 1),
            "max": round(max(lat) * 1000, 1),
            "samples": [round(x * 1000, 1) for x in lat],
        }
        print(f"  PATCH: {results['patch_ms']}", flush=True)
    server.stop()

    if args.lag_duration:
        server = Server.start(
            run_dir,
            log,
            apply=True,
            workers=args.workers,
            publish_interval=args.publish_interval,
            apply_interval=args.apply_interval,
        )
        print(f"visibility lag for {args.lag_duration:g} s, background applier on", flush=True)
        try:
            results["lag"] = lag_phase(
                server.port,
                args.lag_duration,
                args.customers,
                run,
                args.lag_load,
                args.batch,
                args.lag_every,
                args.lag_client,
                args.out / "wrk",
                args.lag_poll_rate,
            )
        finally:
            server.stop()  # a failed phase must not leave its applier running under the next

    scenario = ("get-only-" if args.skip_tracking else "") + (
        f"w{args.workers}{'-apply' if args.background_apply else ''}"
    )
    if args.publish_interval is not None:
        scenario += f"-pi{args.publish_interval:g}"
    if args.apply_interval is not None:
        scenario += f"-ai{args.apply_interval:g}"
    if args.lag_load:
        scenario += f"-lagload{args.lag_load:g}"
        if args.lag_client == "wrk":
            scenario += "-wrk"
    out = args.out / f"results-{tag}-{scenario}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")
    if args.write_docs:
        write_docs(args.out)
    return 0 if ok else 1


# The designs a results file can have measured, newest first (the order of every table).
_DESIGNS = {
    "read_model": "SQLite read model following runs (current)",
    "serving": "serving copy",
    "published": "earlier today: indexes built at publish",
    "idx": "earlier: indexes kept in work.duckdb",
    "none": "earlier: no indexes",
}


def _design(r: dict[str, Any]) -> str:
    """Which design a results file measured: ``serving`` (current: the HTTP service's serving
    copy carries the read indexes), ``published`` (earlier today: ``Warehouse.publish`` built them
    into every published version), ``idx`` (earlier: kept in ``work.duckdb``, added by the bench)
    or ``none``."""
    if r.get("read_indexes") in ("read_model", "serving", "published"):
        return str(r["read_indexes"])
    return "idx" if r.get("proposed_indexes") else "none"


def _current(r: dict[str, Any]) -> bool:
    return _design(r) == "serving"


def _setup(r: dict[str, Any]) -> str:
    return _DESIGNS[_design(r)]


def _labelled(r: dict[str, Any]) -> str:
    return f" — {_setup(r)}"


def _by_design(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Current design first, then the earlier ones, newest first (stable within a design)."""
    order = list(_DESIGNS)
    return sorted(results, key=lambda r: order.index(_design(r)))


def _interval(r: dict[str, Any]) -> str:
    pi = r.get("publish_interval")
    return "" if pi is None else f" (`--publish-interval {pi:g}`)"


def _scenario(r: dict[str, Any]) -> str:
    t = r["tracking"]
    return f"{t['workers']} worker{'s' if t['workers'] > 1 else ''}" + (
        f", background apply on{_interval(r)}" if t["background_apply"] else ", `--no-apply`"
    )


def _run_label(r: dict[str, Any]) -> str:
    t = r.get("tracking")
    if t is None:
        return "GET/PATCH only" + _interval(r)
    return f"after tracking, {_scenario(r)}"


def _p99s(r: dict[str, Any], connections: int = 1) -> list[float]:
    """The p99 of every GET phase at ``connections`` (each repetition, else the one phase)."""
    return [
        rep["p99_ms"]
        for g in r.get("get", [])
        if g["connections"] == connections
        for rep in g.get("repetitions", [g])
    ]


def _targets(results: list[dict[str, Any]], busy: list[dict[str, Any]]) -> list[str]:
    """The issue's targets against the measurements: the current design's runs, then earlier."""

    def rates(runs: list[dict[str, Any]]) -> str:
        return ", ".join(
            f"{r['tracking']['commands_per_s']:,} ({_scenario(r)}, "
            f"{'met' if r['tracking']['commands_per_s'] >= 20_000 else 'not met'})"
            for r in runs
        )

    def lost_of(runs: list[dict[str, Any]]) -> tuple[int, int]:
        runs = [r for r in runs if "tracking" in r]
        return (
            sum(r["tracking"]["verification"]["missing"] for r in runs),
            sum(r["tracking"]["commands_acked"] for r in runs),
        )

    current = [r for r in results if _current(r)]
    earlier = [r for r in results if not _current(r)]
    out = []
    tracked = [r for r in current if "tracking" in r]
    p99 = [p for r in current for p in _p99s(r)]
    if tracked or p99:
        parts = []
        if tracked:
            parts.append("at least 20,000 commands/s sustained with durability: " + rates(tracked))
        if p99:
            parts.append(
                f"GET p99 under 10 ms at one connection: {'met' if max(p99) < 10 else 'NOT met'}"
                f" (p99 of each phase {' / '.join(f'{p:.2f}' for p in p99)} ms)"
            )
        if tracked:
            lost, acked = lost_of(current)
            parts.append(
                f"zero acknowledged commands lost: {'met' if lost == 0 else 'NOT met'} "
                f"({lost} of {acked:,} missing after `kill -9`)"
            )
        out += ["", f"**Targets, {_DESIGNS['serving']}:** " + "; ".join(parts) + "."]
    earlier_tracked = [r for r in earlier if "tracking" in r]
    if earlier_tracked:
        groups = [
            f"*{label}*: {rates(runs)}"
            for design, label in _DESIGNS.items()
            if (runs := [r for r in earlier_tracked if _design(r) == design])
        ]
        lost, acked = lost_of([*results, *busy])
        before = [p for r in earlier if _design(r) == "none" for p in _p99s(r)]
        text = "Earlier runs, commands/s with durability: " + "; ".join(groups) + ". "
        text += (
            f"Zero acknowledged commands lost over all runs here (current, earlier and busy), each "
            f"ended by `kill -9`: "
            f"{'met' if lost == 0 else 'NOT met'}, {lost} of {acked:,} missing."
        )
        if before:
            text += f" GET p99 at one connection without any index: {max(before):,.0f} ms."
        out += ["", text]
    return out


def _fsync_range(results: list[dict[str, Any]]) -> str:
    values = sorted(r["fdatasync_ms_p50"] for r in results if "fdatasync_ms_p50" in r)
    if not values:
        return "?"
    low, high = f"{values[0]:.1f}", f"{values[-1]:.1f}"
    return low if low == high else f"{low}-{high}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def _s(x: float) -> str:
    return f"{x:.2f} s"


def _statement(text: str) -> str:
    return " ".join(line for line in text.splitlines() if not line.startswith("--")).strip()


def render_section(results: list[dict[str, Any]], busy: list[dict[str, Any]] | None = None) -> str:
    """The "## HTTP service" section of docs/benchmarks.md from the results files (``busy``: the
    same scenarios measured while other work loaded the host, kept for comparison). Every row
    names the design it measured (``_DESIGNS``); the current design's rows come first."""

    results = _by_design(results)
    busy = _by_design(busy or [])
    tracked = [r for r in results if "tracking" in r]
    lines = [
        "## HTTP service",
        "",
        "```sh",
        ".venv/bin/python bench/bench_api.py                          # 1 worker, --no-apply",
        ".venv/bin/python bench/bench_api.py --workers 2",
        ".venv/bin/python bench/bench_api.py --background-apply",
        ".venv/bin/python bench/bench_api.py --skip-tracking          # publish cost, GET, PATCH, lag",
        ".venv/bin/python bench/bench_api.py --write-docs               # + regenerate this section",
        ".venv/bin/python bench/bench_api.py --docs-only                # regenerate from saved results",
        "```",
        "",
        "Setup: this machine (2 vCPUs, shared: the load generator runs on the same host over "
        "loopback, and other work ran on the host at times; the load average before each run is "
        "recorded in `bench/out/api/results-*.json` and listed at the end). Warehouse: 1M "
        "customers x 10 properties (ids `registered:user<k>`), built once through `apply_batch` "
        "and published by `Warehouse.publish` exactly as propsync publishes (a plain copy, no "
        "indexes; the bench adds nothing), a fresh copy per run; `propsync serve` runs as a child "
        "process and reads from its own *serving copy*, the published version with the read "
        'indexes built in it (see "Publishing and the serving copy" below). Tracking load: 32 '
        "keep-alive connections, closed loop, raw asyncio HTTP/1.1, batches of 50 `customers` "
        "commands, each with an `update_timestamp` and updating its own existing customer. "
        "Durability on: a 200 is sent only after the batch is fsync'd (`fdatasync` of the "
        "journal segment, group commit). An 8 KiB `write` + `fdatasync` took "
        f"{_fsync_range(results)} ms (median) on this VM's disk around these runs, and about "
        "4 ms while another benchmark was writing to it: the virtual disk acknowledges flushes "
        "quickly when idle, so the fsync cost here is low; group commit is what keeps throughput "
        'when it is not (see "requests per fsync" in the busy runs). Right after the last '
        "response the server gets `kill -9`; then `apply_journal` runs and every acknowledged "
        "command is looked up in the published warehouse.",
        "",
        "Every row names the design it measured: "
        f"*{_DESIGNS['serving']}* is propsync as it is now (publishing is a plain copy; the HTTP "
        "service builds the read indexes into its serving copy); "
        f"*{_DESIGNS['published']}* is the intermediate design where `Warehouse.publish` built "
        "the same four indexes into every published version; "
        f"*{_DESIGNS['idx']}* is the bench's setup before that, which added the four indexes to "
        f"the writer's `work.duckdb`; *{_DESIGNS['none']}* had none. The journal intake does not "
        "touch the warehouse, so the earlier `--no-apply` intake figures still hold; with "
        "background apply on, what runs beside the server differs by design.",
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
            f"| {_scenario(r)}{_labelled(r)} | "
            f"**{t['commands_per_s']:,}** | {t['batch_latency_ms']['p50']:.0f} ms | "
            f"{t['batch_latency_ms']['p99']:.0f} ms | "
            f"{'-' if per_fsync is None else f'{per_fsync:.1f}'} | "
            f"{t['server_cpu_s'] / max(1, t['commands_acked']) * 1e6:.0f} ms | "
            f"{t['commands_acked']:,} | **{t['verification']['missing']}** |"
        )
    lines += _targets(results, busy)
    busy_tracked = [r for r in busy if "tracking" in r]
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
                f"| {_scenario(r)}{_labelled(r)} | {t['commands_per_s']:,} | "
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
    ]
    published = [r for r in results if "publish" in r]
    current_pub = [r["publish"] for r in published if _current(r) and "publish_s" in r["publish"]]
    at_publish = [
        r for r in published if _design(r) == "published" and "with_read_indexes_s" in r["publish"]
    ]
    if published:
        lines += [
            "",
            "### Publishing and the serving copy",
            "",
            "`Warehouse.publish` is a plain copy: it copies the closed `work.duckdb`, fsyncs the "
            "copy and swaps the `propsync.duckdb` symlink atomically. Neither `work.duckdb` nor "
            "the published versions carry indexes, so no writer builds them (a PATCH waits for "
            "them, see PATCH below), and analysts and `propsync get` read the lean files. Only the HTTP "
            "service needs point lookups, so it builds its own *serving copy* "
            "(`src/propsync/store/serving.py`): the newest published version, copied, with the "
            "four ART indexes of `src/propsync/sql/serving/` created in it, checkpointed, fsynced "
            "and renamed into place. The server builds it in a background thread under a file "
            "lock (`serving/build.lock`, so `--workers N` builds each version once; versions "
            "published meanwhile are skipped) and keeps serving its previous indexed copy until "
            "the new one is complete; two serving copies are kept. Checked then in "
            "`tests/integration/test_published_indexes.py` (gone with the serving copy in "
            "schema version 3): published versions and `work.duckdb` "
            "have no index, a serving copy has all four.",
            "",
            "```sql",
            # The serving copies' indexes (removed with them, #9), as they were.
            "CREATE INDEX IF NOT EXISTS customer_ids_by_value ON customer_ids (id_value);",
            "CREATE INDEX IF NOT EXISTS customer_ids_by_customer ON customer_ids (customer_id);",
            "CREATE INDEX IF NOT EXISTS customer_aliases_by_old ON customer_aliases "
            "(old_customer_id);",
            "CREATE INDEX IF NOT EXISTS properties_by_customer ON properties (customer_id);",
            "```",
            "",
            "Publishing the 1M x 10 warehouse (median of the repetitions, each on a fresh copy; "
            "*copy + fsync* is a plain copy of the file alone; *index build* is the four "
            "statements above on such a copy, which is what the server does per version now and "
            "what every publish did in the design of earlier today):",
            "",
            "| Design | run | work.duckdb | published version | publish | copy + fsync "
            "| index build | load before |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in published:
            pc = r["publish"]
            publish_s = pc.get("publish_s", pc.get("with_read_indexes_s"))
            where = " (server, per version)" if _current(r) else " (inside publish)"
            lines.append(
                f"| {_setup(r)} | {_run_label(r)} ({r['when']}) | {_mb(pc['work_bytes'])} | "
                f"{_mb(pc['published_bytes'])} | **{_s(publish_s)}** | "
                f"{_s(pc['plain_copy_s'])} | {_s(pc['index_build_s'])}{where} | "
                f"{r['loadavg_before'][0]:.1f} |"
            )
        why = ""
        if at_publish:
            old = at_publish[0]["publish"]
            why = (
                "Why the move: in the intermediate design of earlier today the indexes were "
                f"built in every publish (publish {old['with_read_indexes_s']:.1f} s at 1M x 10, "
                f"published version {_mb(old['published_bytes'])}), and every writer paid it: "
                "each import and each background apply that published (a PATCH still waits for the "
                "build, now the server's, for read-your-writes)"
            )
            if current_pub:
                why += (
                    f"; now a publish takes {_s(current_pub[0]['publish_s'])} and the build "
                    f"(about {current_pub[0]['index_build_s']:.0f} s) is paid once per served "
                    "version by the HTTP service, off the writers' path"
                )
            why += ". "
        serving_size = (
            f" (the published version of earlier today, with the same four indexes, was "
            f"{_mb(at_publish[0]['publish']['published_bytes'])})"
            if at_publish
            else ""
        )
        lines += [
            "",
            why + "The build is almost all `properties_by_customer` (10M keys; the two "
            "`customer_ids` indexes took about a second together on a quiet host when measured "
            "earlier) and runs on one core, slower than sorting the same keys. A serving copy is "
            f"about twice the published file{serving_size}.",
            "",
            "Alternatives, measured earlier on the same warehouse: keeping the indexes in "
            "`work.duckdb` (the bench's setup before today) made each tracking apply about 35% "
            "slower (13.9 s instead of 10.2 s for 40,000 commands) and doubled the writer's "
            "file. A copy rewritten sorted (`properties` by `customer_id`, `customer_ids` by "
            "`id_value`) so that DuckDB's zone maps skip row groups was smaller (159 MB) but "
            "took longer to write than copy + indexes (8.8 s against 5.9 s on a quiet host), its "
            "lookups still scanned a whole 122,880-row group (2-3 ms each) and finding a "
            "customer's ids by `customer_id` was then a full scan (24 ms) unless `customer_ids` "
            "got an index after all (sorted + the two small indexes: 19.9 s against 11-14 s for "
            "copy + indexes on a busy host, and no faster GETs).",
        ]
    lines += [
        "",
        "### Applying the journal (visibility lag)",
        "",
        "| Scenario | commands applied | seconds | commands/s |",
        "|---|---:|---:|---:|",
    ]
    for r in tracked:
        a = r["tracking"]["apply_after_kill"]
        lines.append(
            f"| backlog of {_scenario(r)}{_labelled(r)} | {a['commands']:,} | "
            f"{a['seconds']:.0f} | {a['commands'] / max(a['seconds'], 0.1):,.0f} |"
        )
    lines += [
        "",
        "Applying goes through `apply_batch`, the single writer, in batches of up to 250,000 "
        "commands with one publish at the end; a backlog like the one above is applied at about "
        "the intake rate or faster (the seconds include that one publish: a plain copy now, "
        "with the index build in the rows of earlier today; with background apply on, the "
        "backlog is only what the applier had not applied yet when the server was killed). "
        "Each apply also has a fixed cost on this warehouse of about 2 s (the post-merge audit "
        "queries, `CHECKPOINT`), and each publish the time in the publishing table. The "
        "server's background applier commits every `--apply-interval` (2 s) and publishes at "
        "most once per `--publish-interval`, by default as long as its previous publish took; "
        "with a publish that is a plain copy, that is after nearly every apply. What a GET "
        "waits for on top is the server's serving copy of that version (the index build above, "
        "in the server's background thread, one version at a time, intermediate versions "
        "skipped). Under a sustained heavy load each apply takes what arrived during the "
        "previous one and the lag grows (the acknowledged commands are safe meanwhile; "
        "`/healthz` shows `unapplied_bytes`). With background apply on, the applier (at nice "
        "10) and the serving-copy builds compete with the server for the two vCPUs, which "
        "costs intake throughput above.",
    ]
    lagged = [r for r in results if r.get("lag")]
    if lagged:
        lines += [
            "",
            "Visibility lag on a light load (`propsync serve` with the background applier, its "
            "default publish pacing unless marked, one tracked update every 2 s, each polled with "
            "GET until visible; the first update finds an applier that has not published for a "
            "while, the others a steady trickle). An update is visible once it is applied, "
            "published and served from an indexed copy: in the current design the server's "
            "serving-copy build, earlier today the index build inside the applier's publish "
            "(which ran at nice 10 beside the server, slower than in the publishing table). "
            "Either way one index build per served version is on the path, so the lag stays in "
            "the same range:",
            "",
            "| Design | run | updates | visible | first update | lag p50 | lag max | load before |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in lagged:
            g = r["lag"]
            p50 = "-" if g["p50_s"] is None else f"{g['p50_s']:.1f} s"
            top = "-" if g["max_s"] is None else f"{g['max_s']:.1f} s"
            first = f"{g['lags_s'][0]:.1f} s" if g["lags_s"] else "-"
            lines.append(
                f"| {_setup(r)} | {_run_label(r)} ({r['when']}) | {g['updates']} | "
                f"{g['visible']} | {first} | {p50} | {top} | {r['loadavg_before'][0]:.1f} |"
            )
    lines += [
        "",
        "### GET latency",
        "",
        "`GET /api/customers/registered:user<random>?include_timestamps=1` with HTTP Basic "
        "auth, from the version the server serves (in the current design its serving copy of "
        "the latest published version; each phase starts once the server serves it), after a "
        "warm-up; with several phases (`--get-repeat`) the rate, p50 and p99 are their medians "
        "and max the maximum; the oldest rows are one phase of 10-15 s:",
        "",
        "| Warehouse (1M x 10) | run | phases | workers | connections | GETs/s | p50 | p99 | max |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        size = r.get("published_bytes", r["warehouse_bytes"])
        what = f"{_mb(size)} published + indexes" if _current(r) else _mb(size)
        what = f"{_setup(r)}, {what}"
        for g in r.get("get", []):
            lines.append(
                f"| {what} | {_run_label(r)} | "
                f"{r.get('get_phases', '1')} | {g.get('workers', 1)} | {g['connections']} | "
                f"{g['per_s']:,} | {g['p50_ms']:.1f} ms | **{g['p99_ms']:.1f} ms** | "
                f"{g['max_ms']:.0f} ms |"
            )
    lines += [
        "",
        "Without indexes finding a customer scans `customer_ids` (1M rows) and `properties` "
        "(10M rows) on every read. With them a read is index probes only, checked with "
        "`EXPLAIN ANALYZE` on a serving copy in `tests/integration/test_published_indexes.py`, "
        "gone with the serving copy in schema version 3 (`test_every_read_statement_is_an_index_scan_on_a_serving_copy`; the published "
        "version answers the same statements with sequential scans): resolving the id "
        "(`sql/read/resolve_external_id.sql` filters `id_value` in the scan and `id_type` "
        "above it, because DuckDB uses an ART index only for a single equality filter), then "
        "ids and properties in one UNION ALL; the rest is HTTP. With more concurrent readers "
        "than vCPUs the requests queue (the 4-connection rows). A server opens each new "
        "serving copy with a cold cache, so the first few dozen reads after it switches take a "
        "few milliseconds longer (not in these GET-only phases). Until its first serving copy "
        "exists (the first start on a warehouse) a server reads the plain published file, "
        "correct but at the no-index latency above.",
    ]
    patches = [r for r in results if "patch_ms" in r]
    if patches:
        lines += [
            "",
            "### PATCH",
            "",
            "A PATCH applies one edit synchronously through `apply_batch`, publishes it (a plain "
            "copy) and then waits until this server serves the version it published "
            "(read-your-writes: once it answers, a GET shows the edit). So in the current "
            "design PATCH = apply (the per-batch fixed cost: audit queries, checkpoint) + "
            "publish + the build of the serving copy of that version. Earlier today the index "
            "build was inside the publish instead, the same sum; with the indexes kept in "
            "`work.duckdb` or none at all nothing was built and a PATCH was apply + copy:",
            "",
        ]
        for r in patches:
            lines.append(
                f"* {_setup(r)} — {_run_label(r)}: median "
                f"{r['patch_ms']['median']:,} ms, max {r['patch_ms']['max']:,} ms"
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
            f"* {_run_label(r)}{_labelled(r)}: "
            f"{r['loadavg_before'][0]:.1f} / {'-' if after is None else f'{after:.1f}'} "
            f"({r['when']})"
        )
    lines += [
        "",
        "With background apply on, the server CPU column includes the applier process (a child "
        "of the server, at nice 10) and, in the current design, the server's serving-copy "
        "builds.",
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
