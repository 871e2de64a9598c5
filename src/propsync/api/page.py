"""The customer profile page: server-rendered HTML, readable without JavaScript.

Rendered from the Jinja2 templates in ``api/templates/``, autoescaped: every value from the
warehouse is escaped. The edit form posts to ``/customers/{ref}/edit`` (works without JavaScript,
protected by a CSRF token); ``/static/profile.js`` upgrades it to a PATCH of
``/api/customers/{ref}``, reloads the page on success and says anything else in the page's one
status area, ``#edit-status``, below the form.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
from decimal import Decimal
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
// Progressive enhancement of the edit form: PATCH the API instead of posting the form, and say
// what happened in #edit-status, the page's one status area (it holds the server's notice too).
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  var status = document.getElementById("edit-status");
  if (!form || !status || !window.fetch) { return; }
  var button = form.querySelector("button[type=submit]");

  function show(kind, text) {
    status.className = "status " + kind;
    status.textContent = text;
  }

  function notJson(name, raw) {
    if (!raw.trim()) {
      return name + ": no value \\u2014 write JSON such as 42, true, null or [\\"a\\"], " +
        "or choose type text";
    }
    var how = raw.length <= 40 ?
      "write text as " + JSON.stringify(raw) + " (with quotes)" : "write text in double quotes";
    return name + ": not valid JSON \\u2014 " + how + " or choose type text";
  }

  // The server's errors (less the "properties.NAME: " that the message starts with anyway),
  // else its message.
  function said(name, body) {
    if (!body) { return ""; }
    if (Array.isArray(body.errors) && body.errors.length) {
      var own = "properties." + name + ": ";
      return body.errors.map(function (e) {
        var text = String(e);
        return text.indexOf(own) === 0 ? text.slice(own.length) : text;
      }).join("; ");
    }
    return typeof body.message === "string" ? body.message : "";
  }

  function refusal(name, response, body) {
    var why = said(name, body);
    var code = response.status;
    var head = name + ": not saved \\u2014 ";
    if (code === 400 || code === 409) { return head + (why || "the value was refused"); }
    if (code === 401 || code === 403) {
      return head + "the API key was refused; reload the page to sign in again";
    }
    if (code === 404) { return head + (why || "no such customer") + "; reload the page"; }
    if (code === 413) { return head + "the value is too large" + (why ? " (" + why + ")" : ""); }
    if (code === 429 || code === 503) {
      var wait = response.headers.get("Retry-After");
      return head + "the server is busy" + (why ? " (" + why + ")" : "") +
        "; try again " + (wait ? "in " + wait + " s" : "shortly");
    }
    return head + "the server answered " + code + (why ? ": " + why : "");
  }

  function answered(name, response, text) {
    var body = null;
    try { body = JSON.parse(text); } catch (e) { body = null; }
    if (response.status === 200) {
      window.location.replace(form.getAttribute("data-page") + "?saved=" +
        encodeURIComponent(name));
    } else if (response.status === 202) {
      show("notice", "The warehouse is busy: " + name +
        " is queued and appears after the next apply.");
    } else {
      show("error", refusal(name, response, body));
    }
  }

  function save(name, value) {
    var props = {}; props[name] = value;
    show("pending", "Saving " + name + "\\u2026");
    button.disabled = true;
    fetch(form.getAttribute("data-api"), {
      method: "PATCH",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      credentials: "same-origin",
      body: JSON.stringify({properties: props})
    }).then(function (response) {
      return response.text().then(function (text) { answered(name, response, text); });
    }).catch(function () {
      show("error", name + ": not saved \\u2014 the server could not be reached; " +
        "check the connection and try again");
    }).then(function () { button.disabled = false; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var name = form.elements["name"].value.trim();
    var raw = form.elements["value"].value;
    var value = raw;
    if (!name) { show("error", "Not saved \\u2014 the property name is empty"); return; }
    if (form.elements["type"].value === "json") {
      try { value = JSON.parse(raw); } catch (e) {
        show("error", notJson(name, raw));
        form.elements["value"].focus();
        return;
      }
    }
    save(name, value);
  });

  // After a save the page reloads at its top: bring the notice (below the form) into view.
  if (status.textContent.trim()) { status.scrollIntoView({block: "nearest"}); }
})();
"""


def customer_path(ref: str) -> str:
    """The URL path segment of a customer reference (``/`` and the like percent-encoded)."""
    return quote(ref, safe=":@")


def csrf_token(secret: str, key_id: str, ref: str) -> str:
    """Ties an edit form to the API key that loaded it and to the customer."""
    message = f"propsync-edit\x1f{key_id}\x1f{ref}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# The store keeps no property types, yet ``date`` and ``datetime`` properties hold UNIX seconds:
# numbers in this range (1973-03-03 to 2099-12-31 UTC) are shown with the time they would be,
# beside the raw value (docs/api.md, "The profile page").
_PLAUSIBLE_SECONDS = (Decimal(100_000_000), Decimal(4_102_444_800))


class _Moment(NamedTuple):
    text: str  # to the second: 2019-10-02 07:24:09 UTC
    iso: str  # for <time datetime>, which takes at most 3 fraction digits
    exact: str  # to the microsecond, for a tooltip


def _moment(us: int) -> _Moment:
    when = _EPOCH + dt.timedelta(microseconds=us)
    seconds = when.strftime("%Y-%m-%d %H:%M:%S")
    fraction = f".{when.microsecond:06d}".rstrip("0").rstrip(".")
    iso = when.strftime("%Y-%m-%dT%H:%M:%S") + fraction[:4] + "Z"
    return _Moment(f"{seconds} UTC", iso, f"{seconds}{fraction} UTC")


def _as_unix_time(value: object, text: str) -> _Moment | None:
    """The moment a JSON number would be as UNIX seconds, if it plausibly is one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = Decimal(text)
    exponent = seconds.as_tuple().exponent
    low, high = _PLAUSIBLE_SECONDS
    if not low <= seconds < high or not isinstance(exponent, int) or exponent < -6:
        return None
    return _moment(int(seconds * 1_000_000))


class _Row(NamedTuple):
    name: str
    text: str | None  # a string value, shown as text; else ``json``, in code
    json: str
    as_time: _Moment | None  # a number that looks like UNIX seconds
    when: _Moment | None  # None: never tracked (legacy)
    unix: str


def _row(p: Property) -> _Row:
    value = json.loads(p.value)
    text = value if isinstance(value, str) else None
    as_time = _as_unix_time(value, p.value)
    if p.update_ts is None:
        return _Row(p.name, text, p.value, as_time, None, "-1")
    return _Row(p.name, text, p.value, as_time, _moment(p.update_ts), format_timestamp(p.update_ts))


class _Heading(NamedTuple):
    title: str
    heading: str
    hard_id: tuple[str, str] | None  # (type, value): the first hard id in the configured order
    by_name: bool  # the heading is the customer's name (the hard id then goes beneath it)


def _heading(customer: Customer, hard_id_types: tuple[str, ...]) -> _Heading:
    """The customer as a person reads it: ``first_name last_name``, else its hard id (as edits
    pick it), else its internal id."""
    values = {p.name: json.loads(p.value) for p in customer.properties}
    parts = [values.get("first_name"), values.get("last_name")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    hard = next(((t, customer.ids[t][0]) for t in hard_id_types if customer.ids.get(t)), None)
    if name:
        title = f"{name} ({hard[0]} {hard[1]})" if hard else name
        return _Heading(title, name, hard, True)
    if hard:
        return _Heading(f"{hard[1]} ({hard[0]})", hard[1], hard, False)
    return _Heading(f"Customer {customer.customer_id}", "Customer", None, False)


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
    hard_id_types: tuple[str, ...],
    notice: str | None = None,
    error: str | None = None,
) -> str:
    return _render(
        "profile.html",
        customer_id=customer.customer_id,
        head=_heading(customer, hard_id_types),
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
