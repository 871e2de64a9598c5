"""Issue #13, "a new user's first hour": the CLI as a user meets it, in real processes on real
warehouses (pipes, closed outputs, missing directories, the import summary's counts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SEED_MAPPING, write_csv, write_json

EXE = Path(sys.executable).with_name("propsync")
JSON_LOAD = "import json, sys; print(sorted(json.load(sys.stdin)))"


def propsync(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def piped(args: list[str | Path], consumer: list[str]) -> tuple[int, str, int, str]:
    """``propsync ARGS | CONSUMER``: (propsync's status, its stderr, the consumer's, its stdout)."""
    producer = subprocess.Popen(
        [EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert producer.stdout is not None and producer.stderr is not None
    reader = subprocess.run(
        consumer, stdin=producer.stdout, capture_output=True, text=True, check=False, timeout=120
    )
    producer.stdout.close()
    err = producer.stderr.read()
    return producer.wait(timeout=120), err, reader.returncode, reader.stdout


def seed_snapshot(tmp_path: Path, rows: list[list[str]]) -> tuple[Path, Path]:
    """A CSV of the seed mapping's columns, and the mapping."""
    header = ["idecko", "meno", "priezvisko", "update_timestamp"]
    return write_csv(tmp_path / "s.csv", header, rows), write_json(
        tmp_path / "m.json", SEED_MAPPING
    )


# -- 1. --json: stdout is one JSON document --------------------------------------------------


def test_import_json_stdout_parses_as_one_document_and_the_text_goes_to_stderr(
    tmp_path: Path,
) -> None:
    src, mapping = seed_snapshot(tmp_path, [["a", "A", "B", "1570001049"]])
    args: list[str | Path] = [src, "--mapping", mapping, "--json", "--warehouse", tmp_path / "wh"]
    code, err, parsed, keys = piped(["import", *args], [sys.executable, "-c", JSON_LOAD])
    assert (code, parsed) == (0, 0), err
    assert "rows_read" in keys and "already_applied" in keys
    assert f"imported {src} as batch" in err
    # The same file again: skipped, still JSON alone on stdout.
    again = propsync("import", *args)
    assert json.loads(again.stdout)["already_applied"] is True
    assert "batch already applied" in again.stderr


def test_import_json_of_a_failed_batch_is_json_alone_too(tmp_path: Path) -> None:
    src, mapping = seed_snapshot(
        tmp_path, [["a", "A", "B", "garbage"], ["b", "A", "B", "1570001049"]]
    )
    done = propsync("import", src, "--mapping", mapping, "--json", "--warehouse", tmp_path / "wh")
    assert done.returncode == 1
    assert json.loads(done.stdout)["published_version"] is None
    assert "FAILED" in done.stderr and "max_reject_ratio" in done.stderr


def test_apply_json_stdout_is_json_alone(tmp_path: Path) -> None:
    done = propsync("apply", "--json", "--warehouse", tmp_path / "wh")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["commands_applied"] == 0


# -- 2. a closed stdout: no traceback --------------------------------------------------------


def closed_stdout(*args: str | Path, buffered: bool = True) -> subprocess.CompletedProcess[str]:
    """``propsync ARGS`` writing into a pipe whose reader is already gone (EPIPE on any write);
    stdout buffered as Python has it by default, or not (``PYTHONUNBUFFERED``, as under CI)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [EXE, *args],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write_end)


def assert_quiet_broken_pipe(done: subprocess.CompletedProcess[str]) -> None:
    err = done.stderr
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert done.returncode == 141, err  # 128 + SIGPIPE, as a shell reports `yes | head -1`'s yes


def test_get_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    # 150 properties of 15,000 characters: far more than a pipe holds (16 KB per property at most)
    props = {f"p{i}": "x" * 15_000 for i in range(150)}
    command = {"name": "customers", "data": {"customer_ids": {"registered": "big"}}}
    command["data"]["properties"] = props
    body = write_json(tmp_path / "b.json", {"commands": [command]})
    wh = tmp_path / "wh"
    assert json.loads(propsync("track", body, "--warehouse", wh).stdout)["success"] is True
    code, err, head, out = piped(["get", "registered:big", "--warehouse", wh], ["head", "-c", "1"])
    assert (head, out) == (0, "{")
    assert_quiet_broken_pipe(subprocess.CompletedProcess([], code, "", err))


def test_every_command_ends_quietly_when_stdout_is_closed(tmp_path: Path) -> None:
    src, mapping = seed_snapshot(tmp_path, [["a", "A", "B", "1570001049"]])
    wh = tmp_path / "wh"
    assert_quiet_broken_pipe(closed_stdout("import", src, "--mapping", mapping, "--warehouse", wh))
    assert propsync("get", "registered:a", "--warehouse", wh).returncode == 0  # it was imported
    for buffered in (True, False):
        for args in (
            ("get", "registered:a", "--warehouse", wh),
            ("import", src, "--mapping", mapping, "--json", "--warehouse", wh),
            ("publish", "--warehouse", wh),
        ):
            assert_quiet_broken_pipe(closed_stdout(*args, buffered=buffered))
    # argparse's own output (unbuffered, argparse drops the error itself and exits 0)
    for args in (("--version",), ("--help",), ("get", "--help")):
        assert_quiet_broken_pipe(closed_stdout(*args))


# -- 4. a warehouse path that does not exist -------------------------------------------------


def test_readers_of_a_missing_warehouse_directory_say_it_does_not_exist(tmp_path: Path) -> None:
    wh = tmp_path / "typo"
    missing = (
        f"warehouse directory {str(wh)!r} does not exist (--warehouse or PROPSYNC_WAREHOUSE; "
        "the first write, e.g. propsync import, creates it)"
    )
    for args in (("get", "registered:a"), ("set", "c0ffee", "p=1")):  # set by internal id reads
        done = propsync(*args, "--warehouse", wh)
        assert (done.returncode, done.stderr) == (3, f"propsync: error: {missing}\n")
    done = propsync("get", "registered:a", env={"PROPSYNC_WAREHOUSE": str(wh)})
    assert (done.returncode, done.stderr) == (3, f"propsync: error: {missing}\n")
    done = propsync("compact", "--warehouse", wh)
    assert (done.returncode, done.stderr) == (0, f"propsync: compaction skipped: {missing}\n")
    assert not wh.exists()
    # A directory that exists but holds no published version yet: that is what is said.
    wh.mkdir()
    done = propsync("get", "registered:a", "--warehouse", wh)
    assert (done.returncode, done.stderr) == (
        3,
        f"propsync: error: warehouse {str(wh)!r} has no published version yet: "
        "import something first\n",
    )
    # Writers create the directory, as before.
    src, mapping = seed_snapshot(tmp_path, [["a", "A", "B", "1570001049"]])
    assert (
        propsync("import", src, "--mapping", mapping, "--warehouse", tmp_path / "new").returncode
        == 0
    )


# -- 3. the import summary's counts: one definition each, the same everywhere ------------------

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "propsync" / "samples"
REJECTION_COUNTS = (
    "rows_rejected",
    "rows_with_cells_rejected",
    "rows_with_rejections",
    "cells_rejected",
)


def text_counts(summary: str) -> dict[str, int]:
    """The counts of a text summary, by their label with underscores: ``rows_rejected``..."""
    counts = {}
    for line in summary.splitlines():
        label, _, rest = line.strip().partition("  ")
        value = rest.strip().split("  ")[0].replace(",", "")
        if line.startswith("  ") and value.isdigit():
            counts[label.replace(" ", "_")] = int(value)
    return counts


def published_batch(wh: Path, batch_id: str) -> dict[str, object]:
    import duckdb

    with duckdb.connect(str(wh / "propsync.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT * FROM batches WHERE batch_id = $b", {"b": batch_id})
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        assert row is not None
        scopes = con.execute(
            "SELECT scope, count(*) FROM rejections WHERE batch_id = $b GROUP BY ALL ORDER BY 1",
            {"b": batch_id},
        ).fetchall()
    return {**dict(zip(names, row, strict=True)), "scopes": scopes}


def test_the_demo_summary_agrees_with_its_batches_and_rejections_tables(tmp_path: Path) -> None:
    wh = tmp_path / "demo"
    demo = propsync("demo", "--warehouse", wh)
    assert demo.returncode == 0, demo.stderr
    # The CRM snapshot: row 5 has no id (rejected whole), row 3's age is not a number (that cell).
    block = demo.stdout.split(f"imported {SAMPLES / 'crm_snapshot_0800.csv'} as batch ")[1]
    batch_id, summary = block.split("\n", 1)
    counts = text_counts(summary.split("\n\n")[0])
    expected = {
        "rows_read": 5,
        "rows_rejected": 1,
        "rows_with_cells_rejected": 1,
        "rows_with_rejections": 2,
        "cells_rejected": 7,  # the 6 cells of row 5, and row 3's age
    }
    assert {k: counts[k] for k in expected} == expected
    assert "(all cells of the rows rejected, and 1 cell alone)" in summary
    assert "(40.0% of rows read; max_reject_ratio 50.0%)" in summary
    stored = published_batch(wh, batch_id)
    assert {k: stored[k] for k in expected} == expected
    assert stored["scopes"] == [("cell", 1), ("row", 1)]  # the table's 2 rows
    cells = [stored[k] for k in ("properties_applied", "properties_stale", "cells_rejected")]
    assert sum(cells) == stored["cells_incoming"] == 30  # the counts reconcile
    assert "row 3 (cell): vek = 'abc'" in summary and "row 5 (whole row): idecko" in summary


def crm_snapshot(tmp_path: Path, rows: list[str]) -> Path:
    header = "idecko,meno,priezvisko,email,vek,vip,registrovany\n"
    path = tmp_path / "crm.csv"
    path.write_text(header + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return path


def test_import_json_text_and_the_batches_view_give_the_same_counts(tmp_path: Path) -> None:
    src = crm_snapshot(
        tmp_path,
        [
            "a,A,A,a@x,1,no,2019-01-01",
            "b,B,B,b@x,old,maybe,2019-01-01",  # two cells of one row
            ",C,C,c@x,3,no,2019-01-01",  # no id: the whole row
            "d,D,D,d@x,4,no,2019-01-01",
        ],
    )
    wh = tmp_path / "wh"
    args = ("--mapping", SAMPLES / "mapping.json", "--max-reject-ratio", "0.5")
    done = propsync("import", src, *args, "--json", "--warehouse", wh)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    expected = {
        "rows_rejected": 1,
        "rows_with_cells_rejected": 1,
        "rows_with_rejections": 2,
        "cells_rejected": 8,
    }
    assert {k: summary[k] for k in REJECTION_COUNTS} == expected
    text = text_counts(done.stderr)
    assert {k: text[k] for k in summary if k in text} == {
        k: v for k, v in summary.items() if k in text
    }
    assert set(REJECTION_COUNTS) <= set(text)
    stored = published_batch(wh, summary["batch_id"])
    assert {k: stored[k] for k in REJECTION_COUNTS} == expected
    assert stored["scopes"] == [("cell", 2), ("row", 1)]


def test_a_failed_batch_says_why_in_the_summary_s_words(tmp_path: Path) -> None:
    # No row rejected whole, one cell: 1 of 3 rows has a rejection, more than the default 5 %.
    src = crm_snapshot(
        tmp_path,
        ["a,A,A,a@x,1,no,2019-01-01", "b,B,B,b@x,old,no,2019-01-01", "c,C,C,c@x,3,no,2019-01-01"],
    )
    done = propsync(
        "import",
        src,
        "--mapping",
        SAMPLES / "mapping.json",
        "--json",
        "--warehouse",
        tmp_path / "wh",
    )
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in REJECTION_COUNTS} == {
        "rows_rejected": 0,
        "rows_with_cells_rejected": 1,
        "rows_with_rejections": 1,
        "cells_rejected": 1,
    }
    assert done.stderr.startswith(f"FAILED {src} as batch ")
    assert (
        "  rows with rejections: 1 of 3 rows read (33.3%; rows rejected 0, rows with cells "
        "rejected 1), more than max_reject_ratio 5.0%: nothing was applied\n"
    ) in done.stderr
    assert text_counts(done.stderr)["rows_with_rejections"] == 1


# -- 5. start-up: a read imports neither Polars nor pydantic -----------------------------------


def imported(*args: str | Path, env: dict[str, str] | None = None) -> set[str]:
    """The modules that ``propsync ARGS`` (the console script, a real process) imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", EXE, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [
        line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")
    ]
    return {parts[-1].strip() for parts in lines[1:]}  # the first is the header


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_get_and_version_import_neither_polars_nor_pydantic(tmp_path: Path) -> None:
    src, mapping = seed_snapshot(tmp_path, [["a", "A", "B", "1570001049"]])
    wh = tmp_path / "wh"
    assert propsync("import", src, "--mapping", mapping, "--warehouse", wh).returncode == 0
    get = top_level(imported("get", "registered:a", "--warehouse", wh))
    assert "duckdb" in get  # it does read the published catalog
    assert {"polars", "pydantic", "orjson"}.isdisjoint(get)
    version = top_level(imported("--version"))
    assert {"polars", "pydantic", "orjson", "duckdb"}.isdisjoint(version)
    # Another setting given: validated by Settings (pydantic), as for every command; no Polars.
    env = {"PROPSYNC_WAREHOUSE": str(wh), "PROPSYNC_LOCK_TIMEOUT": "5"}
    checked = top_level(imported("get", "registered:a", env=env))
    assert "pydantic" in checked and "polars" not in checked
