"""What a new user sees on the profile page (#13), in a real headless Chromium: the edit form's one
status area, dates and update times people read, and a heading that names the customer.

Self-contained apart from ``conftest`` (whichever path ``test_page`` has), with its browser
set-up.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, FloatRect, Page

from tests.api.conftest import (
    AUTH,
    KEY_ID,
    KEY_SECRET,
    ServerProcess,
    batch_url,
    customers_command,
    start_server,
    unique,
)

XSS = "<img src=x onerror=alert(1)>"
ERROR_BACKGROUND = "rgb(251, 238, 238)"  # .error in base.html
DASH = "\u2014"


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Hard ids looked up as ``email_id`` first, and bodies over 4 KiB refused (413)."""
    env = {"PROPSYNC_HARD_ID_TYPES": "email_id,registered", "PROPSYNC_MAX_BODY_BYTES": "4096"}
    s = start_server(tmp_path_factory.mktemp("tight") / "warehouse", env=env)
    try:
        yield s
    finally:
        s.stop()


def _page(browser: Browser) -> tuple[Page, list[Dialog]]:
    context = browser.new_context(http_credentials={"username": KEY_ID, "password": KEY_SECRET})
    page = context.new_page()
    page.set_default_timeout(5000)  # a missing element fails the test quickly
    dialogs: list[Dialog] = []
    page.on("dialog", lambda d: dialogs.append(d))
    return page, dialogs


def _track(server: ServerProcess, ids: dict[str, str], props: dict[str, Any], ts: object) -> str:
    """One customers command, applied; the page's path for its first id."""
    body = {"commands": [customers_command(ids, props, ts)]}
    r = httpx.post(f"{server.url}{batch_url()}", json=body)
    assert r.status_code == 200 and r.json()["results"][0]["success"], r.text
    server.apply()
    id_type, value = next(iter(ids.items()))
    return f"{server.url}/customers/{id_type}:{value}"


def _internal_id(server: ServerProcess, ref: str) -> str:
    r = httpx.get(f"{server.url}/api/customers/{ref}", auth=AUTH)
    return str(r.json()["customer_id"])


def _submit(page: Page, name: str, value: str, kind: str = "text") -> None:
    page.fill("#edit-name", name)
    page.select_option("#edit-type", kind)
    page.fill("#edit-value", value)
    page.click("#edit-form button[type=submit]")


def _error(page: Page) -> str:
    """The status area's text once it shows an error, checked to look like the page's errors."""
    status = page.locator("#edit-status")
    status.and_(page.locator(".error")).wait_for()
    background = status.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == ERROR_BACKGROUND
    return status.inner_text()


# The status area says something new (the old code's was an <output> inside the form).
CHANGED = """was => {
  const text = document.getElementById("edit-status").textContent.trim();
  return text && text !== was;
}"""


def _boxes(page: Page) -> dict[str, FloatRect | None]:
    selectors = ["#edit-form", "#edit-name", "#edit-value", "#edit-type", "#edit-form button"]
    return {s: page.locator(s).bounding_box() for s in selectors}


def test_invalid_json_replaces_the_banner_with_a_clear_error_and_the_form_stays_put(
    server: ServerProcess, browser: Browser
) -> None:
    url = _track(server, {"registered": unique("json")}, {"age": 42}, 1570001049)
    page, dialogs = _page(browser)
    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    page.goto(f"{url}?saved=age")
    assert page.locator(".notice").inner_text() == "Saved age."
    before = _boxes(page)
    hint = page.locator("p.meta").last  # the paragraph below the form
    below = hint.bounding_box()

    _submit(page, "age", "thirty", "json")
    page.wait_for_function(CHANGED, arg="Saved age.")
    assert _boxes(page) == before  # nothing of the form moved, in either direction
    assert hint.bounding_box() == below  # a line is reserved for the message
    expected = (
        f'age: not valid JSON {DASH} write text as "thirty" (with quotes) or choose type text'
    )
    assert _error(page) == expected
    assert page.locator(".notice").count() == 0
    assert "Saved age." not in page.locator("body").inner_text()

    # A name with markup is shown as text in the message too.
    _submit(page, XSS, "{not json", "json")
    assert (
        _error(page)
        == f'{XSS}: not valid JSON {DASH} write text as "{{not json" (with quotes) or choose type text'
    )
    assert page.locator("img").count() == 0
    assert patches == [] and dialogs == []
    page.context.close()


def test_the_servers_refusals_read_as_sentences_in_the_same_area(
    server: ServerProcess, tight_server: ServerProcess, browser: Browser
) -> None:
    url = _track(server, {"registered": unique("refused")}, {"city": "Brno"}, 1570001049)
    page, _ = _page(browser)
    page.goto(f"{url}?saved=city")
    before = _boxes(page)

    # 400 with an errors list: the property's value is over 16 KB.
    _submit(page, "bio", "x" * 20_000)
    over = "the value is 20,002 bytes of JSON; at most 16,384 (16 KB) per property"
    assert _error(page) == f"bio: not saved {DASH} {over}"
    assert page.locator(".notice").count() == 0
    assert _boxes(page) == before

    # 404: the page is stale, its customer (here: an internal id never issued) unknown.
    ghost = uuid.uuid4().hex
    page.locator("#edit-form").evaluate(
        f"f => f.setAttribute('data-api', '/api/customers/{ghost}')"
    )
    _submit(page, "city", "Praha")
    assert _error(page) == f"city: not saved {DASH} no customer '{ghost}'; reload the page"

    # 413: over the server's body limit (4 KiB here).
    url = _track(tight_server, {"registered": unique("big")}, {"city": "Brno"}, 1570001049)
    page.goto(url)
    _submit(page, "bio", "y" * 5000)
    message = _error(page)
    assert message.startswith(f"bio: not saved {DASH} the value is too large (the body ")
    assert message.endswith("the limit is 4096)")
    assert httpx.get(f"{url.replace('/customers/', '/api/customers/')}", auth=AUTH).json()[
        "properties"
    ] == {"city": "Brno"}
    page.context.close()


def test_a_number_that_looks_like_unix_seconds_shows_its_date_beside_the_raw_value(
    server: ServerProcess, browser: Browser
) -> None:
    props = {
        "birthday": 579571200,  # a date property (1988-05-14)
        "signed_up": 1425250800.5,  # a datetime: 2015-03-02 00:00:00.5 in Prague
        "age": 42,
        "phone": 421905123456,
        "zip": "1425250800",  # text stays text
        "vip": True,
    }
    url = _track(server, {"registered": unique("dates")}, props, 1570001049)
    page, _ = _page(browser)
    page.goto(url)

    def cell(name: str) -> tuple[str, list[tuple[str, str | None]]]:
        row = page.locator(f'[data-property="{name}"]')
        times = row.locator("td").first.locator("time.as-time")
        shown = [(t.inner_text(), t.get_attribute("datetime")) for t in times.all()]
        return row.locator(".value").inner_text(), shown

    assert cell("birthday") == ("579571200", [("1988-05-14 00:00:00 UTC", "1988-05-14T00:00:00Z")])
    assert cell("signed_up") == (
        "1425250800.5",
        [("2015-03-01 23:00:00 UTC", "2015-03-01T23:00:00.5Z")],
    )
    for name, raw in [("age", "42"), ("phone", "421905123456"), ("zip", "1425250800")]:
        assert cell(name) == (raw, [])
    assert cell("vip") == ("true", [])
    page.context.close()


def test_last_update_is_shown_to_the_second_in_utc_with_the_exact_time_kept(
    server: ServerProcess, browser: Browser
) -> None:
    url = _track(server, {"registered": unique("when")}, {"city": "Brno"}, 1570001049.123456)
    page, _ = _page(browser)
    page.goto(url)
    row = page.locator('[data-property="city"]')
    when = row.locator(".when time")
    assert when.inner_text() == "2019-10-02 07:24:09 UTC"
    assert when.get_attribute("datetime") == "2019-10-02T07:24:09.123Z"
    assert when.get_attribute("title") == "2019-10-02 07:24:09.123456 UTC"
    assert row.locator(".unix").inner_text() == "1570001049.123456"
    page.context.close()


def _heading(page: Page) -> tuple[str, str, str]:
    return page.title(), page.locator("h1").inner_text(), page.locator(".subtitle").inner_text()


def test_the_heading_names_the_customer_with_the_internal_id_beneath(
    server: ServerProcess, tight_server: ServerProcess, browser: Browser
) -> None:
    page, _ = _page(browser)
    user = unique("named")
    names = {"first_name": " Marian ", "last_name": "Galik"}
    page.goto(_track(server, {"registered": user, "cookie": f"ck-{user}"}, names, 1570001049))
    internal = _internal_id(server, f"registered:{user}")
    assert _heading(page) == (
        f"Marian Galik (registered {user})",
        "Marian Galik",
        f"registered {user} · internal id {internal}",
    )
    h1, beneath = page.locator("h1"), page.locator("#customer-id")
    assert page.locator("#customer-id").inner_text() == internal
    h1_box, beneath_box = h1.bounding_box(), beneath.bounding_box()
    assert h1_box and beneath_box and beneath_box["y"] >= h1_box["y"] + h1_box["height"]
    size = "e => parseFloat(getComputedStyle(e).fontSize)"
    assert beneath.evaluate(size) < h1.evaluate(size)

    # No name: the hard id, whichever id the page was opened by.
    user = unique("unnamed")
    _track(server, {"cookie": f"ck-{user}", "registered": user}, {"city": "Brno"}, 1570001049)
    page.goto(f"{server.url}/customers/cookie:ck-{user}")
    internal = _internal_id(server, f"registered:{user}")
    assert _heading(page) == (
        f"{user} (registered)",
        user,
        f"registered id · internal id {internal}",
    )

    # No hard id: the internal id.
    cookie = unique("anonymous")
    page.goto(_track(server, {"cookie": cookie}, {"city": "Brno"}, 1570001049))
    internal = _internal_id(server, f"cookie:{cookie}")
    assert _heading(page) == (f"Customer {internal}", "Customer", f"internal id {internal}")

    # PROPSYNC_HARD_ID_TYPES decides which hard id names the customer.
    user = unique("ordered")
    ids = {"registered": user, "email_id": f"{user}@example.com"}
    page.goto(_track(tight_server, ids, {"city": "Brno"}, 1570001049))
    assert page.locator("h1").inner_text() == f"{user}@example.com"
    page.context.close()


def test_markup_in_a_name_is_shown_as_text(server: ServerProcess, browser: Browser) -> None:
    user = f"{unique('xss')}<b>"
    names = {"first_name": XSS, "last_name": "<script>alert(2)</script>"}
    url = _track(server, {"registered": user}, names, 1570001049)
    raw = httpx.get(url, auth=AUTH)
    assert raw.text.count("<script") == 1  # /static/profile.js only
    assert "<img" not in raw.text and html.escape(XSS, quote=False) in raw.text
    page, dialogs = _page(browser)
    page.goto(url)
    name = f"{XSS} <script>alert(2)</script>"
    assert _heading(page)[:2] == (f"{name} (registered {user})", name)
    assert page.locator("#hard-id code").inner_text() == user
    assert page.locator("img, b, h1 script").count() == 0
    page.wait_for_timeout(100)  # an onerror handler would have run by now
    assert dialogs == []
    page.context.close()
