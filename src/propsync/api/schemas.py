"""Request and response shapes, for the OpenAPI documentation at ``/docs``.

The routes validate bodies with the core (``propsync.tracking.validate_commands``: plain Python,
errors per command); these models describe the same contract, with the core's limits, and
``tests/api/test_schemas.py`` holds the two to the same verdict on every case a JSON schema can
express (not: lone surrogates, a value's size as canonical JSON, a timestamp's text or range).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from propsync.tracking import (
    MAX_COMMANDS,
    MAX_ID_CHARS,
    MAX_IDS,
    MAX_NAME_CHARS,
    MAX_PROPERTIES,
    MAX_VALUE_BYTES,
)

IdValue = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)] | int
PropertyName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


class CustomersData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: dict[str, IdValue] = Field(
        min_length=1,
        max_length=MAX_IDS,
        # Id types: non-empty, no ":" (the CLI and GET split "ID_TYPE:ID_VALUE" at the first).
        json_schema_extra={
            "propertyNames": {"minLength": 1, "maxLength": MAX_ID_CHARS, "pattern": "^[^:]*$"}
        },
        description='id type (no ":") to id value (text, or a whole number taken as its text), '
        'e.g. {"registered": "mgalik"}; at least one',
    )
    properties: dict[PropertyName, Any] = Field(
        default_factory=dict,
        max_length=MAX_PROPERTIES,
        description=f"property name to JSON value, each at most {MAX_VALUE_BYTES // 1024} KB as "
        "canonical JSON",
    )
    update_timestamp: float | str | None = Field(
        default=None,
        description="when the properties were true: UNIX seconds (or ISO 8601); applies to every "
        "property of the command. Without it, the server's receive time. An older timestamp than "
        "the stored one does not overwrite (postponed tracking).",
    )


class TrackingCommand(BaseModel):
    name: Literal["customers", "system/time", "system/cookie"]
    data: CustomersData | None = Field(default=None, description="only for customers")
    command_id: Any = Field(default=None, description="optional; echoed back in the result")


class TrackingBatchBody(BaseModel):
    commands: list[TrackingCommand] = Field(
        description=f"at most max_commands (default {MAX_COMMANDS}); each answered on its own"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "commands": [
                        {"name": "system/time"},
                        {"name": "system/cookie"},
                        {
                            "name": "customers",
                            "command_id": "c1",
                            "data": {
                                "customer_ids": {"registered": "mgalik"},
                                "properties": {"first_name": "Marian", "last_name": "Galik"},
                                "update_timestamp": 1570001049,
                            },
                        },
                    ]
                }
            ]
        }
    }


class CommandResult(BaseModel):
    success: bool
    errors: list[str] | None = None
    time: float | None = Field(default=None, description="system/time: UNIX seconds")
    cookie: str | None = Field(default=None, description="system/cookie: a new anonymous id")
    command_id: Any = None


class TrackingResponse(BaseModel):
    start_time: float
    end_time: float
    success: bool
    results: list[CommandResult]


class CustomerEdit(BaseModel):
    properties: dict[str, Any] = Field(description="property name to new JSON value; at least one")


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[str] | None = None


CUSTOMER_EXAMPLE_PLAIN = {
    "properties": {"first_name": "Marian", "last_name": "Galik"},
    "ids": {"registered": ["mgalik"]},
    "customer_id": "5c2b0d0b8c3e4f0e8e1b3a7d2f6c9e10",
}
CUSTOMER_EXAMPLE_TIMESTAMPS = {
    "properties": {
        "first_name": {"value": "Marian", "last_update": 1570001049},
        "last_name": {"value": "Galik", "last_update": -1},
    },
    "ids": {"registered": ["mgalik"]},
    "customer_id": "5c2b0d0b8c3e4f0e8e1b3a7d2f6c9e10",
}
