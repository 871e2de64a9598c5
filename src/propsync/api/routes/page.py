"""The profile page: ``GET /customers/{customer}`` and its edit form (API key required)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from propsync.api.bodies import check_unicode, form, loads, read_body
from propsync.api.deps import PageKey, ServiceDep
from propsync.api.errors import PAGE_HEADERS, ApiError
from propsync.api.page import PROFILE_JS, csrf_token, customer_path, render_profile
from propsync.errors import NotPublished, UnknownCustomer
from propsync.store.read import CustomerRef

router = APIRouter(tags=["page"])


@router.get("/customers/{customer:path}", response_class=HTMLResponse)
def profile_page(
    customer: str,
    service: ServiceDep,
    key: PageKey,
    saved: str | None = None,
    queued: str | None = None,
) -> Response:
    """The customer's profile: ids, properties with their last update, an edit form."""
    key_id, secret = key
    try:
        found, version = service.reader.customer(CustomerRef.parse(customer))
    except (UnknownCustomer, NotPublished) as exc:
        raise ApiError(404, "Unknown customer", exc.message, html=True) from None
    notice = None
    if saved:
        notice = f"Saved {saved}."
    elif queued:
        notice = f"The warehouse is busy: {queued} is queued and appears after the next apply."
    html = render_profile(
        customer,
        found,
        version=version,
        csrf=csrf_token(secret, key_id, customer),
        notice=notice,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.post("/customers/{customer:path}/edit", include_in_schema=False)
async def profile_edit(
    customer: str, request: Request, service: ServiceDep, key: PageKey
) -> Response:
    """The edit form without JavaScript: apply, then back to the page (303)."""
    key_id, secret = key
    fields = form(await read_body(request, service.config.max_body_bytes))

    def field(name: str, default: str = "") -> str:
        return fields.get(name, [default])[0]

    if not hmac.compare_digest(field("csrf"), csrf_token(secret, key_id, customer)):
        raise ApiError(403, "Forbidden", "the form is stale or foreign: reload the page", html=True)
    name, text = field("name").strip(), field("value")
    if not name:
        raise ApiError(400, "Bad request", "the property name is empty", html=True)
    value: Any = text
    if field("type", "text") == "json":
        value = loads(text, "the value", html=True)
    try:
        check_unicode(value)
        status, _ = await run_in_threadpool(service.edit, customer, {name: value}, key_id)
    except ApiError as exc:
        exc.html = True
        raise
    except (UnknownCustomer, NotPublished) as exc:
        raise ApiError(404, "Unknown customer", exc.message, html=True) from None
    flag = "saved" if status == 200 else "queued"
    return RedirectResponse(
        f"/customers/{customer_path(customer)}?{flag}={customer_path(name)}", status_code=303
    )


@router.get("/static/profile.js", include_in_schema=False)
def profile_js() -> Response:
    return Response(
        PROFILE_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )
