"""Customer data: ``GET`` and ``PATCH /api/customers/{customer}`` (API key required)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.types import Receive, Scope

from propsync.api import fastpath, schemas
from propsync.api.bodies import edit_properties, include_timestamps, loads, read_body
from propsync.api.deps import ApiKey, ServiceDep
from propsync.api.errors import NO_STORE, ApiError, json_response
from propsync.api.openapi import CUSTOMER, INCLUDE_TIMESTAMPS, body
from propsync.api.service import Service
from propsync.errors import NotPublished, UnknownCustomer
from propsync.store.read import Customer, CustomerRef, render_customer

router = APIRouter(tags=["customers"])


@router.get(
    "/api/customers/{customer:path}",
    summary="A customer's properties",
    responses={
        200: {
            "description": "the customer, from the latest published version "
            "(header X-Propsync-Version)",
            "content": {
                "application/json": {
                    "examples": {
                        "plain": {"value": schemas.CUSTOMER_EXAMPLE_PLAIN},
                        "include_timestamps=1": {"value": schemas.CUSTOMER_EXAMPLE_TIMESTAMPS},
                    }
                }
            },
        },
        401: {"model": schemas.ErrorBody},
        404: {"model": schemas.ErrorBody, "description": "unknown customer"},
        503: {"model": schemas.ErrorBody, "description": "no API keys configured"},
    },
    openapi_extra={"parameters": [CUSTOMER, INCLUDE_TIMESTAMPS]},
)
def get_customer(request: Request, service: ServiceDep, key: ApiKey) -> Response:
    """``customer`` is an internal id or ``ID_TYPE:ID_VALUE``. With ``include_timestamps=1``
    every property is ``{"value", "last_update"}`` (UNIX seconds, -1 when never tracked)."""
    include = include_timestamps(request.query_params.get("include_timestamps"))
    ref = CustomerRef.parse(request.path_params["customer"])
    found, version = service.reader.customer(ref)
    return _customer_response(found, version, include)


def _customer_response(customer: Customer, version: int, include: bool) -> Response:
    """The 200 of ``get_customer``, from the route and from its ASGI layer alike."""
    return json_response(
        200, render_customer(customer, include), {**NO_STORE, "X-Propsync-Version": str(version)}
    )


@router.patch(
    "/api/customers/{customer:path}",
    summary="Edit properties as the UI does",
    responses={
        200: {"description": "applied; the customer with timestamps"},
        202: {"description": "warehouse busy: journaled, visible after the next apply"},
        400: {"model": schemas.ErrorBody},
        401: {"model": schemas.ErrorBody},
        404: {"model": schemas.ErrorBody},
    },
    openapi_extra=body("CustomerEdit"),
)
async def patch_customer(
    customer: str, request: Request, service: ServiceDep, key: ApiKey
) -> Response:
    """Stamped with the server's current time and applied at once (newer wins)."""
    props = edit_properties(loads(await read_body(request, service.config.max_body_bytes)))
    status, answer = await run_in_threadpool(service.edit, customer, props, key[0])
    return json_response(status, answer, NO_STORE)


def fast_answer(service: Service) -> fastpath.Answer:
    """``get_customer``'s answer, in the event loop (``api/fastpath.py``); None when only the
    route can give it (the read model cannot answer now, or anything unexpected: the route then
    answers as it always does)."""

    async def answer(
        scope: Scope, receive: Receive, path_params: dict[str, Any]
    ) -> Response | None:
        try:
            service.check_credentials(fastpath.header(scope, b"authorization") or "")
            query = scope["query_string"]
            include = include_timestamps(
                QueryParams(query).get("include_timestamps") if query else None
            )
            found = service.reader.model_customer(CustomerRef.parse(path_params["customer"]))
        except ApiError as exc:
            return exc.response()
        except (UnknownCustomer, NotPublished) as exc:
            return json_response(404, exc.to_dict(), NO_STORE)
        except Exception:
            return None
        if found is None:
            return None
        service.fast_answers += 1
        return _customer_response(*found, include)

    return answer
