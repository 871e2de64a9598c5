"""The OpenAPI document (propsync.api.openapi): the parameters the fast routes read themselves,
request bodies by reference to the request models, generated once per app."""

from __future__ import annotations

from pathlib import Path

import httpx

from propsync.api import openapi, schemas
from tests.api.conftest import service_app


def test_a_parameter_is_a_string_and_required_in_the_path() -> None:
    assert openapi.parameter("customer", "path", "who") == {
        "name": "customer",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "who",
    }
    assert openapi.INCLUDE_TIMESTAMPS["required"] is False
    assert openapi.INCLUDE_TIMESTAMPS["schema"] == {
        "type": "string",
        "enum": ["0", "1"],
        "default": "0",
    }


def test_the_request_models_and_their_parts_are_components() -> None:
    components = openapi.component_schemas()
    assert {"TrackingBatchBody", "CustomersData", "CustomerEdit", "TrackingCommand"} <= set(
        components
    )
    assert components["TrackingBatchBody"] == {
        k: v
        for k, v in schemas.TrackingBatchBody.model_json_schema(
            ref_template="#/components/schemas/{model}"
        ).items()
        if k != "$defs"
    }
    # Every reference resolves to a component.
    refs = _refs(components)
    assert refs and all(r.removeprefix("#/components/schemas/") in components for r in refs)


def _refs(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_the_document_is_generated_once_with_the_bodies_and_parameters(tmp_path: Path) -> None:
    app = service_app(tmp_path / "wh")
    spec = app.openapi()
    assert app.openapi() is spec
    batch = spec["paths"]["/track/v2/projects/{project_token}/batch"]["post"]
    assert batch["requestBody"] == openapi.body("TrackingBatchBody")["requestBody"]
    assert openapi.PROJECT_TOKEN in batch["parameters"]
    get = spec["paths"]["/api/customers/{customer}"]["get"]
    assert openapi.CUSTOMER in get["parameters"] and openapi.INCLUDE_TIMESTAMPS in get["parameters"]
    assert set(openapi.component_schemas()) <= set(spec["components"]["schemas"])
    assert all(
        r.removeprefix("#/components/schemas/") in spec["components"]["schemas"]
        for r in _refs(spec["paths"])
    )


def test_the_served_document_and_the_docs_page(app_url: str) -> None:
    spec = httpx.get(f"{app_url}/openapi.json").json()
    assert spec["info"]["title"] == "propsync"
    docs = httpx.get(f"{app_url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
