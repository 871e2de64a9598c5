"""``propsync demo`` (propsync.demo): the specification's story on the shipped samples, ending in
the story's final state."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from propsync.demo import STEPS, run_demo
from tests.test_cli import run


def test_demo_runs_the_specification_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = tmp_path / "demo"
    code, out, _ = run(capsys, "demo", "--warehouse", str(wh))
    assert code == 0, out
    got = json.loads(
        run(capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", str(wh))[1]
    )
    props = got["properties"]
    # 09:00 tracking beats the 08:00 snapshot and the 08:30 postponed SDK call.
    assert props["email"] == {"value": "marian@new.example", "last_update": 1569999600}
    assert props["first_name"] == {"value": "Marián", "last_update": 1569999600}
    # The snapshot replaced the legacy last name; the postponed call added app_version.
    assert props["last_name"] == {"value": "Galik", "last_update": 1569996000}
    assert props["app_version"] == {"value": "2.1.0", "last_update": 1569997800}
    assert got["ids"] == {"cookie": ["3f2a-web"], "registered": ["mgalik"]}
    # Peter's age was not a number: quarantined, his legacy name was still replaced.
    peter = json.loads(
        run(capsys, "get", "registered:pkral", "--include-timestamps", "--warehouse", str(wh))[1]
    )
    assert "age" not in peter["properties"]
    assert peter["properties"]["first_name"]["last_update"] == 1569996000


def test_run_demo_starts_over_and_leaves_the_story_in_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = tmp_path / "demo"
    wh.mkdir()
    (wh / "leftover").write_text("from an earlier demo")
    assert run_demo(wh) == 0
    assert not (wh / "leftover").exists()  # the demo starts from an empty warehouse
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("== ")] == [
        f"== {title.splitlines()[0]}" for title, _ in STEPS
    ]
    with duckdb.connect(str(wh / "propsync.duckdb"), read_only=True) as con:
        batches = con.execute("SELECT kind, status, rows_read FROM batches ORDER BY version")
        # Legacy import, 09:00 tracking, 08:00 snapshot, 08:30 postponed call.
        assert batches.fetchall() == [
            ("import", "applied", 3),
            ("track", "applied", 2),
            ("import", "applied", 5),
            ("track", "applied", 1),
        ]
        quarantine = con.execute(
            "SELECT row_nr, scope, raw_value, reason FROM rejections ORDER BY row_nr"
        ).fetchall()
        assert quarantine == [
            (3, "cell", "abc", "age: not a number"),
            (5, "row", None, "no customer id"),
        ]
        ids = con.execute("SELECT id_type, id_value FROM customer_ids ORDER BY 1, 2").fetchall()
    assert ids == [
        ("cookie", "3f2a-web"),
        ("registered", "ebartos"),
        ("registered", "jnovak"),
        ("registered", "mgalik"),
        ("registered", "pkral"),
    ]


def test_the_query_the_demo_suggests_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = tmp_path / "demo"
    code, out, _ = run(capsys, "demo", "--warehouse", str(wh))
    assert code == 0, out
    suggested = next(line for line in out.splitlines() if "propsync sql" in line and '"' in line)
    query = suggested.split('"')[1]
    code, rows, err = run(capsys, "sql", "--warehouse", str(wh), "--format", "csv", query)
    assert code == 0, err
    assert rows.splitlines()[0].startswith("customer_id,property,value,last_update")
    assert len(rows.splitlines()) > 10
