"""The profile page in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Error as PlaywrightError, Page

from propsync.api.bodies import FORM_TYPE
from propsync.api.page import CONTENT_SECURITY_POLICY, csrf_token
from tests.api.conftest import (
    AUTH,
    KEY_ID,
    KEY_SECRET,
    ServerProcess,
    batch_url,
    customers_command,
    unique,
)


def _page(browser: Browser, *, javascript: bool = True) -> Page:
    context = browser.new_context(
        http_credentials={"username": KEY_ID, "password": KEY_SECRET},
        java_script_enabled=javascript,
    )
    return context.new_page()


def _track(server: ServerProcess, ids: dict[str, str], props: dict[str, Any], ts: float) -> None:
    """One customers command through the tracking API, applied."""
    body = {"commands": [customers_command(ids, props, ts)]}
    r = httpx.post(f"{server.url}{batch_url()}", json=body)
    assert r.status_code == 200 and r.json()["results"][0]["success"], r.text
    server.apply()


@pytest.fixture
def customer(server: ServerProcess) -> str:
    user = unique("page")
    props = {
        "first_name": "Marian",
        "age": 42,
        "tags": ["a", "b"],
        "bio": "<script>alert(1)</script>",
    }
    _track(server, {"registered": user, "cookie": f"ck-{user}"}, props, 1570001049.25)
    return f"registered:{user}"


def _rows(page: Page) -> dict[str, tuple[str, str, str]]:
    rows = {}
    for row in page.locator("#properties tbody tr[data-property]").all():
        name = row.get_attribute("data-property")
        assert name is not None
        rows[name] = (
            row.locator(".value").inner_text(),
            row.locator(".when").inner_text(),
            row.locator(".unix").inner_text(),
        )
    return rows


def test_profile_page_shows_ids_values_and_update_times(
    server: ServerProcess, browser: Browser, customer: str
) -> None:
    page = _page(browser)
    dialogs: list[Dialog] = []
    page.on("dialog", lambda d: dialogs.append(d))
    response = page.goto(f"{server.url}/customers/{customer}")
    assert response is not None and response.status == 200
    api = httpx.get(f"{server.url}/api/customers/{customer}?include_timestamps=1", auth=AUTH).json()
    assert page.locator("#customer-id").inner_text() == api["customer_id"]
    id_rows = page.locator("#ids tbody tr").all_inner_texts()
    user = customer.split(":", 1)[1]
    assert sorted(r.split("\t") for r in id_rows) == [
        ["cookie", f"ck-{user}"],
        ["registered", user],
    ]
    assert _rows(page) == {
        "age": ("42", "2019-10-02 07:24:09 UTC", "1570001049.25"),
        "bio": ("<script>alert(1)</script>", "2019-10-02 07:24:09 UTC", "1570001049.25"),
        "first_name": ("Marian", "2019-10-02 07:24:09 UTC", "1570001049.25"),
        "tags": ('["a","b"]', "2019-10-02 07:24:09 UTC", "1570001049.25"),
    }
    assert {k: v["last_update"] for k, v in api["properties"].items()} == dict.fromkeys(
        api["properties"], 1570001049.25
    )
    assert dialogs == []  # the property value was rendered as text, not run
    page.context.close()


def test_edit_form_with_javascript_patches_and_reloads(
    server: ServerProcess, browser: Browser, customer: str
) -> None:
    page = _page(browser)
    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    page.goto(f"{server.url}/customers/{customer}")
    before = time.time()
    page.fill("#edit-name", "first_name")
    page.fill("#edit-value", "Jozef")
    page.click("#edit-form button[type=submit]")
    page.wait_for_url("**saved=first_name")
    assert page.locator('[data-property="first_name"] .value').inner_text() == "Jozef"
    assert page.locator(".notice").inner_text() == "Saved first_name."
    assert patches == [f"{server.url}/api/customers/{customer}"]
    got = httpx.get(
        f"{server.url}/api/customers/{customer}?include_timestamps=1", auth=AUTH
    ).json()["properties"]
    assert got["first_name"]["value"] == "Jozef"
    assert before - 0.001 <= got["first_name"]["last_update"] <= time.time()
    assert got["age"] == {"value": 42, "last_update": 1570001049.25}
    unix = page.locator('[data-property="first_name"] .unix').inner_text()
    assert float(unix) == got["first_name"]["last_update"]

    # A JSON value, and an error shown in place for invalid JSON.
    page.fill("#edit-name", "age")
    page.select_option("#edit-type", "json")
    page.fill("#edit-value", "{not json")
    page.click("#edit-form button[type=submit]")
    assert "not valid JSON" in page.locator("#edit-status").inner_text()
    page.fill("#edit-value", "43")
    page.click("#edit-form button[type=submit]")
    page.wait_for_url("**saved=age")
    assert (
        httpx.get(f"{server.url}/api/customers/{customer}", auth=AUTH).json()["properties"]["age"]
        == 43
    )
    page.context.close()


def test_edit_form_works_without_javascript(
    server: ServerProcess, browser: Browser, customer: str
) -> None:
    page = _page(browser, javascript=False)
    page.goto(f"{server.url}/customers/{customer}")
    page.fill("#edit-name", "loyalty")
    page.select_option("#edit-type", "json")
    page.fill("#edit-value", '{"tier": "gold", "points": 1200}')
    page.click("#edit-form button[type=submit]")
    page.wait_for_url("**saved=loyalty")
    assert (
        page.locator('[data-property="loyalty"] .value').inner_text()
        == '{"points":1200,"tier":"gold"}'
    )
    got = httpx.get(f"{server.url}/api/customers/{customer}", auth=AUTH).json()["properties"]
    assert got["loyalty"] == {"tier": "gold", "points": 1200}
    page.context.close()


def test_page_errors(server: ServerProcess, browser: Browser, customer: str) -> None:
    page = _page(browser)
    response = page.goto(f"{server.url}/customers/registered:nobody-{time.time_ns()}")
    assert response is not None and response.status == 404
    assert "Unknown customer" in page.locator("h1").inner_text()
    # Without credentials the browser gets a Basic challenge (headless Chromium cannot prompt).
    anonymous = browser.new_context().new_page()
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        anonymous.goto(f"{server.url}/customers/{customer}")
    challenge = anonymous.request.get(f"{server.url}/customers/{customer}")
    assert challenge.status == 401 and challenge.headers["www-authenticate"].startswith("Basic")
    anonymous.context.close()
    page.context.close()
    # A forged form post (no valid CSRF token) is refused even with valid credentials.
    r = httpx.post(
        f"{server.url}/customers/{customer}/edit",
        data={"name": "first_name", "value": "Mallory", "csrf": "0" * 64},
        auth=AUTH,
    )
    assert r.status_code == 403
    assert (
        httpx.get(f"{server.url}/api/customers/{customer}", auth=AUTH).json()["properties"][
            "first_name"
        ]
        == "Marian"
    )


MARKUP_NAME = "<b id=\"injected\">'name'</b>"
MARKUP_TEXT = "{{ 7*7 }}{% raw %}<script>alert(2)</script>\"quoted\" 'single' &amp;"


def test_markup_in_ids_names_and_values_is_text(server: ServerProcess, browser: Browser) -> None:
    """Values are escaped and never evaluated as template syntax: an autoescape or a
    ``|safe`` regression shows up as an element, a dialog or a computed ``49``."""
    user = f'{unique("markup")}<i id="injected">'
    props = {MARKUP_NAME: MARKUP_TEXT, "nested": {"k": MARKUP_TEXT}}
    _track(server, {"registered": user}, props, 1570001049)
    ref = quote(f"registered:{user}", safe=":")
    notice = quote(MARKUP_TEXT, safe="")
    raw = httpx.get(f"{server.url}/customers/{ref}?saved={notice}", auth=AUTH)
    assert raw.status_code == 200
    assert raw.text.count("<script") == 1  # /static/profile.js only
    assert "{{ 7*7 }}{% raw %}&lt;script&gt;alert(2)&lt;/script&gt;" in raw.text
    assert 'id="injected"' not in raw.text

    page = _page(browser)
    dialogs: list[Dialog] = []
    page.on("dialog", lambda d: dialogs.append(d))
    page.goto(f"{server.url}/customers/{ref}?saved={notice}")
    assert page.locator("#injected").count() == 0
    assert page.locator("#ids code").inner_text() == user
    assert sorted(page.locator("#properties .name").all_inner_texts()) == [MARKUP_NAME, "nested"]
    rows = _rows(page)  # keyed by the data-property attributes
    assert rows[MARKUP_NAME][0] == MARKUP_TEXT
    assert json.loads(rows["nested"][0]) == {"k": MARKUP_TEXT}
    assert page.locator(".notice").inner_text() == f"Saved {MARKUP_TEXT}."
    options = page.locator("#property-names option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(options) == [MARKUP_NAME, "nested"]
    assert dialogs == []
    page.context.close()


FORM = {"Content-Type": FORM_TYPE}


def _edit(
    server: ServerProcess,
    customer: str,
    content: bytes | Iterator[bytes],
    headers: dict[str, str] = FORM,
    auth: tuple[str, str] | None = AUTH,
) -> httpx.Response:
    url = f"{server.url}/customers/{customer}/edit"
    return httpx.post(url, content=content, headers=headers, auth=auth, timeout=30)


def _error_page(r: httpx.Response, status: int, message: str) -> None:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert message in html.unescape(r.text), r.text[:300]


def _properties(server: ServerProcess, customer: str) -> dict[str, object]:
    r = httpx.get(f"{server.url}/api/customers/{customer}", auth=AUTH)
    props: dict[str, object] = r.json()["properties"]
    return props


def test_form_refusals_are_pages_not_json_422(server: ServerProcess, customer: str) -> None:
    """A browser gets an error page for whatever the form lacks or carries too much of."""
    before = _properties(server, customer)
    token = csrf_token(KEY_SECRET, KEY_ID, customer)
    stale = "the form is stale or foreign"
    _error_page(_edit(server, customer, b""), 403, stale)
    _error_page(_edit(server, customer, b"name=p&value=1"), 403, stale)
    _error_page(_edit(server, customer, f"csrf={token}".encode()), 400, "property name is empty")
    _error_page(_edit(server, customer, f"csrf={token}&name=+&value=1".encode()), 400, "is empty")
    text = {"Content-Type": "text/plain"}
    _error_page(_edit(server, customer, f"csrf={token}&name=p".encode(), text), 415, FORM_TYPE)
    multipart = httpx.post(
        f"{server.url}/customers/{customer}/edit",
        data={"csrf": token, "name": "p", "value": "1"},
        files={"upload": ("a.txt", b"x")},
        auth=AUTH,
    )
    _error_page(multipart, 415, FORM_TYPE)
    many = f"csrf={token}&name=p&value=1" + "&x=" * 1000
    _error_page(_edit(server, customer, many.encode()), 400, "Too many fields")
    anonymous = _edit(server, customer, f"csrf={token}&name=p&value=1".encode(), auth=None)
    _error_page(anonymous, 401, "missing API key")
    assert _properties(server, customer) == before


def test_an_oversized_form_is_413_before_it_is_parsed(server: ServerProcess, customer: str) -> None:
    """Over ``max_body_bytes`` (1 MiB) with each field under Starlette's own 1 MiB per field, so
    only the route's cap refuses it: declared by Content-Length, or streamed (chunked)."""
    token = csrf_token(KEY_SECRET, KEY_ID, customer)
    head = f"csrf={token}&name=big&value=1".encode()
    pad = b"&pad=" + b"x" * 600_000

    def chunks() -> Iterator[bytes]:
        yield head
        yield pad
        yield pad

    for content in (head + pad + pad, chunks()):
        _error_page(_edit(server, customer, content), 413, "limit")
    _error_page(_edit(server, customer, chunks(), auth=None), 401, "missing API key")
    assert "big" not in _properties(server, customer)
    r = _edit(server, customer, head)
    assert r.status_code == 303 and r.headers["location"].endswith("?saved=big")
    assert _properties(server, customer)["big"] == "1"
