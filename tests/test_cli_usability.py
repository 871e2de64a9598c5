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
