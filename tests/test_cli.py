"""The ``propsync`` CLI contract, end to end on real files and a real warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from propsync.cli import main
from tests.conftest import SEED_MAPPING, write_csv, write_json

EIGHT, NINE = "2019-10-02T08:00:00Z", 1570006800  # 2019-10-02 09:00:00 UTC


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wh(tmp_path: Path) -> str:
    return str(tmp_path / "wh")


def test_seed_example_snapshot_at_8_imported_at_10_keeps_tracking_from_9(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 09:00 real-time tracking updates first_name.
    body = {
        "commands": [
            {
                "name": "customers",
                "data": {
                    "customer_ids": {"registered": "mgalik"},
                    "properties": {"first_name": "Marian (from tracking)"},
                    "update_timestamp": NINE,
                },
            }
        ]
    }
    code, out, _ = run(
        capsys, "track", str(write_json(tmp_path / "b.json", body)), "--warehouse", wh
    )
    assert code == 0 and json.loads(out)["results"] == [{"success": True}]
    # The 08:00 snapshot finishes importing at 10:00; its mapping has no update_timestamp.
    mapping = {k: v for k, v in SEED_MAPPING.items() if k != "update_timestamp"}
    snapshot = write_csv(
        tmp_path / "s.csv",
        ["idecko", "meno", "priezvisko"],
        [["mgalik", "Marian (stale)", "Galik"]],
    )
    code, out, _ = run(
        capsys,
        "import",
        str(snapshot),
        "--mapping",
        str(write_json(tmp_path / "m.json", mapping)),
        "--started-at",
        EIGHT,
        "--json",
        "--warehouse",
        wh,
    )
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert (summary["properties_applied"], summary["properties_stale"]) == (1, 1)
    code, out, _ = run(
        capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", wh
    )
    assert json.loads(out)["properties"] == {
        "first_name": {"value": "Marian (from tracking)", "last_update": NINE},
        "last_name": {"value": "Galik", "last_update": NINE - 3600},
    }


def test_get_prints_the_seed_formats_exactly(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy_map = {k: v for k, v in SEED_MAPPING.items() if k != "update_timestamp"}
    legacy_map["properties"] = [SEED_MAPPING["properties"][1]]
    src = write_csv(tmp_path / "legacy.csv", ["idecko", "priezvisko"], [["mgalik", "Galik"]])
    assert (
        run(
            capsys,
            "import",
            str(src),
            "--mapping",
            str(write_json(tmp_path / "l.json", legacy_map)),
            "--legacy",
            "--warehouse",
            wh,
        )[0]
        == 0
    )
    body = {
        "commands": [
            {
                "name": "customers",
                "data": {
                    "customer_ids": {"registered": "mgalik"},
                    "properties": {"first_name": "Marian"},
                    "update_timestamp": 1570001049,
                },
            }
        ]
    }
    run(capsys, "track", str(write_json(tmp_path / "t.json", body)), "--warehouse", wh)

    code, out, _ = run(
        capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", wh
    )
    assert code == 0
    assert out.startswith(
        '{"properties": {"first_name": {"value": "Marian", "last_update": 1570001049}, '
        '"last_name": {"value": "Galik", "last_update": -1}}'
    )
    code, out, _ = run(capsys, "get", "registered:mgalik", "--warehouse", wh)
    assert out.startswith('{"properties": {"first_name": "Marian", "last_name": "Galik"}')
    assert json.loads(out)["ids"] == {"registered": ["mgalik"]}
    # Internal ids resolve too.
    internal = json.loads(out)["customer_id"]
    assert ":" not in internal
    assert (
        json.loads(run(capsys, "get", internal, "--warehouse", wh)[1])["properties"]["last_name"]
        == "Galik"
    )


def test_fractional_timestamps_print_as_decimals(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "commands": [
            {
                "name": "customers",
                "data": {
                    "customer_ids": {"registered": "x"},
                    "properties": {"p": 1},
                    "update_timestamp": "1570001049.25",
                },
            }
        ]
    }
    run(capsys, "track", str(write_json(tmp_path / "t.json", body)), "--warehouse", wh)
    out = run(capsys, "get", "registered:x", "--include-timestamps", "--warehouse", wh)[1]
    assert out.startswith('{"properties": {"p": {"value": 1, "last_update": 1570001049.25}}')


def test_unknown_customer_exits_non_zero_with_a_message(
    wh: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "commands": [
            {"name": "customers", "data": {"customer_ids": {"registered": "x"}, "properties": {}}}
        ]
    }
    run(capsys, "track", str(write_json(tmp_path / "t.json", body)), "--warehouse", wh)
    code, out, err = run(capsys, "get", "registered:nobody", "--warehouse", wh)
    assert code == 3 and out == "" and "no customer 'registered:nobody'" in err


def test_track_reports_each_command_in_order(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "commands": [
            {"name": "system/time"},
            {"name": "system/cookie", "command_id": "c-1"},
            {
                "name": "customers",
                "data": {
                    "customer_ids": {"registered": "mgalik"},
                    "properties": {"first_name": "Marian", "last_name": "Galik"},
                    "update_timestamp": 1570001049,
                },
            },
            {"name": "customers", "data": {"properties": {"x": 1}}},
            {"name": "nonsense"},
            {
                "name": "customers",
                "data": {"customer_ids": {"registered": "mgalik"}, "properties": {"seen": True}},
            },
        ]
    }
    code, out, _ = run(
        capsys, "track", str(write_json(tmp_path / "b.json", body)), "--warehouse", wh
    )
    response = json.loads(out)
    assert code == 0 and response["success"] is True
    assert response["start_time"] <= response["end_time"]
    r = response["results"]
    assert len(r) == 6
    assert r[0]["success"] is True and abs(r[0]["time"] - response["start_time"]) < 1
    assert r[1]["success"] is True and r[1]["command_id"] == "c-1" and len(r[1]["cookie"]) == 36
    assert r[2] == {"success": True}
    assert r[3]["success"] is False and "customer_ids" in r[3]["errors"][0]
    assert r[4] == {"success": False, "errors": ["unknown command 'nonsense'"]}
    assert r[5] == {"success": True}
    got = json.loads(
        run(capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", wh)[1]
    )
    # Without update_timestamp a command is stamped with the receive time.
    assert got["properties"]["seen"]["last_update"] == pytest.approx(
        response["start_time"], abs=1e-6
    )
    assert got["properties"]["first_name"] == {"value": "Marian", "last_update": 1570001049}


def test_set_stamps_edits_with_now(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "set",
        "registered:m",
        "first_name=Marian",
        "age:=33",
        'tags:=["a"]',
        "--warehouse",
        wh,
    )
    assert code == 0, out
    got = json.loads(
        run(capsys, "get", "registered:m", "--include-timestamps", "--warehouse", wh)[1]
    )
    assert {k: v["value"] for k, v in got["properties"].items()} == {
        "first_name": "Marian",
        "age": 33,
        "tags": ["a"],
    }
    import time

    assert abs(got["properties"]["age"]["last_update"] - time.time()) < 60
    internal = got["customer_id"]
    assert run(capsys, "set", internal, "first_name=Majo", "--warehouse", wh)[0] == 0
    got = json.loads(run(capsys, "get", "registered:m", "--warehouse", wh)[1])
    assert got["properties"]["first_name"] == "Majo"


def test_import_json_summary_and_exit_codes(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = write_json(tmp_path / "m.json", SEED_MAPPING)
    rows = [[f"u{i}", "A", "B", "1570001049"] for i in range(40)] + [
        ["u40", "A", "B", "not a time"]
    ]
    src = write_csv(tmp_path / "s.csv", ["idecko", "meno", "priezvisko", "update_timestamp"], rows)
    code, out, err = run(
        capsys, "import", str(src), "--mapping", str(mapping), "--json", "--warehouse", wh
    )
    assert code == 0
    assert "unparseable update_timestamp" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary == {
        "batch_id": summary["batch_id"],
        "rows_read": 41,
        "properties_applied": 80,
        "properties_stale": 0,
        "rows_rejected": 1,
        "rows_with_cells_rejected": 0,
        "rows_with_rejections": 1,
        "cells_rejected": 2,
        "published_version": 1,
        "already_applied": False,
    }
    # Same file again: a no-op, and the summary says what this run did (nothing).
    code, out, err = run(
        capsys, "import", str(src), "--mapping", str(mapping), "--json", "--warehouse", wh
    )
    assert code == 0 and "already applied" in err
    assert json.loads(out.strip().splitlines()[-1]) == {
        "batch_id": summary["batch_id"],
        "rows_read": 41,
        "properties_applied": 0,
        "properties_stale": 0,
        "rows_rejected": 0,
        "rows_with_cells_rejected": 0,
        "rows_with_rejections": 0,
        "cells_rejected": 0,
        "published_version": 1,
        "already_applied": True,
    }

    # Too many rejected rows: exit 1, nothing published.
    bad = write_csv(
        tmp_path / "bad.csv",
        ["idecko", "meno", "priezvisko", "update_timestamp"],
        [["u1", "Z", "Z", "garbage"], ["u2", "Z", "Z", "1570001050"]],
    )
    code, out, _ = run(
        capsys, "import", str(bad), "--mapping", str(mapping), "--json", "--warehouse", wh
    )
    assert code == 1
    assert json.loads(out.strip().splitlines()[-1])["published_version"] is None
    got = json.loads(run(capsys, "get", "registered:u2", "--warehouse", wh)[1])
    assert got["properties"] == {"first_name": "A", "last_name": "B"}


@pytest.mark.parametrize(
    ("mapping", "field", "value"),
    [
        ({**SEED_MAPPING, "extra": 1}, "extra", "1"),
        ({**SEED_MAPPING, "timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({**SEED_MAPPING, "ids": []}, "ids", "[]"),
        (
            {
                **SEED_MAPPING,
                "properties": [{"from_column": "meno", "to_property": "a", "type": "money"}],
            },
            "properties[0].type",
            "money",
        ),
        (
            {
                **SEED_MAPPING,
                "properties": [
                    {"from_column": "meno", "to_property": "a"},
                    {"from_column": "priezvisko", "to_property": "a"},
                ],
            },
            "properties",
            "duplicate to_property 'a'",
        ),
        (
            {**SEED_MAPPING, "ids": [{"from_column": "nope", "to_id": "registered"}]},
            "ids[0].from_column",
            "nope",
        ),
    ],
)
def test_mapping_errors_exit_2_naming_the_field_and_write_nothing(
    tmp_path: Path,
    wh: str,
    capsys: pytest.CaptureFixture[str],
    mapping: dict[str, object],
    field: str,
    value: str,
) -> None:
    src = write_csv(
        tmp_path / "s.csv",
        ["idecko", "meno", "priezvisko", "update_timestamp"],
        [["a", "b", "c", "1"]],
    )
    code, _, err = run(
        capsys,
        "import",
        str(src),
        "--mapping",
        str(write_json(tmp_path / "m.json", mapping)),
        "--warehouse",
        wh,
    )
    assert code == 2
    assert field in err and value in err
    assert not Path(wh).exists()


def test_entry_point_runs_as_a_real_process(tmp_path: Path) -> None:
    mapping = write_json(tmp_path / "m.json", SEED_MAPPING)
    src = write_csv(
        tmp_path / "s.csv",
        ["idecko", "meno", "priezvisko", "update_timestamp"],
        [["mgalik", "Marian", "Galik", "2019-10-02 07:24:09"]],
    )
    env = {**os.environ, "PROPSYNC_WAREHOUSE": str(tmp_path / "wh")}
    exe = Path(sys.executable).with_name("propsync")
    done = subprocess.run(
        [exe, "import", src, "--mapping", mapping, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["properties_applied"] == 2
    done = subprocess.run(
        [exe, "get", "registered:mgalik", "--include-timestamps"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(done.stdout)["properties"]["first_name"] == {
        "value": "Marian",
        "last_update": 1570001049,
    }


def test_missing_source_and_bad_tracking_body_are_usage_errors(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = write_json(tmp_path / "m.json", SEED_MAPPING)
    code, _, err = run(
        capsys, "import", str(tmp_path / "none.csv"), "--mapping", str(mapping), "--warehouse", wh
    )
    assert code == 2 and "does not exist" in err
    (tmp_path / "b.json").write_text("{not json", encoding="utf-8")
    code, _, err = run(capsys, "track", str(tmp_path / "b.json"), "--warehouse", wh)
    assert code == 2 and "not valid JSON" in err
    code, _, err = run(
        capsys, "track", str(write_json(tmp_path / "c.json", {"cmds": []})), "--warehouse", wh
    )
    assert code == 2 and '"commands"' in err
    assert not Path(wh).exists()


def test_import_draws_a_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    import pty

    mapping = write_json(tmp_path / "m.json", SEED_MAPPING)
    src = write_csv(
        tmp_path / "s.csv",
        ["idecko", "meno", "priezvisko", "update_timestamp"],
        [[f"u{i}", "A", "B", "1570001049"] for i in range(100)],
    )
    exe = Path(sys.executable).with_name("propsync")
    env = {**os.environ, "PROPSYNC_WAREHOUSE": str(tmp_path / "wh")}
    controller, terminal = pty.openpty()
    done = subprocess.run(
        [exe, "import", src, "--mapping", mapping],
        env=env,
        stdout=subprocess.PIPE,
        stderr=terminal,
        check=False,
        timeout=120,
    )
    os.close(terminal)
    drawn = os.read(controller, 65536).decode()
    os.close(controller)
    assert done.returncode == 0
    assert "100% done" in drawn and "[##############################]" in drawn
    # Not a terminal: no progress bar.
    done = subprocess.run(
        [exe, "import", src, "--mapping", mapping, "--batch-id", "again"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0 and "#" not in done.stderr


def test_track_rejects_a_lone_surrogate_per_command(
    tmp_path: Path, wh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '{"commands": [{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"p": "\\ud800"}}}, {"name": "system/time"}]}'
    (tmp_path / "b.json").write_text(body, encoding="utf-8")
    code, out, _ = run(capsys, "track", str(tmp_path / "b.json"), "--warehouse", wh)
    results = json.loads(out)["results"]
    assert code == 0 and results[0]["success"] is False and "Unicode" in results[0]["errors"][0]
    assert results[1]["success"] is True


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``propsync ARGS`` as a real process on the warehouse ``tmp_path/wh``."""
    exe = Path(sys.executable).with_name("propsync")
    env = {**os.environ, "PROPSYNC_WAREHOUSE": str(tmp_path / "wh")}
    return subprocess.run(
        [exe, *args],
        env=env,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        check=False,
        timeout=120,
    )


def test_track_lone_surrogates_in_ids_and_property_names_fail_only_their_command(
    tmp_path: Path,
) -> None:
    # JSON escapes of lone surrogates: not Unicode, so Polars and DuckDB cannot hold them.
    body = (
        '{"commands": ['
        '{"name": "customers", "data": {"customer_ids": {"registered": "\\ud800"}, "properties": {"p": 1}}}, '
        '{"name": "customers", "data": {"customer_ids": {"\\udc00": "a"}, "properties": {"p": 1}}}, '
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"\\ud800": 1, "q": 2}}}, '
        '{"name": "customers", "data": {"customer_ids": {"registered": "b"}, "properties": {"p": "ok"}}, "command_id": 7}, '
        '{"name": "system/time"}]}'
    )
    (tmp_path / "b.json").write_text(body, encoding="utf-8")
    done = _cli(tmp_path, "track", str(tmp_path / "b.json"))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = json.loads(done.stdout)["results"]
    assert [r["success"] for r in results] == [False, False, False, True, True]
    assert results[0]["errors"] == [
        "customer_ids.registered value '\\ud800' is not valid Unicode text: it contains a lone surrogate"
    ]
    assert results[1]["errors"] == [
        "customer id type '\\udc00' is not valid Unicode text: it contains a lone surrogate"
    ]
    assert results[2]["errors"] == [
        "property name '\\ud800' is not valid Unicode text: it contains a lone surrogate"
    ]
    assert results[3] == {"success": True, "command_id": 7}
    got = _cli(tmp_path, "get", "registered:b")
    assert got.returncode == 0 and json.loads(got.stdout)["properties"] == {"p": "ok"}
    # The failed commands wrote nothing: customer "a" does not exist.
    assert _cli(tmp_path, "get", "registered:a").returncode == 3


def test_set_and_get_with_text_that_is_not_unicode_are_usage_errors(tmp_path: Path) -> None:
    # Bytes that are not UTF-8 in argv reach Python as lone surrogates ("\udcff").
    cases = [
        (("set", "registered:x", "\udcff=1"), "property name '\\udcff' is not valid Unicode text"),
        (
            ("set", "registered:\udcff", "a=1"),
            "customer 'registered:\\udcff' is not valid Unicode text",
        ),
        (("set", "c\udcff", "a=1"), "customer 'c\\udcff' is not valid Unicode text"),
        (("get", "registered:\udcff"), "customer 'registered:\\udcff' is not valid Unicode text"),
    ]
    for args, message in cases:
        done = _cli(tmp_path, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and message in done.stderr, (args, done.stderr)
    (tmp_path / "b.json").write_bytes(b'{"commands": [\xff]}')
    done = _cli(tmp_path, "track", str(tmp_path / "b.json"))
    assert done.returncode == 2 and "is not UTF-8 text" in done.stderr, done.stderr
    assert not (tmp_path / "wh").exists()  # nothing was written
