"""The profile page: ``GET /customers/{customer}`` and its edit form (API key required)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message, Receive

from propsync.api.bodies import check_unicode, loads, read_body, urlencoded_form
from propsync.api.deps import PageKey, ServiceDep, service_of
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
        hard_id_types=service.settings.hard_id_types,
        notice=notice,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


class _FormRoute(APIRoute):
    """The edit form's route: FastAPI parses ``Form`` parameters before any dependency runs, so
    the client is authenticated (401) and the body read within ``max_body_bytes`` (a 413 page)
    and checked (``urlencoded_form``) here first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            service = await service_of(request)
            service.authenticate(request, html=True)
            try:
                body = await read_body(request, service.config.max_body_bytes)
            except ApiError as exc:  # too large, or the client went away: a page for the browser
                exc.html = True
                raise
            body = urlencoded_form(body, request.headers.get("content-type"))
            request = Request(request.scope, _replay(body, request.receive))
            try:
                await request.form()  # FastAPI reuses it; its errors become pages here
            except StarletteHTTPException as exc:  # more than 1000 fields
                raise ApiError(exc.status_code, "Bad request", exc.detail, html=True) from None
            return await handler(request)

        return checked


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` giving ``body`` (already read) first."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if not pending:
            return await receive()
        pending = False
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def profile_edit(
    customer: str,
    service: ServiceDep,
    key: PageKey,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    kind: Annotated[str, Form(alias="type")] = "text",
) -> Response:
    """The edit form without JavaScript: apply, then back to the page (303). Every field has a
    default: a missing one is a 400 or 403 page, never FastAPI's JSON 422."""
    key_id, secret = key
    if not hmac.compare_digest(csrf, csrf_token(secret, key_id, customer)):
        raise ApiError(403, "Forbidden", "the form is stale or foreign: reload the page", html=True)
    name = name.strip()
    if not name:
        raise ApiError(400, "Bad request", "the property name is empty", html=True)
    parsed: Any = loads(value, "the value", html=True) if kind == "json" else value
    try:
        check_unicode(parsed)
        status, _ = await run_in_threadpool(service.edit, customer, {name: parsed}, key_id)
    except ApiError as exc:
        exc.html = True
        raise
    except (UnknownCustomer, NotPublished) as exc:
        raise ApiError(404, "Unknown customer", exc.message, html=True) from None
    flag = "saved" if status == 200 else "queued"
    return RedirectResponse(
        f"/customers/{customer_path(customer)}?{flag}={customer_path(name)}", status_code=303
    )


router.add_api_route(
    "/customers/{customer:path}/edit",
    profile_edit,
    methods=["POST"],
    include_in_schema=False,
    route_class_override=_FormRoute,
)


@router.get("/static/profile.js", include_in_schema=False)
def profile_js() -> Response:
    return Response(
        PROFILE_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )
