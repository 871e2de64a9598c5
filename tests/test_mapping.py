"""The mapping model of an import (propsync.mapping): every error names its field and value and is
raised before any data is read; the columns a mapping reads are checked against the source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from propsync.errors import MappingError, SourceError
from propsync.mapping import load_mapping, parse_mapping
from tests.conftest import SEED_MAPPING

BASE: dict[str, Any] = {
    "ids": [{"from_column": "id", "to_id": "registered"}],
    "properties": [{"from_column": "n", "to_property": "name"}],
}


def test_the_seed_mapping_parses_with_its_defaults() -> None:
    m = parse_mapping(SEED_MAPPING)
    assert [(p.from_column, p.to_property, p.type) for p in m.properties] == [
        ("meno", "first_name", "string"),
        ("priezvisko", "last_name", "string"),
    ]
    assert parse_mapping(BASE).timezone == "UTC"
    assert parse_mapping(BASE).properties[0].type == "string"
    assert parse_mapping(BASE).update_timestamp is None


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"ids": []}, "ids", "List should have at least 1 item"),
        ({"extra": 1}, "extra", "unknown key"),
        (
            {"ids": [{"from_column": "id", "to_id": "a:b"}]},
            "ids",
            "to_id 'a:b' must not contain ':'",
        ),
        ({"properties": BASE["properties"] * 2}, "properties", "duplicate to_property 'name'"),
        (
            {"constant_columns": [{"name": "c", "value": 1}, {"name": "c", "value": 2}]},
            "constant_columns",
            "duplicate name 'c'",
        ),
        ({"timezone": "Mars/Base"}, "timezone", "unknown IANA timezone 'Mars/Base'"),
        # zoneinfo reads local files such as "localtime"; the timestamp parser would not.
        ({"timezone": "localtime"}, "timezone", "unknown IANA timezone 'localtime'"),
        (
            {"properties": [{"from_column": "n", "to_property": "x", "type": "money"}]},
            "properties[0].type",
            "Input should be 'string'",
        ),
        (
            {"properties": [{"from_column": "", "to_property": "x"}]},
            "properties[0].from_column",
            "at least 1 character",
        ),
    ],
)
def test_an_invalid_mapping_names_the_field_and_the_value(
    change: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(MappingError) as info:
        parse_mapping({**BASE, **change})
    assert info.value.field == field
    assert info.value.message.startswith(f"invalid mapping at {field}: ")
    assert says in info.value.message
    assert f"(got {json.dumps(info.value.value)})" in info.value.message  # the value, shown


def test_a_mapping_that_is_not_an_object_is_named_as_the_root() -> None:
    with pytest.raises(MappingError) as info:
        parse_mapping([1])
    assert info.value.field == "<root>"


def test_the_columns_a_mapping_reads_are_checked_against_the_source() -> None:
    m = parse_mapping(
        {
            **BASE,
            "update_timestamp": {"from_column": "ts"},
            "constant_columns": [{"name": "src", "value": "crm"}],
        }
    )
    assert m.referenced_columns() == [
        ("properties[0].from_column", "n"),
        ("ids[0].from_column", "id"),
        ("update_timestamp.from_column", "ts"),
    ]
    m.check_columns(["id", "n", "ts"])
    with pytest.raises(MappingError) as missing:
        m.check_columns(["n", "id"])
    assert (missing.value.field, missing.value.value) == ("update_timestamp.from_column", "ts")
    assert "column 'ts' is not in the source (columns: id, n) nor a constant" in str(missing.value)
    with pytest.raises(MappingError) as shadow:
        m.check_columns(["id", "n", "ts", "src"])
    assert shadow.value.field == "constant_columns[0].name"
    assert "'src' shadows a column of the source" in str(shadow.value)
    # A constant column stands in for a column the source lacks.
    parse_mapping({**BASE, "constant_columns": [{"name": "n", "value": "x"}]}).check_columns(["id"])


def test_a_mapping_file_that_cannot_be_read_or_parsed(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read mapping file"):
        load_mapping(tmp_path / "missing.json")
    cases = {
        b"\xff{}": "is not UTF-8 text (byte 1)",
        b'{"ids": [}': "is not valid JSON: Expecting value at line 1",
        b'{"ids": NaN}': "is not valid JSON",
        b"[" * 100_000: "is not a mapping",
    }
    for raw, says in cases.items():
        path = tmp_path / "mapping.json"
        path.write_bytes(raw)
        with pytest.raises(MappingError, match="mapping file") as info:
            load_mapping(path)
        assert says in info.value.message and info.value.field == "<file>"
    path.write_text(json.dumps(BASE), encoding="utf-8")
    assert load_mapping(path) == parse_mapping(BASE)
