"""The tracking API: ``POST /track/v2/projects/{project_token}/batch`` and ``.../customers``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope

from propsync.api import fastpath, schemas
from propsync.api.bodies import loads, read_body, read_limited
from propsync.api.deps import ServiceDep
from propsync.api.errors import (
    ApiError,
    disconnected_response,
    json_response,
    propsync_error_response,
)
from propsync.api.openapi import PROJECT_TOKEN, body
from propsync.api.service import Service
from propsync.errors import PropsyncError
from propsync.timestamps import now_us
from propsync.tracking import BatchShapeError, check_batch, response

router = APIRouter(tags=["tracking"])

_BACKLOG = {
    "model": schemas.ErrorBody,
    "description": "the journal's backlog is over its bound: retry after Retry-After",
}


async def answer_batch(
    service: Service, project_token: str, declared: str | None, chunks: AsyncIterator[bytes]
) -> Response:
    """What ``POST .../batch`` answers (a 200, or ApiError / PropsyncError raised)."""
    service.check_project(project_token)
    service.check_backlog()
    body = await read_limited(declared, chunks, service.config.max_body_bytes)
    receipt = await service.track_plain(body)  # what SDKs send, without a parse into dicts
    if receipt is not None:
        return json_response(200, response(receipt, now_us()))
    batch = loads(body)
    try:
        check_batch(batch, service.config.max_commands)
    except BatchShapeError as exc:
        raise ApiError(400, exc.name, str(exc)) from None
    receipt = await service.track(batch)
    return json_response(200, response(receipt, now_us()))


@router.post(
    "/track/v2/projects/{project_token}/batch",
    summary="Track a batch of commands",
    response_model=schemas.TrackingResponse,
    responses={
        400: {
            "model": schemas.ErrorBody,
            "description": "not JSON, nested more than 64 levels, not a batch, too many commands",
        },
        403: {"model": schemas.ErrorBody, "description": "unknown project token"},
        413: {"model": schemas.ErrorBody, "description": "body too large"},
        429: _BACKLOG,
        503: {"model": schemas.ErrorBody, "description": "journal unavailable: retry"},
    },
    openapi_extra={**body("TrackingBatchBody"), "parameters": [PROJECT_TOKEN]},
)
async def track_batch(request: Request, service: ServiceDep) -> Response:
    """One result per command, in order. A 200 means the valid commands are durably journaled;
    they are applied (newer timestamp wins per property) within seconds. Hard-id conflicts are
    found only when applied: they land in the warehouse's ``rejections`` table."""
    # With fast_paths this route is answered by the ASGI layer (fast_answer) and only documents
    # it; its parameters are read from the request, as the layer reads them from the scope.
    return await answer_batch(
        service,
        request.path_params["project_token"],
        request.headers.get("content-length"),
        request.stream(),
    )


@router.post(
    "/track/v2/projects/{project_token}/customers",
    summary="Track one customers command",
    response_model=schemas.CommandResult,
    responses={
        400: {"model": schemas.CommandResult, "description": "invalid command"},
        403: {"model": schemas.ErrorBody, "description": "unknown project token"},
        413: {"model": schemas.ErrorBody, "description": "body too large"},
        429: _BACKLOG,
    },
    openapi_extra=body("CustomersData"),
)
async def track_customer(project_token: str, request: Request, service: ServiceDep) -> Response:
    """The body is the ``data`` of one ``customers`` command."""
    service.check_project(project_token)
    service.check_backlog()
    data = loads(await read_body(request, service.config.max_body_bytes))
    receipt = await service.track({"commands": [{"name": "customers", "data": data}]})
    result = receipt.results[0]
    return json_response(200 if result["success"] else 400, result)


def fast_answer(service: Service) -> fastpath.Answer:
    """``track_batch``'s answer without FastAPI's routing (``api/fastpath.py``); the errors the
    app's handlers would turn into answers, turned the same way here."""

    async def answer(scope: Scope, receive: Receive, path_params: dict[str, Any]) -> Response:
        service.fast_tracks += 1
        try:
            return await answer_batch(
                service,
                path_params["project_token"],
                fastpath.header(scope, b"content-length"),
                fastpath.body_chunks(receive),
            )
        except ApiError as exc:
            return exc.response()
        except PropsyncError as exc:
            return propsync_error_response(
                scope["method"], scope["path"], exc, service.config.retry_after_seconds
            )
        except ClientDisconnect:
            return disconnected_response(scope["method"], scope["path"])

    return answer
