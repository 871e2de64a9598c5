"""Bad input over HTTP (#8), case by case, against a real ``propsync serve`` on loopback.

Every case is one request with raw bytes (so duplicate keys and deep nesting reach the server as
written) and states its exact outcome: the status, the error name and its message (JSON routes) or
the page's title and message (the profile page's form), and the stored state afterwards: for a
refusal nothing was journaled and the customer is as seeded; for an accepted request the exact
properties once the journal is applied.

Nesting: the limit is 64 levels of arrays/objects per JSON text, the outermost counting. A
property value of depth d sits at depth d + 5 in a batch body (body, commands, command, data,
properties), d + 2 in a single-command body or a PATCH body, and d in the page's JSON field.
"""

from __future__ import annotations

import html
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from propsync.api.page import csrf_token
from tests.api.conftest import AUTH, KEY_ID, KEY_SECRET, TOKEN, ServerProcess, start_server
from tests.corpus.shapes import deep, nested

T1 = 1570001049  # the tracked cases' update_timestamp
T0 = T1 - 1000  # the seed's
RUN = f"{os.getpid()}-{time.monotonic_ns() % 10**9}"

TOO_DEEP = "nests arrays/objects more than 64 levels deep (the limit is 64)"


def data(user: str, props: str, extra: str = "", ts: int = T1) -> str:
    """A ``customers`` command's ``data`` text (the single-command body) with ``props``."""
    return (
        f'{{"customer_ids": {{"registered": "{user}"}}, "properties": {props}, '
        f'"update_timestamp": {ts}{extra}}}'
    )


def command(user: str, props: str, extra: str = "", ts: int = T1) -> str:
    return f'{{"name": "customers", "data": {data(user, props, extra, ts)}}}'


def batch(*commands: str) -> str:
    return '{"commands": [' + ", ".join(commands) + "]}"


Body = Callable[[str], str | bytes]  # the case's customer id -> the raw body


@dataclass(frozen=True)
class Case:
    id: str
    route: str  # batch | customers | patch | page
    body: Body
    status: int
    error: str | None = None  # JSON "error", or the page's title
    message: str | None = None  # exactly the JSON "message", or a fragment of the page's
    # Properties of the case's customer afterwards ({name: value}); None: as seeded / absent.
    stored: dict[str, Any] | None = None


def _refused(case_id: str, route: str, body: Body, error: str, message: str) -> Case:
    return Case(case_id, route, body, 400, error, message)


def _too_deep(case_id: str, route: str, body: Body, what: str = "the body") -> Case:
    title = "Bad request" if route == "page" else "JsonTooDeep"
    return Case(case_id, route, body, 400, title, f"{what} {TOO_DEEP}")


DEEP_CASES = [
    # 2. Deep nesting: refused with the documented error, never a 500.
    _too_deep("batch-value-65", "batch", lambda u: batch(command(u, f'{{"p": {deep(60)}}}'))),
    _too_deep("batch-value-900", "batch", lambda u: batch(command(u, f'{{"p": {deep(900)}}}'))),
    _too_deep(
        "batch-value-100k", "batch", lambda u: batch(command(u, f'{{"p": {deep(100_000)}}}'))
    ),
    _too_deep(
        "batch-objects-900",
        "batch",
        lambda u: batch(command(u, '{"p": ' + '{"a": ' * 900 + "1" + "}" * 900 + "}")),
    ),
    _too_deep(
        "batch-command-id",
        "batch",
        lambda u: batch(command(u, '{"p": 1}')[:-1] + f', "command_id": {deep(900)}}}'),
    ),
    _too_deep(
        "batch-customer-ids",
        "batch",
        lambda u: batch(
            '{"name": "customers", "data": {"customer_ids": {"registered": '
            + deep(900)
            + '}, "properties": {"p": 1}}}'
        ),
    ),
    _too_deep(
        "batch-unknown-key", "batch", lambda u: batch(command(u, '{"p": 1}', f', "x": {deep(900)}'))
    ),
    _too_deep(
        "batch-second-command",  # one deep command refuses the whole body: nothing journaled
        "batch",
        lambda u: batch(command(u, '{"p": 1}'), command(u, f'{{"q": {deep(900)}}}')),
    ),
    _too_deep("batch-top-level", "batch", lambda u: deep(900)),
    _too_deep("batch-unterminated", "batch", lambda u: "[" * 900),
    _too_deep("customers-value-63", "customers", lambda u: data(u, f'{{"p": {deep(63)}}}')),
    _too_deep(
        "customers-value-900", "customers", lambda u: f'{{"properties": {{"p": {deep(900)}}}}}'
    ),
    _too_deep("patch-value-63", "patch", lambda u: f'{{"properties": {{"p": {deep(63)}}}}}'),
    _too_deep("patch-value-900", "patch", lambda u: f'{{"properties": {{"p": {deep(900)}}}}}'),
    _too_deep("patch-top-level", "patch", lambda u: deep(100_000)),
    _too_deep("page-json-65", "page", lambda u: deep(65), "the value"),
    _too_deep("page-json-900", "page", lambda u: deep(900), "the value"),
    _too_deep("page-json-100k", "page", lambda u: deep(100_000), "the value"),
    # At the limit: accepted, stored exactly.
    Case(
        "batch-value-59",
        "batch",
        lambda u: batch(command(u, f'{{"p": {deep(59)}}}')),
        200,
        stored={"p": nested(59)},
    ),
    Case(
        "customers-value-62",
        "customers",
        lambda u: data(u, f'{{"p": {deep(62)}}}'),
        200,
        stored={"p": nested(62)},
    ),
    Case(
        "patch-value-62",
        "patch",
        lambda u: f'{{"properties": {{"p": {deep(62)}}}}}',
        200,
        stored={"p": nested(62)},
    ),
    Case("page-json-64", "page", lambda u: deep(64), 303, stored={"p": nested(64)}),
    # Brackets inside strings are text, not nesting.
    Case(
        "batch-brackets-in-string",
        "batch",
        lambda u: batch(command(u, '{"p": "' + "[{" * 1000 + '"}')),
        200,
        stored={"p": "[{" * 1000},
    ),
    Case(
        "batch-escaped-quote-and-brackets",
        "batch",
        lambda u: batch(command(u, r'{"p": "\"[[[[\\", "q": "]]]]"}')),
        200,
        stored={"p": '"[[[[\\', "q": "]]]]"},
    ),
]


def _commands(n: int) -> Body:
    return lambda u: batch(command(u, '{"p": 1}'), *['{"name": "system/time"}'] * (n - 1))


LIMIT_CASES = [
    # 4. The command limit (the CLI refuses the same), JSON that is not JSON.
    _refused(
        "batch-51-commands",
        "batch",
        _commands(51),
        "TooManyCommands",
        "51 commands; at most 50 per batch",
    ),
    _refused(
        "batch-5000-commands",
        "batch",
        _commands(5000),
        "TooManyCommands",
        "5000 commands; at most 50 per batch",
    ),
    Case("batch-50-commands", "batch", _commands(50), 200, stored={"p": 1}),
    _refused(
        "batch-not-a-batch",
        "batch",
        lambda u: '{"cmds": []}',
        "InvalidBatch",
        'the body must be an object with a "commands" list',
    ),
    _refused(
        "batch-nan",
        "batch",
        lambda u: batch(command(u, '{"p": NaN}')),
        "InvalidJson",
        "the body is not valid JSON: NaN is not valid JSON",
    ),
    _refused(
        "patch-infinity",
        "patch",
        lambda u: '{"properties": {"p": -Infinity}}',
        "InvalidJson",
        "the body is not valid JSON: -Infinity is not valid JSON",
    ),
    _refused(
        "patch-not-utf8",
        "patch",
        lambda u: b'{"properties": {"p": "\xff"}}',
        "InvalidJson",
        "the body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 22: "
        "invalid start byte",
    ),
    Case(
        "page-json-nan",
        "page",
        lambda u: "NaN",
        400,
        "Bad request",
        "the value is not valid JSON: NaN is not valid JSON",
    ),
]

DUPLICATE_CASES = [
    # 4. Duplicate keys: the last one wins, on every path.
    Case(
        "batch-dup-property",
        "batch",
        lambda u: batch(command(u, '{"p": "first", "p": "last"}')),
        200,
        stored={"p": "last"},
    ),
    Case(
        "batch-dup-properties-key",
        "batch",
        lambda u: batch(
            f'{{"name": "customers", "data": {{"customer_ids": {{"registered": "{u}"}}, '
            f'"properties": {{"a": 1}}, "properties": {{"b": 2}}, "update_timestamp": {T1}}}}}'
        ),
        200,
        stored={"b": 2},
    ),
    Case(
        "batch-dup-nested-key",
        "batch",
        lambda u: batch(command(u, '{"p": {"k": 1, "k": {"x": 1, "x": 2}}}')),
        200,
        stored={"p": {"k": {"x": 2}}},
    ),
    Case(
        "batch-dup-commands-key",
        "batch",
        lambda u: (
            '{"commands": ['
            + command(u, '{"a": 1}')
            + '], "commands": ['
            + command(u, '{"b": 2}')
            + "]}"
        ),
        200,
        stored={"b": 2},
    ),
    Case(
        "batch-dup-customer-id",
        "batch",
        lambda u: batch(
            '{"name": "customers", "data": {"customer_ids": {"registered": "other-'
            + u
            + f'", "registered": "{u}"}}, "properties": {{"p": 1}}, "update_timestamp": {T1}}}}}'
        ),
        200,
        stored={"p": 1},
    ),
    Case(
        "batch-dup-name",  # {"name": "system/time", "name": "customers"} is a customers command
        "batch",
        lambda u: batch('{"name": "system/time", ' + command(u, '{"p": 1}')[1:]),
        200,
        stored={"p": 1},
    ),
    Case(
        "customers-dup-property",
        "customers",
        lambda u: data(u, '{"p": "first", "p": "last"}'),
        200,
        stored={"p": "last"},
    ),
    Case(
        "patch-dup-property",
        "patch",
        lambda u: '{"properties": {"p": "first", "p": "last"}}',
        200,
        stored={"p": "last"},
    ),
    Case(
        "patch-dup-properties-key",
        "patch",
        lambda u: '{"properties": {"a": 1}, "properties": {"p": 2}}',
        200,
        stored={"p": 2},
    ),
    Case(
        "page-json-dup-key",
        "page",
        lambda u: '{"k": 1, "k": 2}',
        303,
        stored={"p": {"k": 2}},
    ),
]


def _form(value: str, name: str = "p", csrf: str | None = None, json: bool = True) -> Body:
    """A raw form body; ``value`` and ``name`` are inserted as given (already percent-encoded)."""
    return lambda u: (
        f"csrf={csrf or '{csrf}'}&name={name}&type={'json' if json else 'text'}&value={value}"
    )


NOT_UTF8 = "the form is not UTF-8 text"
FORM_CASES = [
    # 4. The page's form: bytes that are not UTF-8 are refused, not replaced by U+FFFD.
    Case("page-name-ff", "page", _form("1", name="%FF%FE"), 400, "Bad request", NOT_UTF8),
    Case("page-value-truncated", "page", _form("%C3", json=False), 400, "Bad request", NOT_UTF8),
    Case(
        "page-value-surrogate", "page", _form("%ED%A0%80", json=False), 400, "Bad request", NOT_UTF8
    ),
    Case("page-csrf-ff", "page", _form("1", csrf="%FF"), 400, "Bad request", NOT_UTF8),
    Case(
        "page-raw-byte-ff",
        "page",
        lambda u: b"csrf={csrf}&name=p&type=text&value=\xff",
        400,
        "Bad request",
        NOT_UTF8,
    ),
    # A real U+FFFD (its UTF-8 bytes) is text like any other.
    Case("page-real-fffd", "page", _form("%EF%BF%BD", json=False), 303, stored={"p": "\ufffd"}),
    Case("page-text-ok", "page", _form("Mari%C3%A1n", json=False), 303, stored={"p": "Marián"}),
    # Raw (not percent-encoded) UTF-8 is UTF-8 too, not Latin-1 mojibake.
    Case(
        "page-raw-utf8",
        "page",
        lambda u: "csrf={csrf}&name=p&type=text&value=Marián".encode(),
        303,
        stored={"p": "Marián"},
    ),
]

CASES = DEEP_CASES + LIMIT_CASES + DUPLICATE_CASES + FORM_CASES
SEEDED = {"patch", "page"}  # routes that edit an existing customer


def _user(case: Case) -> str:
    return f"{case.id}-{RUN}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server; the customers of the edit cases are tracked (``seed`` = "x" at T0) up front."""
    s = start_server(tmp_path_factory.mktemp("http-corpus") / "warehouse")
    try:
        seeds = [command(_user(c), '{"seed": "x"}', ts=T0) for c in CASES if c.route in SEEDED]
        for i in range(0, len(seeds), 50):
            r = httpx.post(
                s.url + f"/track/v2/projects/{TOKEN}/batch", content=batch(*seeds[i : i + 50])
            )
            assert r.status_code == 200 and all(x["success"] for x in r.json()["results"]), r.text
        s.apply()
        yield s
    finally:
        s.stop()


def _records_written(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.url}/healthz", timeout=10).json()["journal"]["records_written"])


def _stored(server: ServerProcess, user: str) -> dict[str, Any] | None:
    r = httpx.get(
        f"{server.url}/api/customers/registered:{user}?include_timestamps=1", auth=AUTH, timeout=30
    )
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    props: dict[str, Any] = r.json()["properties"]
    return props


def _send(server: ServerProcess, case: Case, user: str) -> httpx.Response:
    body = case.body(user)
    raw = body.encode() if isinstance(body, str) else body
    ref = f"registered:{user}"
    with httpx.Client(base_url=server.url, timeout=60) as c:
        if case.route == "batch":
            return c.post(f"/track/v2/projects/{TOKEN}/batch", content=raw)
        if case.route == "customers":
            return c.post(f"/track/v2/projects/{TOKEN}/customers", content=raw)
        if case.route == "patch":
            return c.patch(f"/api/customers/{ref}", content=raw, auth=AUTH)
        if not raw.startswith(b"csrf="):  # a bare JSON value for the form's JSON field
            raw = str(_form(quote(str(body), safe=""))(user)).encode()
        raw = raw.replace(b"{csrf}", csrf_token(KEY_SECRET, KEY_ID, ref).encode())
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return c.post(f"/customers/{ref}/edit", content=raw, headers=headers, auth=AUTH)


def _check_error(case: Case, r: httpx.Response) -> None:
    if case.route == "page":
        assert r.headers["content-type"].startswith("text/html")
        text = html.unescape(r.text)
        assert f"<h1>{case.status} {case.error}</h1>" in text, text
        assert case.message is not None and case.message in text, text
    else:
        assert r.json() == {"error": case.error, "message": case.message}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_http_case(server: ServerProcess, case: Case) -> None:
    user = _user(case)
    before = _stored(server, user)
    records = _records_written(server)
    started = time.time()
    r = _send(server, case, user)
    assert r.status_code == case.status, r.text[:2000]
    if case.error is not None:
        _check_error(case, r)
    if case.stored is None:  # refused: nothing journaled, nothing changed
        assert _records_written(server) == records
        assert _stored(server, user) == before
        return
    if case.route in ("batch", "customers"):
        server.apply()
    after = _stored(server, user)
    assert after is not None
    seed = {"seed": {"value": "x", "last_update": T0}} if case.route in SEEDED else {}
    assert {k: v["value"] for k, v in after.items()} == {
        **{k: v["value"] for k, v in seed.items()},
        **case.stored,
    }
    for name in case.stored:  # tracked at T1; edits stamped with the server's clock
        stamp = after[name]["last_update"]
        assert stamp == T1 if case.route not in SEEDED else started - 1 <= stamp <= time.time() + 1


def test_the_corpus_covers_every_class() -> None:
    assert len(CASES) >= 45
    assert {c.route for c in DEEP_CASES} == {"batch", "customers", "patch", "page"}
    assert {c.route for c in DUPLICATE_CASES} == {"batch", "customers", "patch", "page"}


def test_published_versions_and_runs_are_read_only_on_disk(
    server: ServerProcess,
) -> None:
    root = server.root
    published = sorted((root / "published").glob("v*.duckdb"))
    run_files = sorted((root / "runs").glob("r*.parquet"))
    assert published and run_files and (root / "serving" / "read_model.sqlite").exists()
    for path in published + run_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, path


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("held", flush=True)
time.sleep(120)
"""


def _hold(path: Path, mode: str) -> subprocess.Popen[str]:
    """A process that has ``path`` open (``rw`` or ``ro``), as an analyst's duckdb shell would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_an_edit_while_another_process_has_the_working_database_open_is_503_database_in_use(
    server: ServerProcess,
) -> None:
    case = next(c for c in CASES if c.id == "patch-dup-property")
    user = _user(case)
    before = _stored(server, user)
    holder = _hold(server.root / "work.duckdb", "ro")
    try:
        r = httpx.patch(
            f"{server.url}/api/customers/registered:{user}",
            json={"properties": {"held": 1}},
            auth=AUTH,
            timeout=60,
        )
        exe = os.readlink(f"/proc/{holder.pid}/exe")  # DuckDB names the holder by it
    finally:
        holder.kill()
        holder.wait()
    work = str(server.root / "work.duckdb")
    assert r.status_code == 503, r.text
    assert r.json() == {
        "error": "DatabaseInUse",
        "message": f"{work!r} is open in {exe} (pid {holder.pid}), and a writer needs it to "
        "itself (for example a duckdb shell opened without -readonly): close it, and open the "
        "warehouse read-only (duckdb -readonly propsync.duckdb, or duckdb.connect(FILE, "
        "read_only=True)); then retry",
        "path": work,
        "pid": holder.pid,
    }
    assert _stored(server, user) == before
    assert "Traceback" not in server.log_text()
