"""``propsync sql``: SQL on the latest published version, read-only, as an argument, from stdin or
at a prompt; DuckDB's refusals are one-line errors, and nothing a session runs changes the data."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from propsync import sqlshell
from propsync.cli import main
from propsync.store.warehouse import Warehouse
from tests.conftest import SEED_MAPPING, write_csv, write_json


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    """A warehouse with one customer whose update time has a fraction of a second."""
    root = tmp_path / "wh"
    source = write_csv(
        tmp_path / "c.csv",
        ["idecko", "meno", "priezvisko", "update_timestamp"],
        [["mgalik", "Marian", "Galik", "1570001049.25"]],
    )
    mapping = write_json(tmp_path / "m.json", SEED_MAPPING)
    assert main(["import", str(source), "--mapping", str(mapping), "--warehouse", str(root)]) == 0
    return root


def _sql(wh: Path, *args: str) -> int:
    return main(["sql", "--warehouse", str(wh), *args])


def test_a_query_prints_the_published_rows_in_the_format_asked(
    wh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    query = "SELECT property, value, last_update FROM customer_properties ORDER BY property"
    assert _sql(wh, "--format", "csv", query) == 0
    assert capsys.readouterr().out.splitlines() == [
        "property,value,last_update",
        'first_name,"""Marian""",1570001049.250000',
        'last_name,"""Galik""",1570001049.250000',
    ]
    assert _sql(wh, "--format", "json", "SELECT count(*) AS n FROM customers") == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]
    assert _sql(wh, "SELECT 'shown' AS answer") == 0  # the default table
    assert "shown" in capsys.readouterr().out


def test_last_update_is_exact_to_the_microsecond(wh: Path) -> None:
    with Warehouse(wh).connect_published() as con:
        rows = con.sql(
            "SELECT typeof(last_update), last_update FROM customer_properties LIMIT 1"
        ).fetchall()
    assert rows == [("DECIMAL(18,6)", Decimal("1570001049.250000"))]


def test_sql_from_stdin_runs_every_statement_and_prints_the_last(
    wh: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    script = "SELECT 1;\nSELECT customer_id AS c FROM customers;\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert _sql(wh, "--format", "jsonl") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and set(json.loads(lines[0])) == {"c"}


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("DROP VIEW customers", "read-only"),
        ("CREATE TABLE mine (a INT)", "read-only"),
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM no_such_view", "no_such_view"),
    ],
)
def test_a_refused_statement_is_one_line_and_changes_nothing(
    wh: Path, capsys: pytest.CaptureFixture[str], query: str, said: str
) -> None:
    capsys.readouterr()
    assert _sql(wh, query) == 1
    err = capsys.readouterr().err
    assert err.startswith("propsync: error: ") and said in err and "Traceback" not in err
    assert _sql(wh, "--format", "csv", "SELECT count(*) FROM customer_properties") == 0
    assert capsys.readouterr().out.splitlines()[1] == "2"


def test_the_prompt_reads_statements_over_lines_and_survives_errors(
    wh: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = iter(["SELECT count(*)", "AS n FROM customers;", "SELEC 1;", "SELECT 7 AS x;", ".quit"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(lines))
    with Warehouse(wh).connect_published() as con:
        assert sqlshell.prompt(con, "csv", 40) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1:] == ["n", "1", "x", "7"]
    assert err.startswith("error: Parser Error") and err.count("\n") >= 1
    assert next(lines, None) is None  # .quit was read last
