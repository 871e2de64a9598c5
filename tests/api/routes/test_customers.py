"""Customer reads and edits over real HTTP, API-key auth, health and docs."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from propsync.store.warehouse import Warehouse
from tests.api.conftest import (
    AUTH,
    ServerProcess,
    batch_url,
    customers_command,
    start_server,
    unique,
)


def _track(server: ServerProcess, *commands: dict[str, object]) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post(batch_url(), json={"commands": list(commands)})
        assert r.status_code == 200 and all(x["success"] for x in r.json()["results"]), r.text
    server.apply()


@pytest.fixture
def known(server: ServerProcess) -> str:
    """A tracked customer, returned as its ``registered:`` reference."""
    user = unique("known")
    _track(
        server,
        customers_command(
            {"registered": user, "cookie": unique("ck")},
            {"first_name": "Eva", "age": 31},
            1_600_000_000,
        ),
    )
    return f"registered:{user}"


def test_get_unknown_customer_is_404_json(client: httpx.Client, known: str) -> None:
    for ref in ("registered:nobody-here", "0" * 32, "no_such_type:x"):
        r = client.get(f"/api/customers/{ref}")
        assert r.status_code == 404
        body = r.json()
        assert body["error"] == "UnknownCustomer" and ref in body["message"]


def test_get_by_any_id_or_internal_id(client: httpx.Client, known: str) -> None:
    by_ref = client.get(f"/api/customers/{known}").json()
    cookie = by_ref["ids"]["cookie"][0]
    assert client.get(f"/api/customers/cookie:{cookie}").json() == by_ref
    assert client.get(f"/api/customers/{by_ref['customer_id']}").json() == by_ref
    assert by_ref["properties"] == {"age": 31, "first_name": "Eva"}


def test_include_timestamps_values(client: httpx.Client, known: str) -> None:
    r = client.get(f"/api/customers/{known}", params={"include_timestamps": 1})
    assert r.json()["properties"] == {
        "age": {"value": 31, "last_update": 1600000000},
        "first_name": {"value": "Eva", "last_update": 1600000000},
    }
    r = client.get(f"/api/customers/{known}", params={"include_timestamps": "yes"})
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"


def test_ids_with_slashes_and_spaces(server: ServerProcess, client: httpx.Client) -> None:
    odd = f"a/b c?{unique()}"
    _track(server, customers_command({"email": odd}, {"p": True}, 1_600_000_000))
    r = client.get(f"/api/customers/email:{quote(odd, safe='')}")
    assert r.status_code == 200, r.text
    assert r.json()["ids"] == {"email": [odd]} and r.json()["properties"] == {"p": True}


def test_api_key_required(server: ServerProcess, known: str) -> None:
    paths = [
        ("GET", f"/api/customers/{known}"),
        ("PATCH", f"/api/customers/{known}"),
        ("GET", f"/customers/{known}"),
    ]
    bad_auths: list[dict[str, str]] = [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"ui:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nobody:s3cret-key").decode()},
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Bearer s3cret-key"},
        {"Authorization": "Basic " + base64.b64encode(b"ui").decode()},
    ]
    with httpx.Client(base_url=server.url) as c:
        for method, path in paths:
            for headers in bad_auths:
                r = c.request(method, path, headers=headers, json={"properties": {"x": 1}})
                assert r.status_code == 401, (method, path, headers)
                assert r.headers["www-authenticate"].startswith("Basic realm=")
        assert c.get(f"/api/customers/{known}", auth=AUTH).status_code == 200
        assert c.get(f"/api/customers/{known}", auth=("ops", "other-secret")).status_code == 200
        assert c.get(f"/api/customers/{known}", auth=("ops", AUTH[1])).status_code == 401
        # Tracking needs no API key, only the project token; health and docs are open.
        assert c.get("/healthz").status_code == 200


def test_without_configured_keys_data_routes_refuse(tmp_path: Path) -> None:
    s = start_server(tmp_path / "wh", env={"PROPSYNC_API_KEYS": ""})
    try:
        c = s.client(auth=AUTH)
        for method, path in (
            ("GET", "/api/customers/x:y"),
            ("PATCH", "/api/customers/x:y"),
            ("GET", "/customers/x:y"),
        ):
            r = c.request(method, path, json={"properties": {"a": 1}})
            assert r.status_code == 503, (method, path)
            assert "no API keys are configured" in r.text
        r = c.post(
            batch_url(), json={"commands": [customers_command({"registered": "x"}, {"a": 1})]}
        )
        assert r.status_code == 200
        assert "no API keys configured" in s.log_text()
    finally:
        s.stop()


def test_patch_applies_now_and_returns_the_new_state(
    server: ServerProcess, client: httpx.Client, known: str
) -> None:
    version_before = int(client.get(f"/api/customers/{known}").headers["x-propsync-version"])
    before = time.time()
    r = client.patch(
        f"/api/customers/{known}", json={"properties": {"first_name": "Eva Maria", "vip": True}}
    )
    after = time.time()
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["first_name"]["value"] == "Eva Maria" and props["vip"]["value"] is True
    assert before - 0.001 <= props["first_name"]["last_update"] <= after + 0.001
    assert props["vip"]["last_update"] == props["first_name"]["last_update"]
    assert props["age"] == {"value": 31, "last_update": 1600000000}
    # Reads see it at once: the edit was applied and published synchronously.
    g = client.get(f"/api/customers/{known}")
    assert g.json()["properties"]["first_name"] == "Eva Maria"
    assert int(g.headers["x-propsync-version"]) > version_before
    # Edits go through the warehouse like everything else: recorded as an edit batch.
    import duckdb

    with duckdb.connect(str(server.warehouse.published_file()), read_only=True) as con:
        kind, source = con.execute(
            "SELECT b.kind, b.source FROM properties p JOIN batches b USING (batch_id) "
            "WHERE p.customer_id = $c AND p.property = 'vip'",
            {"c": r.json()["customer_id"]},
        ).fetchall()[0]
    assert kind == "edit" and source == "api edit by key ui"


def test_patch_by_internal_id(client: httpx.Client, known: str) -> None:
    customer_id = client.get(f"/api/customers/{known}").json()["customer_id"]
    r = client.patch(f"/api/customers/{customer_id}", json={"properties": {"note": {"a": [1, 2]}}})
    assert r.status_code == 200
    assert r.json()["customer_id"] == customer_id
    assert client.get(f"/api/customers/{known}").json()["properties"]["note"] == {"a": [1, 2]}


def test_patch_does_not_overwrite_a_newer_tracked_value(
    server: ServerProcess, client: httpx.Client
) -> None:
    user = unique("newer")
    future = time.time() + 120  # tracked with a timestamp ahead of the edit below (within the skew)
    _track(server, customers_command({"registered": user}, {"plan": "pro"}, future))
    r = client.patch(f"/api/customers/registered:{user}", json={"properties": {"plan": "free"}})
    assert r.status_code == 200
    assert r.json()["properties"]["plan"]["value"] == "pro"


def test_patch_errors(client: httpx.Client, known: str) -> None:
    url = f"/api/customers/{known}"
    bodies: list[object] = [
        {},
        {"properties": {}},
        {"properties": []},
        {"properties": {"a": 1}, "extra": 1},
        [1],
    ]
    for body in bodies:
        r = client.patch(url, json=body)
        assert r.status_code == 400, body
        assert r.json()["error"] == "InvalidEdit"
    r = client.patch(url, json={"properties": {"": 1}})
    assert r.status_code == 400 and r.json()["errors"] == ["property names must be non-empty"]
    assert client.patch(url, content=b"{{").status_code == 400
    r = client.patch("/api/customers/registered:nobody-at-all", json={"properties": {"a": 1}})
    assert r.status_code == 404 and r.json()["error"] == "UnknownCustomer"
    r = client.patch(url, content=b'{"properties": {"a": "' + b"x" * (1024 * 1024) + b'"}}')
    assert r.status_code == 413


def test_patch_while_the_warehouse_is_busy_is_journaled(
    server: ServerProcess, client: httpx.Client, known: str
) -> None:
    # Another writer (e.g. a long import) holds the warehouse write lock.
    with Warehouse(server.root).write_lock():
        r = client.patch(f"/api/customers/{known}", json={"properties": {"first_name": "Queued"}})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued" and r.json()["batch_id"].startswith("edit-")
    assert client.get(f"/api/customers/{known}").json()["properties"]["first_name"] != "Queued"
    assert server.apply() == 1
    props = client.get(f"/api/customers/{known}?include_timestamps=1").json()["properties"]
    assert props["first_name"] == {"value": "Queued", "last_update": r.json()["update_timestamp"]}


def test_healthz_and_docs(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as c:
        h = c.get("/healthz")
        assert h.status_code == 200
        body = h.json()
        assert body["status"] == "ok" and body["published_version"] >= 1
        assert body["serving"]["version"] <= body["published_version"]
        assert isinstance(body["serving"]["indexed"], bool)
        assert set(body["journal"]) >= {"segments", "unapplied_bytes", "fsyncs"}
        docs = c.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = c.get("/openapi.json").json()
        assert set(spec["paths"]) >= {
            "/track/v2/projects/{project_token}/batch",
            "/track/v2/projects/{project_token}/customers",
            "/api/customers/{customer}",
            "/customers/{customer}",
            "/healthz",
        }
        body_ref = spec["paths"]["/track/v2/projects/{project_token}/batch"]["post"]["requestBody"]
        assert body_ref["content"]["application/json"]["schema"]["$ref"].endswith(
            "/TrackingBatchBody"
        )
        assert "TrackingCommand" in spec["components"]["schemas"]
        # The data routes and the page declare HTTP Basic API keys; tracking routes do not.
        assert spec["components"]["securitySchemes"] == {
            "apiKey": {"type": "http", "scheme": "basic"}
        }
        customer_routes = spec["paths"]["/api/customers/{customer}"]
        assert customer_routes["get"]["security"] == [{"apiKey": []}]
        assert customer_routes["patch"]["security"] == [{"apiKey": []}]
        assert spec["paths"]["/customers/{customer}"]["get"]["security"] == [{"apiKey": []}]
        tracking = spec["paths"]["/track/v2/projects/{project_token}/batch"]["post"]
        assert "security" not in tracking
        assert c.get("/nothing-here").status_code == 404
