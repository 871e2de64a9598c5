"""The profile page's rendering (propsync.api.page): every id, value and time shown as text, never
as markup; the form tied to its key and customer. The page in a browser: routes/test_page.py."""

from __future__ import annotations

import markupsafe

from propsync.api.page import csrf_token, customer_path, render_error, render_profile
from propsync.store.read import Customer, Property

MARKUP = "<b id=\"x\">'{{ 7*7 }}'</b>"

CUSTOMER = Customer(
    "c0ffee",
    {"registered": [MARKUP], "cookie": ["k1"]},
    [
        Property("name", '"Ann <script>"', 1_570_001_049_250_000),
        Property(MARKUP, "[1,2]", 1_570_001_049_000_000),
        Property("legacy", "null", None),
    ],
)


def page(**kwargs: object) -> str:
    options: dict[str, object] = {
        "version": 7,
        "csrf": "t0ken",
        "hard_id_types": ("registered",),
        **kwargs,
    }
    return render_profile("registered:a/b c", CUSTOMER, **options)  # type: ignore[arg-type]


def test_ids_values_and_names_are_text_never_markup() -> None:
    text = page()
    assert "<b id" not in text and "<script>" not in text
    # As text, template syntax included: autoescaped, never evaluated.
    # the title, the heading (the registered id), the id, the name, its row, the list
    assert text.count(str(markupsafe.escape(MARKUP))) == 6
    assert "Ann &lt;script&gt;" in text  # a string value is shown as its text
    assert '<code class="value">[1,2]</code>' in text  # other JSON as code


def test_times_are_shown_in_utc_and_as_exact_unix_seconds() -> None:
    text = page()
    # To the second in the text, the exact instant in the <time> element and its tooltip.
    assert (
        '<time datetime="2019-10-02T07:24:09.25Z" title="2019-10-02 07:24:09.25 UTC">'
        "2019-10-02 07:24:09 UTC</time>"
    ) in text
    assert "<code>1570001049.25</code>" in text and "<code>1570001049</code>" in text
    assert "never tracked (legacy)" in text and "<code>-1</code>" in text


def test_the_form_posts_to_the_customers_encoded_path_with_its_token() -> None:
    text = page(notice="Saved name.", error=None)
    assert 'action="/customers/registered:a%2Fb%20c/edit"' in text
    assert '<input type="hidden" name="csrf" value="t0ken">' in text
    assert 'role="status" aria-live="polite" class="status notice">Saved name.</div>' in text
    assert 'role="alert"' not in text
    assert '<span id="version">7</span>' in text
    assert customer_path("email:a@b.c/d?e#f") == "email:a@b.c%2Fd%3Fe%23f"


def test_the_token_is_tied_to_the_key_and_the_customer() -> None:
    token = csrf_token("secret", "ui", "registered:a")
    assert token == csrf_token("secret", "ui", "registered:a") and len(token) == 64
    others = {
        csrf_token("other", "ui", "registered:a"),
        csrf_token("secret", "ops", "registered:a"),
        csrf_token("secret", "ui", "registered:b"),
    }
    assert token not in others and len(others) == 3


def test_an_error_page_shows_its_status_and_message_as_text() -> None:
    text = render_error(404, "Unknown customer", "no customer '<i>x</i>'")
    assert "<title>404 Unknown customer</title>" in text
    assert "no customer &#39;&lt;i&gt;x&lt;/i&gt;&#39;" in text and "<i>" not in text
