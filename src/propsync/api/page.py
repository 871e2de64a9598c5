"""The customer profile page: server-rendered HTML, readable without JavaScript.

Every value from the warehouse is escaped. The edit form posts to ``/customers/{ref}/edit`` (works
without JavaScript, protected by a CSRF token); ``/static/profile.js`` upgrades it to a PATCH of
``/api/customers/{ref}`` and reloads the page on success.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from html import escape
from urllib.parse import quote

from propsync.store.read import Customer
from propsync.timestamps import format_timestamp

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.4rem;margin-bottom:.2rem}
.meta{color:#555;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}
code{font:13px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.legacy{color:#8a6d00}
form{display:grid;grid-template-columns:auto 1fr;gap:.4rem .8rem;max-width:36rem}
form button{grid-column:2;justify-self:start}
.notice{padding:.5rem .8rem;background:#eef7ee;border:1px solid #9c9}
.error{padding:.5rem .8rem;background:#fbeeee;border:1px solid #c99}
"""

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


def _value_cell(value_json: str) -> tuple[str, str]:
    """(HTML of the value, its kind) from canonical JSON text."""
    value = json.loads(value_json)
    if isinstance(value, str):
        return f'<span class="value">{escape(value)}</span>', "text"
    return f'<code class="value">{escape(value_json)}</code>', "json"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def render_profile(
    ref: str,
    customer: Customer,
    *,
    version: int,
    csrf: str,
    notice: str | None = None,
    error: str | None = None,
) -> str:
    path = customer_path(ref)
    parts = [f'<h1>Customer <code id="customer-id">{escape(customer.customer_id)}</code></h1>']
    parts.append(
        f'<p class="meta">Published version <span id="version">{version}</span>. '
        "Tracked updates appear here once the journal is applied (every few seconds).</p>"
    )
    if notice:
        parts.append(f'<p class="notice" role="status">{escape(notice)}</p>')
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    parts.append(
        '<h2>Ids</h2>\n<table id="ids"><thead><tr><th>Id type</th><th>Value</th></tr></thead><tbody>'
    )
    for id_type, values in sorted(customer.ids.items()):
        for v in values:
            parts.append(
                f'<tr data-id-type="{escape(id_type)}"><td>{escape(id_type)}</td>'
                f"<td><code>{escape(v)}</code></td></tr>"
            )
    parts.append("</tbody></table>")
    parts.append(
        '<h2>Properties</h2>\n<table id="properties"><thead><tr><th>Property</th><th>Value</th>'
        "<th>Last update</th><th>UNIX time</th></tr></thead><tbody>"
    )
    kinds: dict[str, str] = {}
    for p in customer.properties:
        value_html, kind = _value_cell(p.value)
        kinds[p.name] = kind
        if p.update_ts is None:
            when, unix = '<span class="legacy">never tracked (legacy)</span>', "-1"
        else:
            when, unix = escape(human_time(p.update_ts)), format_timestamp(p.update_ts)
        parts.append(
            f'<tr data-property="{escape(p.name)}"><th scope="row" class="name">{escape(p.name)}</th>'
            f'<td>{value_html}</td><td class="when">{when}</td>'
            f'<td class="unix"><code>{unix}</code></td></tr>'
        )
    if not customer.properties:
        parts.append('<tr><td colspan="4">No properties.</td></tr>')
    parts.append("</tbody></table>")
    options = "".join(f'<option value="{escape(name)}">' for name in kinds)
    parts.append(
        "<h2>Edit a property</h2>\n"
        f'<form id="edit-form" method="post" action="/customers/{escape(path)}/edit" '
        f'data-api="/api/customers/{escape(path)}" data-page="/customers/{escape(path)}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        '<label for="edit-name">Property</label>'
        '<input id="edit-name" name="name" list="property-names" required autocomplete="off">'
        f'<datalist id="property-names">{options}</datalist>'
        '<label for="edit-value">Value</label><input id="edit-value" name="value" autocomplete="off">'
        '<label for="edit-type">Type</label><select id="edit-type" name="type">'
        '<option value="text" selected>text</option><option value="json">JSON (number, true, '
        "null, list, object)</option></select>"
        '<button type="submit">Save</button>'
        '<output id="edit-status" aria-live="polite"></output></form>\n'
        '<p class="meta">Saving stamps the property with the current time; a newer tracked '
        "update still wins over it.</p>\n"
        '<script src="/static/profile.js" defer></script>'
    )
    return _page(f"Customer {customer.customer_id}", "\n".join(parts))


def render_error(status: int, title: str, message: str) -> str:
    return _page(
        f"{status} {title}",
        f'<h1>{status} {escape(title)}</h1>\n<p class="error">{escape(message)}</p>',
    )
