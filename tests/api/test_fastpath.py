"""The ASGI read path (``propsync.api.fastpath``) answers GET /api/customers/... exactly as the
FastAPI route does: two real servers on one warehouse, one with the read path and one without
(``PROPSYNC_FAST_PATHS=0``), must give the same status, headers (but ``date``) and body bytes."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from propsync.api.app import create_app
from propsync.api.config import ServiceConfig
from propsync.api.service import Service
from propsync.config import Settings
from propsync.journal import journal_status
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse
from tests.api.conftest import (
    AUTH,
    KEY_ID,
    KEY_SECRET,
    TOKEN,
    ServerProcess,
    serve_in_process,
    start_server,
)
from tests.helpers import apply


def _seed(root: Path) -> None:
    warehouse, settings = Warehouse(root), Settings(warehouse=root)
    apply(
        warehouse,
        settings,
        "b1",
        [
            ({"registered": "ann", "cookie": "c1"}, "name", "Ann", 1_600_000_000.5),
            ({"registered": "ann"}, "tags", ["a", {"b": None}], 1_600_000_001),
            ({"cookie": "c2"}, "Name", "cookie two", 1_600_000_002),
            ({"cookie": "c2"}, "ž-property", 1.5, None),  # legacy: no timestamp
            ({"email": "a/b c?x"}, "city", "Brno", 1_600_000_003.000001),
        ],
    )
    # c2's customer is merged into ann's: its internal id now resolves to ann.
    apply(
        warehouse,
        settings,
        "b2",
        [({"registered": "ann", "cookie": "c2"}, "city", "Praha", 1_600_000_010)],
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ...]]:
    root = tmp_path_factory.mktemp("fastpath") / "warehouse"
    root.mkdir()
    _seed(root)
    fast = start_server(root)
    slow = start_server(root, env={"PROPSYNC_FAST_PATHS": "0"})
    try:
        yield fast, slow
    finally:
        fast.stop()
        slow.stop()


def _merged_away_id(root: Path) -> str:
    with Warehouse(root).connect_published() as con:
        rows = con.execute("SELECT old_customer_id FROM customer_aliases").fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


def _raw(port: int, request: bytes) -> bytes:
    """One request on a fresh connection; the whole response as sent."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _without_date(response: bytes) -> bytes:
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return b"\r\n".join(lines) + sep + body


def _basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


def _requests(internal: str, merged_away: str) -> list[tuple[str, str | None]]:
    """(path with query, Authorization header) pairs covering every answer of the route."""
    good = _basic(KEY_ID, KEY_SECRET)
    return [
        ("/api/customers/registered:ann", good),
        ("/api/customers/registered:ann?include_timestamps=1", good),
        ("/api/customers/registered:ann?include_timestamps=0", good),
        ("/api/customers/registered:ann?include_timestamps=0&include_timestamps=1", good),
        ("/api/customers/registered:ann?include_timestamps=yes", good),
        ("/api/customers/registered:ann?include_timestamps=", good),
        ("/api/customers/registered:ann?other=1", good),
        ("/api/customers/cookie:c1?include_timestamps=1", good),
        (f"/api/customers/{internal}?include_timestamps=1", good),
        (f"/api/customers/{internal}", good),
        (f"/api/customers/{merged_away}?include_timestamps=1", good),  # merged away
        (f"/api/customers/{merged_away}", good),
        ("/api/customers/email:a%2Fb%20c%3Fx?include_timestamps=1", good),
        ("/api/customers/email:a/b c?x", good),  # unencoded: another id (404)
        ("/api/customers/registered:nobody", good),
        ("/api/customers/registered:nobody?include_timestamps=1", good),
        ("/api/customers/registered:nobody?include_timestamps=2", good),
        ("/api/customers/" + "0" * 32, good),
        ("/api/customers/", good),
        ("/api/customers/no_such_type:x", good),
        ("/api/customers/registered:ann", None),  # no credentials
        ("/api/customers/registered:ann", _basic(KEY_ID, "wrong")),
        ("/api/customers/registered:ann", _basic("nobody", KEY_SECRET)),
        ("/api/customers/registered:ann", "Basic %%%not-base64"),
        ("/api/customers/registered:ann", "Bearer " + KEY_SECRET),
        ("/api/customers/registered:nobody", None),  # auth is checked first
        ("/api/customers/registered:ann?include_timestamps=yes", None),
        ("/api/customers", good),  # not the route: FastAPI's 404
        ("/api/customersx/registered:ann", good),
    ]


def test_same_bytes_as_the_route(servers: tuple[ServerProcess, ...]) -> None:
    fast, slow = servers
    ann = fast.client().get("/api/customers/registered:ann").json()
    internal = ann["customer_id"]
    merged_away = _merged_away_id(fast.root)
    assert merged_away != internal
    statuses = set()
    for path, auth in _requests(internal, merged_away):
        head = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if auth is not None:
            head.append(f"Authorization: {auth}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode()
        got, expected = _raw(fast.port, request), _raw(slow.port, request)
        assert _without_date(got) == _without_date(expected), path
        statuses.add(int(got.split(b" ", 2)[1]))
    assert statuses == {200, 307, 400, 401, 404}  # 307: FastAPI's redirect of /api/customers


def test_bodies_are_the_contract(servers: tuple[ServerProcess, ...]) -> None:
    fast, _ = servers
    c = fast.client()
    r = c.get("/api/customers/registered:ann", params={"include_timestamps": 1})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-propsync-version"] == "2"
    assert r.json()["properties"] == {
        "city": {"value": "Praha", "last_update": 1600000010},
        "name": {"value": "Ann", "last_update": 1600000000.5},
        "tags": {"value": ["a", {"b": None}], "last_update": 1600000001},
        "Name": {"value": "cookie two", "last_update": 1600000002},
        "ž-property": {"value": 1.5, "last_update": -1},
    }
    assert r.json()["ids"] == {"cookie": ["c1", "c2"], "registered": ["ann"]}
    merged = c.get(f"/api/customers/{_merged_away_id(fast.root)}")
    assert merged.status_code == 200 and merged.json()["customer_id"] == r.json()["customer_id"]
    unknown = c.get("/api/customers/registered:nobody")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "UnknownCustomer"
    assert unknown.json()["message"] == "no customer 'registered:nobody'"
    # Other routes and methods under the prefix are FastAPI's, unchanged.
    assert fast.client().patch("/api/customers/registered:nobody", json={}).status_code == 400
    assert fast.client(auth=None).get("/healthz").status_code == 200


def test_the_two_servers_differ_in_the_read_path_only(servers: tuple[ServerProcess, ...]) -> None:
    fast, slow = servers
    assert "'fast_paths': True" in fast.log_text()
    assert "'fast_paths': False" in slow.log_text()


@contextlib.contextmanager
def _in_process_server(root: Path) -> Iterator[tuple[int, Service]]:
    """A real uvicorn server on loopback in this process, to look at the service's counters."""
    config = ServiceConfig(project_tokens=frozenset({"t"}), api_keys={KEY_ID: KEY_SECRET})
    app = create_app(config, Settings(warehouse=root))
    with serve_in_process(app) as url:
        service: Service = app.state.service
        yield int(url.rsplit(":", 1)[1]), service


def test_read_path_answers_from_the_model_and_falls_through_without_it(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    root.mkdir()
    _seed(root)
    model = ReadModel(Warehouse(root))
    with (
        _in_process_server(root) as (port, service),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30) as c,
    ):
        deadline = time.monotonic() + 60
        while not service.reader.indexed:
            # Until the model is built the route answers, from the published file.
            answered = service.fast_answers
            r = c.get("/api/customers/registered:ann")
            assert r.status_code == 200 and r.json()["ids"]["registered"] == ["ann"]
            if not service.reader.indexed:  # so it was not during the GET either
                assert service.fast_answers == answered  # the route's answer
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert model.exists()
        before = service.fast_answers
        for _ in range(3):
            r = c.get("/api/customers/registered:ann", params={"include_timestamps": 1})
            assert r.status_code == 200
        assert service.fast_answers == before + 3
        # Errors are answered too, but not counted as reads.
        assert c.get("/api/customers/registered:nobody").status_code == 404
        assert service.fast_answers == before + 3


def _tracking_requests() -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, extra headers) covering every answer of the tracking batch route."""
    url = f"/track/v2/projects/{TOKEN}/batch"
    good = json.dumps(
        {
            "commands": [
                {"name": "system/time"},
                {
                    "name": "customers",
                    "command_id": {"any": ["json", 1]},
                    "data": {
                        "customer_ids": {"registered": "fp-1"},
                        "properties": {"a": "x", "b": 1.5, "c": ["é", None]},
                        "update_timestamp": 1_600_000_000.25,
                    },
                },
                {"name": "customers", "data": {"properties": {"x": 1}}},
                {"name": "nope"},
            ]
        }
    ).encode()
    many = json.dumps({"commands": [{"name": "system/time"}] * 51}).encode()
    return [
        (url, good, {}),
        (url, good, {"Transfer-Encoding": "chunked"}),
        (url, b"{not json", {}),
        (url, b'{"commands": [NaN]}', {}),
        (url, b"[" * 70 + b"]" * 70, {}),
        (url, b'{"commands": {}}', {}),
        (url, many, {}),
        (url, b"", {}),
        (url, good, {"Content-Length": "abc"}),
        (url, b"", {"Content-Length": "2000000"}),  # declared too large (answered unread)
        (url, b"x" * (2**20 + 1), {"Transfer-Encoding": "chunked"}),  # streamed too large
        ("/track/v2/projects/unknown-token/batch", good, {}),
        (f"/track/v2/projects/{TOKEN}/batchx", good, {}),  # not the route: FastAPI's 404
    ]


def _request(path: str, body: bytes, extra: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += ["Content-Type: application/json"]
    if extra.get("Transfer-Encoding") == "chunked":
        head.append("Transfer-Encoding: chunked")
        payload = (
            b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 65536]), body[i : i + 65536])
                for i in range(0, len(body), 65536)
            )
            + b"0\r\n\r\n"
        )
    else:
        head.append(f"Content-Length: {extra.get('Content-Length', len(body))}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def _raw_answer(port: int, request: bytes) -> bytes:
    """``_raw``, for requests answered before their body is read (413): the server may close
    with bytes of ours unread, and the kernel then resets the connection after its answer."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(request)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                data += chunk
    assert b"\r\n\r\n" in data, data
    return data


def _comparable(response: bytes) -> tuple[bytes, object]:
    """Status line and headers (but date and length), and the body with its times and cookies
    replaced: they differ between any two requests."""
    head, _, body = _without_date(response).partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length")]
    try:
        parsed = json.loads(body)
    except ValueError:
        return b"\r\n".join(lines), body
    if isinstance(parsed, dict) and "results" in parsed:
        parsed["start_time"] = parsed["end_time"] = "t"
        for result in parsed["results"]:
            if "time" in result:
                result["time"] = "t"
    return b"\r\n".join(lines), parsed


def test_tracking_batches_get_the_routes_answers(servers: tuple[ServerProcess, ...]) -> None:
    fast, slow = servers
    statuses = set()
    for path, body, extra in _tracking_requests():
        request = _request(path, body, extra)
        got, expected = _raw_answer(fast.port, request), _raw_answer(slow.port, request)
        assert _comparable(got) == _comparable(expected), (path, body[:40], extra)
        statuses.add(int(got.split(b" ", 2)[1]))
    assert statuses == {200, 400, 403, 404, 413}
    # Both journaled the valid commands (the good batch twice each, into one warehouse): the
    # fast path stores too.
    assert fast.apply() == 4
    for server in servers:
        server.wait_serving()
        r = server.client().get("/api/customers/registered:fp-1", params={"include_timestamps": 1})
        assert r.json()["properties"]["c"] == {"value": ["é", None], "last_update": 1600000000.25}


def test_the_tracking_layer_answers_batches_and_only_batches(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    root.mkdir()
    body = {"commands": [{"name": "customers", "data": {"customer_ids": {"registered": "z"}}}]}
    with (
        _in_process_server(root) as (port, service),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c,
    ):
        for _ in range(3):
            assert c.post("/track/v2/projects/t/batch", json=body).status_code == 200
        assert c.post("/track/v2/projects/other/batch", json=body).status_code == 403
        assert service.fast_tracks == 4
        single = c.post("/track/v2/projects/t/customers", json=body["commands"][0]["data"])
        assert single.status_code == 200  # the route's (FastAPI) answer
        assert c.get("/track/v2/projects/t/batch").status_code == 405
        assert service.fast_tracks == 4


def test_a_client_gone_mid_body_is_logged_as_such_not_as_a_server_error(
    servers: tuple[ServerProcess, ...],
) -> None:
    """A phone that loses its network mid-request: nothing journaled, no traceback, on the
    tracking layer and on the route alike."""
    before = journal_status(servers[0].root).unapplied_bytes
    head = (
        f"POST /track/v2/projects/{TOKEN}/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    for server in servers:
        with socket.create_connection(("127.0.0.1", server.port), 10) as s:
            s.sendall(head.encode() + b'{"commands": [')
            time.sleep(0.2)
    deadline = time.monotonic() + 10
    for server in servers:
        while "the client disconnected before its body was read" not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.05)
        assert "Traceback" not in server.log_text()
        assert "Exception in ASGI application" not in server.log_text()
    assert journal_status(servers[0].root).unapplied_bytes == before
