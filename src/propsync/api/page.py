"""The customer profile page: server-rendered HTML, readable without JavaScript.

Rendered from the Jinja2 templates in ``api/templates/``, autoescaped: every value from the
warehouse is escaped. The edit form posts to ``/customers/{ref}/edit`` (works without JavaScript,
protected by a CSRF token); ``/static/profile.js`` upgrades it to a PATCH of
``/api/customers/{ref}`` and reloads the page on success.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
from typing import NamedTuple
from urllib.parse import quote

import jinja2

from propsync.store.read import Customer, Property
from propsync.timestamps import format_timestamp

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PROFILE_JS = """\
// Progressive enhancement of the edit form: PATCH the API instead of posting the form.
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  if (!form || !window.fetch) { return; }
  var status = document.getElementById("edit-status");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = form.elements["name"].value;
    var raw = form.elements["value"].value;
    var value = raw;
    if (form.elements["type"].value === "json") {
      try { value = JSON.parse(raw); } catch (e) {
        status.textContent = "Not valid JSON: " + e.message; return;
      }
    }
    var props = {}; props[name] = value;
    status.textContent = "Saving\\u2026";
    fetch(form.getAttribute("data-api"), {
      method: "PATCH",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      credentials: "same-origin",
      body: JSON.stringify({properties: props})
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.status === 200) {
          window.location.replace(form.getAttribute("data-page") + "?saved=" +
            encodeURIComponent(name));
        } else if (response.status === 202) {
          status.textContent = body.message;
        } else {
          status.textContent = "Not saved: " + (body.errors || [body.message]).join("; ");
        }
      });
    }).catch(function (e) { status.textContent = "Not saved: " + e; });
  });
})();
"""


def customer_path(ref: str) -> str:
    """The URL path segment of a customer reference (``/`` and the like percent-encoded)."""
    return quote(ref, safe=":@")


def csrf_token(secret: str, key_id: str, ref: str) -> str:
    """Ties an edit form to the API key that loaded it and to the customer."""
    message = f"propsync-edit\x1f{key_id}\x1f{ref}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def human_time(us: int) -> str:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    if us % 1_000_000:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + " UTC"


class _Row(NamedTuple):
    name: str
    text: str | None  # a string value, shown as text; else ``json``, in code
    json: str
    when: str | None  # None: never tracked (legacy)
    unix: str


def _row(p: Property) -> _Row:
    value = json.loads(p.value)
    text = value if isinstance(value, str) else None
    if p.update_ts is None:
        return _Row(p.name, text, p.value, None, "-1")
    return _Row(p.name, text, p.value, human_time(p.update_ts), format_timestamp(p.update_ts))


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("propsync.api"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # package data: not edited under a running server
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, **context: object) -> str:
    return _templates().get_template(template).render(context)


def render_profile(
    ref: str,
    customer: Customer,
    *,
    version: int,
    csrf: str,
    notice: str | None = None,
    error: str | None = None,
) -> str:
    return _render(
        "profile.html",
        customer_id=customer.customer_id,
        version=version,
        notice=notice,
        error=error,
        ids=[(t, v) for t, values in sorted(customer.ids.items()) for v in values],
        rows=[_row(p) for p in customer.properties],
        path=customer_path(ref),
        csrf=csrf,
    )


def render_error(status: int, title: str, message: str) -> str:
    return _render("error.html", status=status, title=title, message=message)
