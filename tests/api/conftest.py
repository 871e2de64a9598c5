"""A real ``propsync serve`` on a loopback port, talked to over real HTTP.

``server`` is shared by the module's tests (tracking with ``--no-apply``; tests apply the journal
themselves with ``apply_journal``, the function the tracking_ingest DAG calls). Tests that need
another configuration or kill the server start their own with ``start_server``. Tests of one part
of the app serve it in this process instead (``serve_in_process``, ``app_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from propsync.api.app import create_app
from propsync.api.config import ServiceConfig
from propsync.config import Settings
from propsync.journal import apply_journal
from propsync.store.warehouse import Warehouse

TOKEN = "00000000-0000-0000-0000-000000000000"
KEY_ID, KEY_SECRET = "ui", "s3cret-key"
AUTH = (KEY_ID, KEY_SECRET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.root)

    def client(self, auth: tuple[str, str] | None = AUTH) -> httpx.Client:
        c = httpx.Client(base_url=self.url, auth=auth, timeout=30)
        self.clients.append(c)
        return c

    def apply(self) -> int:
        """Apply the journal now, as ``propsync apply`` and the tracking_ingest DAG do, then wait
        until the server serves what was published (its read model follows in the
        background)."""
        n = apply_journal(self.warehouse, Settings(warehouse=self.root, lock_timeout_seconds=30))
        self.wait_serving()
        return n

    def serving(self) -> dict[str, object]:
        """``/healthz``'s ``serving``: the version this server reads, and whether from the read
        model (``indexed``)."""
        body = httpx.get(f"{self.url}/healthz", timeout=10).json()
        return {key: body["serving"][key] for key in ("version", "indexed")}

    def wait_serving(self, timeout: float = 60) -> None:
        """Until the server serves the published version from its read model, if any."""
        published = self.warehouse.published_version()
        if not published:
            return
        deadline = time.monotonic() + timeout
        while True:
            serving = self.serving()
            if serving["indexed"] and int(str(serving["version"])) >= published:
                return
            assert time.monotonic() < deadline, f"still serving {serving} after {timeout} s"
            time.sleep(0.02)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    root: Path,
    *,
    apply: bool = False,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> ServerProcess:
    port = free_port()
    full_env = {
        **os.environ,
        "PROPSYNC_PROJECT_TOKENS": f"{TOKEN},second-project",
        "PROPSYNC_API_KEYS": f"{KEY_ID}:{KEY_SECRET},ops:other-secret",
        "PROPSYNC_EDIT_LOCK_TIMEOUT": "0.5",
        **(env or {}),
    }
    full_env.pop("PROPSYNC_CONFIG", None)
    cmd = [
        sys.executable,
        "-m",
        "propsync.cli",
        "serve",
        "--warehouse",
        str(root),
        "--port",
        str(port),
    ]
    cmd += [] if apply else ["--no-apply"]
    cmd += args or []
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"server-{port}.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, env=full_env, stdout=f, stderr=subprocess.STDOUT)
    server = ServerProcess(root, port, proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{server.log_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                server.wait_serving()  # a warehouse published before the server started
                return server
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start:\n{server.log_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("api") / "warehouse")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def client(server: ServerProcess) -> httpx.Client:
    return server.client()


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def batch_url(token: str = TOKEN) -> str:
    return f"/track/v2/projects/{token}/batch"


def customers_command(
    ids: dict[str, str], props: dict[str, object], ts: object = None, **extra: object
) -> dict[str, object]:
    data: dict[str, object] = {"customer_ids": ids, "properties": props}
    if ts is not None:
        data["update_timestamp"] = ts
    return {"name": "customers", "data": data, **extra}


@contextlib.contextmanager
def serve_in_process(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a loopback port in this process (lifespan included); its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:  # the lifespan's shutdown closes the service, which waits for its warm-up
        server.should_exit = True
        thread.join(30)


def service_app(root: Path, **config: object) -> FastAPI:
    """The HTTP service's app on ``root`` with this module's project token and API keys."""
    service_config = ServiceConfig.model_validate(
        {
            "project_tokens": [TOKEN],
            "api_keys": {KEY_ID: KEY_SECRET, "ops": "other-secret"},
            **config,
        }
    )
    return create_app(service_config, Settings(warehouse=root, lock_timeout_seconds=5))


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """The HTTP service on a fresh warehouse, served in this process."""
    with serve_in_process(service_app(tmp_path / "warehouse")) as url:
        yield url
