"""The documented tracking contract (propsync.api.schemas, as /openapi.json publishes it) and the
validator the routes run (propsync.tracking.validate_commands) agree on every case a JSON schema
can express: a command the schema accepts succeeds, one it refuses fails."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from propsync.api import schemas
from propsync.tracking import (
    MAX_ID_CHARS,
    MAX_IDS,
    MAX_NAME_CHARS,
    MAX_PROPERTIES,
    validate_commands,
)

NOW = 1_800_000_000_000_000
OK = {"customer_ids": {"registered": "a"}, "properties": {"x": 1}}

CASES: list[tuple[str, Any]] = [
    ("plain", OK),
    ("no properties", {"customer_ids": {"registered": "a"}}),
    ("an integer id", {"customer_ids": {"registered": 42}}),
    ("a timestamp in seconds", {**OK, "update_timestamp": 1_700_000_000}),
    ("an ISO timestamp", {**OK, "update_timestamp": "2024-01-01T00:00:00Z"}),
    ("a null timestamp", {**OK, "update_timestamp": None}),
    ("any JSON values", {**OK, "properties": {"a": [1, {"b": None}], "c": True, "d": "é"}}),
    ("the most ids", {"customer_ids": {f"t{i}": "v" for i in range(MAX_IDS)}}),
    ("the longest names", {"customer_ids": {"t" * MAX_ID_CHARS: "v" * MAX_ID_CHARS}}),
    ("the most properties", {**OK, "properties": {f"p{i}": i for i in range(MAX_PROPERTIES)}}),
    ("the longest property name", {**OK, "properties": {"p" * MAX_NAME_CHARS: 1}}),
    ("not an object", ["customer_ids"]),
    ("no ids", {"properties": {"x": 1}}),
    ("empty ids", {"customer_ids": {}}),
    ("ids not an object", {"customer_ids": ["registered", "a"]}),
    ("an empty id value", {"customer_ids": {"registered": ""}}),
    ("a boolean id", {"customer_ids": {"registered": True}}),
    ("a null id", {"customer_ids": {"registered": None}}),
    ("an object id", {"customer_ids": {"registered": {"v": 1}}}),
    ("an empty id type", {"customer_ids": {"": "a"}}),
    ("a colon in the id type", {"customer_ids": {"crm:id": "a"}}),
    ("too many ids", {"customer_ids": {f"t{i}": "v" for i in range(MAX_IDS + 1)}}),
    ("a long id type", {"customer_ids": {"t" * (MAX_ID_CHARS + 1): "v"}}),
    ("a long id value", {"customer_ids": {"t": "v" * (MAX_ID_CHARS + 1)}}),
    ("properties not an object", {**OK, "properties": [1]}),
    ("an empty property name", {**OK, "properties": {"": 1}}),
    ("a long property name", {**OK, "properties": {"p" * (MAX_NAME_CHARS + 1): 1}}),
    ("too many properties", {**OK, "properties": {f"p{i}": i for i in range(MAX_PROPERTIES + 1)}}),
    ("a boolean timestamp", {**OK, "update_timestamp": True}),
    ("an object timestamp", {**OK, "update_timestamp": {"s": 1}}),
    ("an unknown key", {**OK, "extra": 1}),
]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = schemas.CustomersData.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(("case", "data"), CASES, ids=[c for c, _ in CASES])
def test_the_schema_and_the_validator_give_the_same_verdict(
    validator: jsonschema.Draft202012Validator, case: str, data: Any
) -> None:
    documented = validator.is_valid(data)
    checked = validate_commands(
        [{"name": "customers", "data": data}], receive_us=NOW, max_future_skew_us=600_000_000
    )
    result = checked.results[0]
    assert result["success"] is documented, (case, result)


def test_the_cases_cover_both_verdicts() -> None:
    schema = jsonschema.Draft202012Validator(schemas.CustomersData.model_json_schema())
    verdicts = [schema.is_valid(data) for _, data in CASES]
    assert verdicts.count(True) >= 10 and verdicts.count(False) >= 15
