"""Bad input through the ``propsync`` CLI (#8), case by case, on a real warehouse.

Every case runs ``propsync ARGS`` (``cli.main``, in process: an uncaught exception would fail the
case) on a copy of a warehouse seeded with two customers, with exactly the ``PROPSYNC_*``
variables it names, and states its exact outcome: the exit code, for a usage error the one stderr
line, and the stored state afterwards (the seed, unchanged, for every refusal).

The seed: ``u1`` (name Ann) and ``u2`` (name Bob), tracked at T0. Nesting: the limit is 64 levels
per JSON text; a property value of depth d sits at depth d + 5 in a batch file and at d in a
``set PROP:=JSON`` value.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from propsync.cli import main
from propsync.store.warehouse import Warehouse
from tests.corpus.shapes import State, deep, nested, stored

T0 = 1570000049
T1 = T0 + 1000
TOO_DEEP = "nests arrays/objects more than 64 levels deep (the limit is 64)"
MEMORY = "must be a size with its unit (e.g. 768MB, 2GiB), a share of RAM (50%) or none"
SEED: State = {"u1": {"name": ("Ann", T0)}, "u2": {"name": ("Bob", T0)}}
NOW = -1  # in a State: stamped with the clock of the run (an edit)


def command(user: str, props: str, extra: str = "", ts: int = T1) -> str:
    return (
        f'{{"name": "customers", "data": {{"customer_ids": {{"registered": "{user}"}}, '
        f'"properties": {props}, "update_timestamp": {ts}{extra}}}}}'
    )


def batch(*commands: str) -> bytes:
    return ('{"commands": [' + ", ".join(commands) + "]}").encode()


def seeded(**changes: dict[str, tuple[Any, int]]) -> State:
    state = {k: dict(v) for k, v in SEED.items()}
    for customer, props in changes.items():
        state.setdefault(customer, {}).update(props)
    return state


@dataclass(frozen=True)
class Case:
    """``args`` may hold ``{file}`` (``file`` written as ``in.json``), ``{dir}`` (the case's
    directory) and ``{wh}``; ``--warehouse {wh}`` is appended unless ``env`` names one."""

    id: str
    args: tuple[str, ...]
    file: bytes | None = None
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    exit: int = 2
    error: str | None = None  # the one stderr line after "propsync: error: " (placeholders too)
    state: State = field(default_factory=lambda: seeded())


def track(case_id: str, body: bytes, state: State | None = None, **kw: Any) -> Case:
    return Case(case_id, ("track", "{file}"), file=body, state=state or seeded(), **kw)


def too_deep(case_id: str, body: bytes) -> Case:
    return track(case_id, body, error=f"{{file}} {TOO_DEEP}")


DEEP = [
    # 2. Deep nesting: exit 2 with the documented message, never a traceback.
    too_deep("track-value-60", batch(command("u3", f'{{"p": {deep(60)}}}'))),
    too_deep("track-value-900", batch(command("u3", f'{{"p": {deep(900)}}}'))),
    too_deep("track-value-100k", batch(command("u3", f'{{"p": {deep(100_000)}}}'))),
    too_deep(
        "track-objects-900", batch(command("u3", '{"p": ' + '{"a": ' * 900 + "1" + "}" * 900 + "}"))
    ),
    too_deep(
        "track-command-id", batch(command("u3", '{"p": 1}')[:-1] + f', "command_id": {deep(900)}}}')
    ),
    too_deep("track-unknown-key", batch(command("u3", '{"p": 1}', f', "x": {deep(900)}'))),
    too_deep(
        "track-second-command",
        batch(command("u3", '{"p": 1}'), command("u4", f'{{"q": {deep(900)}}}')),
    ),
    too_deep("track-top-level", deep(900).encode()),
    too_deep("track-unterminated", b"{" + b'"a": [' * 900),
    Case(
        "track-stdin-deep",
        ("track", "-"),
        stdin=batch(command("u3", f'{{"p": {deep(900)}}}')),
        error=f"stdin {TOO_DEEP}",
    ),
    Case("set-json-65", ("set", "registered:u1", f"p:={deep(65)}"), error=f"value of p {TOO_DEEP}"),
    Case(
        "set-json-900", ("set", "registered:u1", f"p:={deep(900)}"), error=f"value of p {TOO_DEEP}"
    ),
    Case(
        "set-json-100k",
        ("set", "registered:u1", f"p:={deep(100_000)}"),
        error=f"value of p {TOO_DEEP}",
    ),
    # At the limit: applied, stored exactly. Brackets in strings are text, not nesting.
    track(
        "track-value-59",
        batch(command("u3", f'{{"p": {deep(59)}}}')),
        seeded(u3={"p": (nested(59), T1)}),
        exit=0,
    ),
    Case(
        "set-json-64",
        ("set", "registered:u1", f"p:={deep(64)}"),
        exit=0,
        state=seeded(u1={"p": (nested(64), NOW)}),
    ),
    track(
        "track-brackets-in-string",
        batch(command("u3", '{"p": "' + "[{" * 1000 + '"}')),
        seeded(u3={"p": ("[{" * 1000, T1)}),
        exit=0,
    ),
]


def commands(n: int) -> bytes:
    return batch(command("u3", '{"p": 1}'), *['{"name": "system/time"}'] * (n - 1))


LIMITS = [
    # 4. The HTTP service's command limit, word for word; text that is not a JSON batch.
    track("track-51-commands", commands(51), error="{file}: 51 commands; at most 50 per batch"),
    track(
        "track-5000-commands", commands(5000), error="{file}: 5000 commands; at most 50 per batch"
    ),
    track("track-50-commands", commands(50), seeded(u3={"p": (1, T1)}), exit=0),
    track(
        "track-11-of-10",
        commands(11),
        env={"PROPSYNC_MAX_COMMANDS": "10"},
        error="{file}: 11 commands; at most 10 per batch",
    ),
    track(
        "track-10-of-10",
        commands(10),
        seeded(u3={"p": (1, T1)}),
        env={"PROPSYNC_MAX_COMMANDS": "10"},
        exit=0,
    ),
    track(
        "track-max-commands-abc",
        commands(1),
        env={"PROPSYNC_MAX_COMMANDS": "abc"},
        error="invalid setting: PROPSYNC_MAX_COMMANDS=abc: must be a whole number from 1 to 10000",
    ),
    track(
        "track-max-commands-0",
        commands(1),
        env={"PROPSYNC_MAX_COMMANDS": "0"},
        error="invalid setting: PROPSYNC_MAX_COMMANDS=0: must be a whole number from 1 to 10000",
    ),
    track(
        "track-not-a-batch",
        b'{"cmds": []}',
        error='{file}: the body must be an object with a "commands" list',
    ),
    track("track-list", b"[]", error='{file}: the body must be an object with a "commands" list'),
    track(
        "track-nan",
        batch(command("u3", '{"p": NaN}')),
        error="{file} is not valid JSON: NaN is not valid JSON",
    ),
    track(
        "track-not-json",
        b"{not json",
        error="{file} is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    ),
    track(
        "track-not-utf8",
        b'{"commands": [\xff]}',
        error="{file} is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 14: "
        "invalid start byte",
    ),
    track(
        "track-bom",
        b"\xef\xbb\xbf" + batch(command("u3", '{"p": 1}')),
        seeded(u3={"p": (1, T1)}),
        exit=0,
    ),
    Case(
        "track-missing-file",
        ("track", "{dir}/none.json"),
        error="cannot read {dir}/none.json: No such file or directory",
    ),
    Case("track-directory", ("track", "{dir}"), error="cannot read {dir}: Is a directory"),
    Case(
        "set-json-infinity",
        ("set", "registered:u1", "p:=Infinity"),
        error="value of p is not valid JSON: Infinity is not valid JSON",
    ),
]

DUPLICATES = [
    # 4. Duplicate keys: the last one wins (as over HTTP).
    track(
        "track-dup-property",
        batch(command("u3", '{"p": "first", "p": "last"}')),
        seeded(u3={"p": ("last", T1)}),
        exit=0,
    ),
    track(
        "track-dup-properties-key",
        batch(
            '{"name": "customers", "data": {"customer_ids": {"registered": "u3"}, '
            f'"properties": {{"a": 1}}, "properties": {{"b": 2}}, "update_timestamp": {T1}}}}}'
        ),
        seeded(u3={"b": (2, T1)}),
        exit=0,
    ),
    track(
        "track-dup-update-timestamp",
        batch(command("u3", '{"p": 1}', f', "update_timestamp": {T1 + 5}')),
        seeded(u3={"p": (1, T1 + 5)}),
        exit=0,
    ),
    track(
        "track-dup-commands-key",
        b'{"commands": ['
        + command("u3", '{"a": 1}').encode()
        + b'], "commands": ['
        + command("u4", '{"b": 2}').encode()
        + b"]}",
        seeded(u4={"b": (2, T1)}),
        exit=0,
    ),
    track(
        "track-dup-customer-id",
        batch(
            '{"name": "customers", "data": {"customer_ids": {"registered": "u1", '
            f'"registered": "u3"}}, "properties": {{"p": 1}}, "update_timestamp": {T1}}}}}'
        ),
        seeded(u3={"p": (1, T1)}),
        exit=0,
    ),
    Case(
        "set-dup-json-key",
        ("set", "registered:u1", 'p:={"k": 1, "k": 2}'),
        exit=0,
        state=seeded(u1={"p": ({"k": 2}, NOW)}),
    ),
    Case(
        "set-dup-assignment",
        ("set", "registered:u1", "p=first", "p=last"),
        exit=0,
        state=seeded(u1={"p": ("last", NOW)}),
    ),
]


def setting(case_id: str, args: tuple[str, ...], env: dict[str, str], message: str) -> Case:
    return Case(case_id, args, env=env, error=f"invalid setting: {message}")


GET = ("get", "registered:u1")
SETTINGS = [
    # 3. Every setting out of range: exit 2, one line naming it as written and what is allowed.
    *(
        setting(
            f"future-skew-{v}",
            GET,
            {"PROPSYNC_MAX_FUTURE_SKEW": v},
            f"PROPSYNC_MAX_FUTURE_SKEW={v}: must be a number >= 0 (seconds)",
        )
        for v in ("abc", "-1", "nan", "inf")
    ),
    *(
        setting(
            f"reject-ratio-{v}",
            GET,
            {"PROPSYNC_MAX_REJECT_RATIO": v},
            f"PROPSYNC_MAX_REJECT_RATIO={v}: must be a number from 0 to 1",
        )
        for v in ("2", "-0.5", "x")
    ),
    *(
        setting(
            f"lock-timeout-{v}",
            GET,
            {"PROPSYNC_LOCK_TIMEOUT": v},
            f"PROPSYNC_LOCK_TIMEOUT={v}: must be a number >= 0 (seconds)",
        )
        for v in ("x", "-1")
    ),
    *(
        setting(
            f"audit-{v}",
            GET,
            {"PROPSYNC_AUDIT_FULL_MAX_UPDATES": v},
            f"PROPSYNC_AUDIT_FULL_MAX_UPDATES={v}: must be a whole number >= 1",
        )
        for v in ("0", "1.5", "x")
    ),
    *(
        setting(
            f"memory-{v}",
            GET,
            {"PROPSYNC_DUCKDB_MEMORY_LIMIT": v},
            f"PROPSYNC_DUCKDB_MEMORY_LIMIT={v}: {MEMORY}",
        )
        for v in ("abc", "100", "0MB", "-1GB", "150%")
    ),
    setting(
        "hard-id-types-colon",
        GET,
        {"PROPSYNC_HARD_ID_TYPES": "registered,a:b"},
        "PROPSYNC_HARD_ID_TYPES=registered,a:b: id types must be non-empty and contain no ':'",
    ),
    Case(
        "warehouse-env-is-a-file",
        GET,
        file=b"{}",
        env={"PROPSYNC_WAREHOUSE": "{dir}/in.json"},
        error="invalid setting: PROPSYNC_WAREHOUSE={dir}/in.json: '{dir}/in.json' exists and is "
        "not a directory",
    ),
    Case(
        "warehouse-option-is-a-file",
        ("get", "registered:u1", "--warehouse", "{dir}/in.json"),
        file=b"{}",
        error="invalid setting: --warehouse {dir}/in.json: '{dir}/in.json' exists and is not a "
        "directory",
    ),
    Case(
        "warehouse-under-a-file",
        ("track", "{file}", "--warehouse", "{dir}/in.json/wh"),
        file=commands(1),
        error="cannot use '{dir}/in.json/wh' as the warehouse directory: Not a directory",
    ),
    *(
        Case(
            f"option-max-reject-ratio-{v}",
            ("import", "{file}", "--mapping", "{file}", "--max-reject-ratio", v),
            file=b"{}",
            error=f"invalid setting: --max-reject-ratio {v}: must be a number from 0 to 1",
        )
        for v in ("2", "-1", "nan")
    ),
    # The same setting refuses every command, before anything is read or written.
    *(
        setting(
            f"every-command-{args[0]}",
            args,
            {"PROPSYNC_MAX_FUTURE_SKEW": "abc"},
            "PROPSYNC_MAX_FUTURE_SKEW=abc: must be a number >= 0 (seconds)",
        )
        for args in (
            ("track", "{file}"),
            ("set", "registered:u1", "p=1"),
            ("import", "{file}", "--mapping", "{file}"),
            ("publish",),
            ("migrate",),
            ("apply",),
            ("serve", "--port", "1"),
        )
    ),
    # The HTTP service's settings (`serve` and `apply` read them).
    *(
        setting(f"service-{var}", ("apply",), {var: value}, f"{var}={value}: {message}")
        for var, value, message in (
            ("PROPSYNC_MAX_COMMANDS", "10001", "must be a whole number from 1 to 10000"),
            ("PROPSYNC_MAX_BODY_BYTES", "10", "must be a whole number >= 1024 (bytes)"),
            ("PROPSYNC_APPLY_INTERVAL", "0", "must be a number > 0 (seconds)"),
            ("PROPSYNC_PUBLISH_INTERVAL", "-1", "must be a number >= 0 or auto (seconds)"),
            ("PROPSYNC_EDIT_LOCK_TIMEOUT", "x", "must be a number >= 0 (seconds)"),
            ("PROPSYNC_EDIT_VISIBLE_TIMEOUT", "-5", "must be a number >= 0 (seconds)"),
        )
    ),
    setting(
        "service-api-keys",
        ("apply",),
        {"PROPSYNC_API_KEYS": "nocolon"},
        "PROPSYNC_API_KEYS: api key 'nocolon'... must be 'id:secret'",
    ),
    Case(
        "serve-apply-interval-0",
        ("serve", "--apply-interval", "0"),
        error="invalid setting: --apply-interval 0: must be a number > 0 (seconds)",
    ),
    Case(
        "serve-publish-interval-negative",
        ("serve", "--publish-interval", "-1"),
        error="invalid setting: --publish-interval -1: must be a number >= 0 or auto (seconds)",
    ),
    Case(
        "config-file-values",
        ("apply", "--config", "{file}"),
        file=b'max_commands = 0\nmax_future_skew_seconds = "abc"\n',
        error="invalid setting: max_commands = 0 in {file}: must be a whole number from 1 to 10000",
    ),
    Case(
        "config-file-core-value",
        ("apply", "--config", "{file}"),
        file=b'max_future_skew_seconds = "abc"\n',
        error="invalid setting: max_future_skew_seconds = 'abc' in {file}: must be a number >= 0 "
        "(seconds)",
    ),
    # Values in range work.
    *(
        Case(
            f"memory-ok-{v}",
            ("track", "{file}"),
            file=commands(1),
            env={"PROPSYNC_DUCKDB_MEMORY_LIMIT": v},
            exit=0,
            state=seeded(u3={"p": (1, T1)}),
        )
        for v in ("2GiB", "50%", "none", "64 mb")
    ),
    Case(
        "publish-interval-auto",
        ("apply",),
        env={"PROPSYNC_PUBLISH_INTERVAL": "auto", "PROPSYNC_MAX_FUTURE_SKEW": "0"},
        exit=0,
    ),
]

CASES = DEEP + LIMITS + DUPLICATES + SETTINGS


# -- running a case ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-seed")
    body = batch(command("u1", '{"name": "Ann"}', ts=T0), command("u2", '{"name": "Bob"}', ts=T0))
    (root / "seed.json").write_bytes(body)
    assert main(["track", str(root / "seed.json"), "--warehouse", str(root / "wh")]) == 0
    return root / "wh"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for var in list(os.environ):
        if var.startswith("PROPSYNC_"):
            monkeypatch.delenv(var)
    yield monkeypatch


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


@dataclass
class Ran:
    code: int
    out: str
    err: str
    started: float


def run_case(
    case: Case, tmp: Path, seed: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Ran:
    wh = tmp / "wh"
    shutil.copytree(seed, wh, symlinks=True)
    values = {"file": str(tmp / "in.json"), "dir": str(tmp), "wh": str(wh)}
    if case.file is not None:
        (tmp / "in.json").write_bytes(case.file)
    for var, value in case.env.items():
        env.setenv(var, _fill(value, values))
    if case.stdin is not None:
        env.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin)))
    args = [_fill(a, values) for a in case.args]
    if "PROPSYNC_WAREHOUSE" not in case.env and "--warehouse" not in args:
        args += ["--warehouse", str(wh)]
    capsys.readouterr()
    started = time.time()
    code = main(args)
    out, err = capsys.readouterr()
    return Ran(code, out, err, started)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_case(
    case: Case,
    tmp_path: Path,
    seed_warehouse: Path,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = run_case(case, tmp_path, seed_warehouse, clean_env, capsys)
    assert ran.code == case.exit, ran.err
    if case.error is not None:
        placeholders = {"file": str(tmp_path / "in.json"), "dir": str(tmp_path)}
        assert ran.err == _fill(f"propsync: error: {case.error}\n", placeholders)
    elif case.exit == 0:
        assert ran.err == ""
    if case.args[0] == "track" and case.exit == 0:
        assert all(r["success"] for r in json.loads(ran.out)["results"]), ran.out
    got = stored(Warehouse(tmp_path / "wh"))
    expected_state = {c: dict(p) for c, p in case.state.items()}
    for customer, props in expected_state.items():
        for name, (value, ts) in props.items():
            if ts == NOW:  # an edit: stamped with the clock of the run
                stamp = got.get(customer, {}).get(name, (None, 0))[1]
                assert ran.started - 1 <= stamp <= time.time() + 1
                props[name] = (value, stamp)
    assert got == expected_state


def test_the_corpus_covers_every_class() -> None:
    assert len(CASES) >= 80
    assert {c.args[0] for c in DEEP} == {"track", "set"}
    assert {c.args[0] for c in DUPLICATES} == {"track", "set"}


# -- 4. a re-import reports what this run did ------------------------------------------------


def test_a_reimport_reports_nothing_applied(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "s.csv"
    src.write_text("id,name,ts\n" + "".join(f"u{i},N{i},{T1}\n" for i in range(6)))
    mapping = tmp_path / "m.json"
    mapping.write_text(
        json.dumps(
            {
                "properties": [{"from_column": "name", "to_property": "name", "type": "string"}],
                "ids": [{"from_column": "id", "to_id": "registered"}],
                "update_timestamp": {"from_column": "ts"},
            }
        )
    )
    args = [
        "import",
        str(src),
        "--mapping",
        str(mapping),
        "--json",
        "--warehouse",
        str(tmp_path / "wh"),
    ]
    runs = []
    for _ in range(2):
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 0  # with --json the text summary is on stderr, the JSON alone on stdout
        runs.append([*err.splitlines(), *out.splitlines()])
    first, again = (json.loads(lines[-1]) for lines in runs)
    assert first == {
        "batch_id": first["batch_id"],
        "rows_read": 6,
        "properties_applied": 6,
        "properties_stale": 0,
        "rows_rejected": 0,
        "rows_with_cells_rejected": 0,
        "rows_with_rejections": 0,
        "cells_rejected": 0,
        "published_version": 1,
        "already_applied": False,
    }
    assert again == {**first, "properties_applied": 0, "already_applied": True}
    text = runs[1][:-1]
    assert text[0] == f"skipped {src} as batch {first['batch_id']}"
    assert f"  {'properties applied':<24} {0:>12,}" in text
    assert f"  {'rows read':<24} {6:>12,}" in text
    assert text[-1] == "  batch already applied (as version 1): nothing changed"
    assert "properties applied            6" not in "\n".join(runs[1])


# -- 5. published versions are read-only; a file another process holds is a clear error -------


def _writes(root: Path, n: int) -> None:
    for i in range(n):
        assert main(["set", "registered:u1", f"n:={i}", "--warehouse", str(root)]) == 0


def test_published_versions_are_0444_and_old_ones_are_still_pruned(
    tmp_path: Path, seed_warehouse: Path, clean_env: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "wh"
    shutil.copytree(seed_warehouse, root, symlinks=True)
    _writes(root, 5)  # versions 2..6; the newest three are kept
    names = sorted(p.name for p in (root / "published").iterdir())
    catalogs = [f"v00000{v}.duckdb" for v in (4, 5, 6)]
    assert names == sorted(catalogs + [c.replace(".duckdb", ".manifest.json") for c in catalogs])
    for name in names:
        assert stat.S_IMODE((root / "published" / name).stat().st_mode) == 0o444
    assert os.readlink(root / "propsync.duckdb") == "published/v000006.duckdb"
    assert (root / "work.duckdb").stat().st_mode & stat.S_IWUSR  # the writer's own stays writable


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("held", flush=True)
time.sleep(120)
"""


class Holder:
    """A process with a warehouse file open, as an analyst's ``duckdb`` shell would have."""

    def __init__(self, path: Path, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"
        self.exe = os.readlink(f"/proc/{self.proc.pid}/exe")  # how DuckDB names the holder

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


FIX = (
    "(for example a duckdb shell opened without -readonly): close it, and open the warehouse "
    "read-only (duckdb -readonly propsync.duckdb, or duckdb.connect(FILE, read_only=True)); "
    "then retry"
)


@pytest.mark.parametrize(
    ("held", "mode", "args"),
    [
        ("published", "rw", ("get", "registered:u1")),
        ("published", "rw", ("set", "u1", "p=1")),  # an internal id is resolved on the published
        ("work", "ro", ("track", "{file}")),
        ("work", "rw", ("track", "{file}")),
        ("work", "ro", ("set", "registered:u1", "p=1")),
        ("work", "rw", ("publish",)),
        ("work", "ro", ("migrate",)),
    ],
)
def test_a_file_another_process_holds_is_database_in_use_exit_1(
    held: str,
    mode: str,
    args: tuple[str, ...],
    tmp_path: Path,
    seed_warehouse: Path,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if held == "published" and os.geteuid() != 0:
        pytest.skip("only root can open a 0444 published version read-write")
    root = tmp_path / "wh"
    shutil.copytree(seed_warehouse, root, symlinks=True)
    # A copied warehouse's catalog names the seed's files, and readers then read this one's
    # files without opening it; the next publish writes a catalog of this place.
    assert main(["publish", "--warehouse", str(root)]) == 0
    (tmp_path / "in.json").write_bytes(commands(1))
    if args[1:2] == ("u1",):  # the internal id of u1
        with Warehouse(root).connect_published() as con:
            internal = con.execute(
                "SELECT customer_id FROM customer_ids WHERE id_value = 'u1'"
            ).fetchall()[0][0]
        args = (args[0], internal, *args[2:])
    path = (root / "propsync.duckdb").resolve() if held == "published" else root / "work.duckdb"
    holder = Holder(path, mode)
    try:
        capsys.readouterr()
        code = main(
            [_fill(a, {"file": str(tmp_path / "in.json")}) for a in args]
            + ["--warehouse", str(root)]
        )
        err = capsys.readouterr().err
    finally:
        holder.close()
    who = f"{holder.exe} (pid {holder.proc.pid})"
    cause = (
        f"{str(path)!r} is locked by {who}, which has it open read-write"
        if held == "published"
        else f"{str(path)!r} is open in {who}, and a writer needs it to itself"
    )
    assert (code, err) == (1, f"propsync: error: {cause} {FIX}\n")
    assert stored(Warehouse(root)) == SEED  # nothing was written
    assert main(["get", "registered:u1", "--warehouse", str(root)]) == 0  # and all is well after


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


TRY_WRITE = """
import sys, duckdb
try:
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE OR REPLACE VIEW properties AS SELECT 'tampered' AS value")
    con.close()
    print("written")
except duckdb.Error as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_the_owner_of_a_published_version_cannot_open_it_read_write(
    request: pytest.FixtureRequest, seed_warehouse: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """What the 0444 mode proves: the owner (any user but root) cannot open a published version
    read-write, so a ``duckdb`` shell without -readonly neither locks out readers nor changes
    what ``get`` and the API return. Root ignores file modes: as root the same connect succeeds
    (shown at the end), so the mode is a guard against mistakes, not against root."""
    base = Path(tempfile.mkdtemp(prefix="propsync-owner-", dir="/tmp"))  # pytest's tmp is 0700
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    root = base / "wh"
    shutil.copytree(seed_warehouse, root, symlinks=True)
    subprocess.run(["chown", "-R", "65534:65534", str(root)], check=True)
    published = str((root / "propsync.duckdb").resolve())
    denied = _as_nobody(TRY_WRITE, published)
    assert (
        denied.stdout.strip()
        == f'IOException IO Error: Cannot open file "{published}": Permission denied'
    ), denied.stderr
    reads = _as_nobody(
        "import sys; from propsync.cli import main; sys.exit(main(sys.argv[1:]))",
        "get",
        "registered:u1",
        "--warehouse",
        str(root),
    )
    assert reads.returncode == 0 and json.loads(reads.stdout)["properties"] == {"name": "Ann"}
    # Control: the same owner with the mode of a plain file (0644) could have written it.
    copy = root / "control.duckdb"
    shutil.copyfile(published, copy)
    os.chown(copy, 65534, 65534)
    copy.chmod(0o644)
    assert _as_nobody(TRY_WRITE, str(copy)).stdout.strip() == "written"
    # Root ignores the mode: honest about what 0444 does not prevent.
    con = duckdb.connect(published)
    con.close()
    assert stored(Warehouse(root)) == SEED
