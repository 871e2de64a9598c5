"""The OpenAPI document: parameters the fast routes read themselves, request bodies by schema,
and the request models of ``schemas`` as components."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from propsync.api import schemas


def parameter(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    """An OpenAPI parameter of type string (path parameters are required)."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": "string", **schema},
        "description": description,
    }


PROJECT_TOKEN = parameter("project_token", "path", "a configured project token")
CUSTOMER = parameter(
    "customer", "path", "an internal id or ID_TYPE:ID_VALUE (percent-encode / ? # and spaces)"
)
INCLUDE_TIMESTAMPS = parameter(
    "include_timestamps",
    "query",
    "1: every property as {value, last_update}",
    enum=["0", "1"],
    default="0",
)


def body(model: str) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is ``schemas.<model>``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


def component_schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in (schemas.TrackingBatchBody, schemas.CustomersData, schemas.CustomerEdit):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def install(app: FastAPI) -> None:
    """Generate ``app``'s document once, with the component schemas the bodies refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                component_schemas()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
