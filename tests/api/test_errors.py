"""The HTTP error answers (propsync.api.errors): every error a route raises becomes JSON (or a
page) with its status; retryable ones get Retry-After, and nothing is cached."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from propsync.api.errors import PAGE_HEADERS, ApiError, install_handlers, json_response
from propsync.errors import AuditFailed, NotPublished, UnknownCustomer, UsageError, WarehouseLocked
from tests.api.conftest import serve_in_process

RAISED = {
    "api": ApiError(409, "EditRejected", "conflict", errors=["hard ids"], headers={"X-A": "1"}),
    "page": ApiError(400, "Bad request", "the <form> is stale", html=True),
    "unknown": UnknownCustomer("no customer 'r:x'", customer="r:x"),
    "unpublished": NotPublished("nothing published yet"),
    "locked": WarehouseLocked("held by 42", holder_pid="42"),
    "failed": AuditFailed("audit failed"),
    "usage": UsageError("bad"),
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = FastAPI()
    install_handlers(app, retry_after_seconds=7)

    @app.get("/raise/{name}")
    def raising(name: str) -> None:
        raise RAISED[name]

    @app.get("/big")
    def big() -> object:
        return json_response(200, {"command_id": 2**70, "text": "ž"})

    with serve_in_process(app) as base:
        yield base


def test_an_api_error_is_its_json_with_its_headers(url: str) -> None:
    r = httpx.get(f"{url}/raise/api")
    assert r.status_code == 409
    assert r.json() == {"error": "EditRejected", "message": "conflict", "errors": ["hard ids"]}
    assert (r.headers["x-a"], r.headers["cache-control"]) == ("1", "no-store")


def test_a_page_error_is_an_escaped_page_with_the_page_headers(url: str) -> None:
    r = httpx.get(f"{url}/raise/page")
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "the &lt;form&gt; is stale" in r.text and "<form>" not in r.text
    for name, value in PAGE_HEADERS.items():
        assert r.headers[name] == value


@pytest.mark.parametrize(
    ("name", "status", "retry_after"),
    [
        ("unknown", 404, None),
        ("unpublished", 404, None),
        ("locked", 503, "7"),
        ("failed", 500, None),
        ("usage", 500, None),
    ],
)
def test_propsync_errors_are_404_503_retryable_or_500(
    url: str, name: str, status: int, retry_after: str | None
) -> None:
    r = httpx.get(f"{url}/raise/{name}")
    assert r.status_code == status
    assert r.json() == RAISED[name].to_dict()  # type: ignore[union-attr]
    assert r.headers.get("retry-after") == retry_after
    assert r.headers["cache-control"] == "no-store"


def test_unknown_paths_and_methods_are_json_too(url: str) -> None:
    r = httpx.get(f"{url}/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "NotFound", "message": "Not Found"}
    r = httpx.post(f"{url}/big")
    assert r.status_code == 405 and r.json()["error"] == "MethodNotAllowed"


def test_a_body_beyond_what_orjson_encodes_is_still_json(url: str) -> None:
    r = httpx.get(f"{url}/big")
    assert r.json() == {"command_id": 2**70, "text": "ž"}
    assert r.content == '{"command_id":1180591620717411303424,"text":"ž"}'.encode()
