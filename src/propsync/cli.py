"""The ``propsync`` command line: a thin layer over the library.

Module level imports the standard library and propsync's light modules only; each command
imports what it uses, so that ``propsync get`` and ``--version`` start without Polars or pydantic
(docs/benchmarks.md, "CLI start-up").

Exit codes: 0 success, 1 the batch failed its checks (nothing published) or another runtime error,
2 usage or mapping error (nothing written), 3 unknown customer / nothing published yet,
141 stdout was closed before all was written (as a shell reports a tool that SIGPIPE ended; the
command's work was done).
"""

from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from propsync import __version__
from propsync.errors import PropsyncError, UnknownCustomer, UsageError

if TYPE_CHECKING:
    from propsync.config import Settings
    from propsync.store.apply import BatchResult
    from propsync.store.read import CustomerRef
    from propsync.store.warehouse import Warehouse

EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE


class TerminalProgress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * fraction)
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {stage:<24} {elapsed:6.1f}s"
        )
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


def _loads(text: str, what: str) -> Any:
    from propsync import jsonlimits

    try:
        return jsonlimits.loads(text)
    except jsonlimits.JsonTooDeep as exc:
        raise UsageError(exc.describe(what)) from None
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None


def _read_text(path: str) -> str:
    """The UTF-8 text of file ``path`` (``-``: stdin); unreadable or not UTF-8: a usage error."""
    what = "stdin" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # a byte order mark is not part of the JSON
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} is not UTF-8 text: {exc}") from None


def _customer_ref(text: str) -> CustomerRef:
    """The CUSTOMER argument; bytes that are not UTF-8 (surrogate escapes) are a usage error."""
    from propsync.store.read import CustomerRef

    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"customer {text!r} is not valid Unicode text") from None
    return CustomerRef.parse(text)


def _settings(args: argparse.Namespace) -> Settings:
    from propsync.config import Settings

    return Settings.from_env(
        warehouse=args.warehouse, max_reject_ratio=getattr(args, "max_reject_ratio", None)
    )


def _warehouse(root: Path) -> Warehouse:
    from propsync.store.warehouse import Warehouse

    return Warehouse(root)


def _reader_warehouse(args: argparse.Namespace) -> Warehouse:
    """The warehouse of a command that only reads: without validating the settings by pydantic
    when none but the warehouse is given (the usual case; a read uses no other), else resolved
    and validated as every command's."""
    from propsync.settings_env import plain_warehouse

    root = plain_warehouse(args.warehouse)
    return _warehouse(root if root is not None else _settings(args).warehouse)


def _print_summary(
    result: BatchResult,
    source: str,
    warehouse: Warehouse,
    max_reject_ratio: float,
    out: TextIO = sys.stdout,
) -> None:
    verb = {"applied": "imported", "already_applied": "skipped", "failed": "FAILED"}[result.status]
    lines = [f"{verb} {source} as batch {result.batch_id}"]
    for label, value, note in _counts(result, max_reject_ratio):
        lines.append(f"  {label:<24} {value:>12,}" + (f"  ({note})" if value and note else ""))
    if result.published_version is not None:
        lines.append(
            f"  {'published version':<24} {result.published_version:>12}  ({warehouse.current_path})"
        )
    if result.message:
        lines.append(f"  {result.message}")
    lines += _first_rejections(result)
    out.write("\n".join(lines) + "\n")


def _counts(result: BatchResult, max_reject_ratio: float) -> list[tuple[str, int, str]]:
    """The summary's counts, named as in ``--json`` (spaces for underscores) where they are in it,
    each rejection count with what it counts (BatchResult defines them)."""
    share = result.rows_with_rejections / result.rows_read if result.rows_read else 0.0
    return [
        ("rows read", result.rows_read, ""),
        ("rows rejected", result.rows_rejected, "whole rows quarantined"),
        (
            "rows with cells rejected",
            result.rows_with_cells_rejected,
            "only single cells quarantined",
        ),
        (
            "rows with rejections",
            result.rows_with_rejections,
            f"{share:.1%} of rows read; max_reject_ratio {max_reject_ratio:.1%}",
        ),
        ("properties applied", result.properties_applied, ""),
        ("properties stale", result.properties_stale, ""),
        ("cells rejected", result.cells_rejected, _cells_note(result)),
        ("rows stamped by default", result.default_timestamp_rows, ""),
        ("customers created", result.customers_created, ""),
        ("customers merged", result.customers_merged, ""),
    ]


def _cells_note(result: BatchResult) -> str:
    """What ``cells_rejected`` holds besides the single cells: every cell of the rows rejected,
    which is why it can exceed the rows of the table rejections."""
    import polars as pl

    rejections = result.rejections
    whole = rejections.filter(pl.col("scope") == "row")["row_nr"].implode()
    alone = rejections.filter((pl.col("scope") == "cell") & ~pl.col("row_nr").is_in(whole)).height
    return f"all cells of the rows rejected, and {alone:,} cell{'' if alone == 1 else 's'} alone"


def _first_rejections(result: BatchResult, shown: int = 5) -> list[str]:
    total = result.rejections.height
    if not total:
        return []
    lines = [
        f"  first rejections (all in the warehouse table rejections, batch_id = '{result.batch_id}'):"
    ]
    first = result.rejections.bottom_k(shown, by="row_nr").sort("row_nr", "scope")
    for r in first.iter_rows(named=True):
        where = "whole row" if r["scope"] == "row" else "cell"
        lines.append(
            f"    row {r['row_nr']} ({where}): {r['column']} = {r['raw_value']!r}: {r['reason']}"
        )
    if total > shown:
        lines.append(f"    ... and {total - shown:,} more")
    return lines


def cmd_import(args: argparse.Namespace) -> int:
    from propsync.operations.imports import import_snapshot
    from propsync.timestamps import parse_timestamp_value

    settings = _settings(args)
    started = None
    if args.started_at is not None:
        started = parse_timestamp_value(args.started_at)
        if started is None or started < 0:
            raise UsageError(f"--started-at {args.started_at!r} is not a timestamp")
    result = import_snapshot(
        args.source,
        args.mapping,
        settings,
        started_at_us=started,
        legacy=args.legacy,
        batch_id=args.batch_id,
        progress=TerminalProgress(),
    )
    _compact_later(settings)
    # With --json, stdout is the JSON document alone (for jq, json.load); the text goes to stderr.
    out = sys.stderr if args.json else sys.stdout
    _print_summary(
        result, args.source, _warehouse(settings.warehouse), settings.max_reject_ratio, out
    )
    if args.json:
        print(json.dumps(result.summary()))
    return 1 if result.status == "failed" else 0


def cmd_track(args: argparse.Namespace) -> int:
    from propsync.api.config import max_commands
    from propsync.instants import now_us
    from propsync.operations.track import track_now
    from propsync.tracking import BatchShapeError, response

    settings = _settings(args)
    what = "stdin" if args.file == "-" else args.file
    body = _loads(_read_text(args.file), what)
    try:
        tb = track_now(
            _warehouse(settings.warehouse),
            settings,
            body,
            max_commands=max_commands(),
            receive_us=now_us(),
            source=args.file,
        )
    except BatchShapeError as exc:
        raise UsageError(f"{what}: {exc}") from None
    _compact_later(settings)
    print(json.dumps(response(tb, now_us())))
    return 0


def _parse_assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if name.endswith(":"):
        return name[:-1], _loads(value, f"value of {name[:-1]}")
    if not sep or not name:
        raise UsageError(f"expected PROP=VALUE or PROP:=JSON, got {text!r}")
    return name, value


def cmd_set(args: argparse.Namespace) -> int:
    from propsync.instants import now_us
    from propsync.operations.edit import EditError, apply_edit, prepare_edit, write_ids
    from propsync.store.read import get_customer

    settings = _settings(args)
    warehouse = _warehouse(settings.warehouse)
    ref = _customer_ref(args.customer)
    customer = None
    if ref.id_type is None:  # by internal id: written under one of its ids
        with warehouse.connect_published() as con:
            customer = get_customer(con, ref)
    props = dict(_parse_assignment(a) for a in args.assignments)
    stamp = now_us()
    try:
        edit = prepare_edit(
            write_ids(ref, customer, settings.hard_id_types),
            props,
            settings,
            stamp_us=stamp,
            source="propsync set",
        )
    except EditError as exc:
        raise UsageError(exc.message) from None
    try:
        result: BatchResult | None = apply_edit(warehouse, edit, settings)
    except EditError as exc:  # rejected at apply time: quarantined, and published as such
        result, rejected = None, exc.message
    _compact_later(settings)
    if result is None:
        print(f"propsync: rejected: {rejected}", file=sys.stderr)
        return 1
    print(
        f"set {len(props)} propert{'y' if len(props) == 1 else 'ies'} of {ref} "
        f"({result.properties_applied} changed) at {stamp / 1e6:.6f}; published version "
        f"{result.published_version}"
    )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from propsync.store.read import get_customer, render_customer

    _skip_collection_at_exit()
    warehouse = _reader_warehouse(args)
    ref = _customer_ref(args.customer)
    with warehouse.connect_published() as con:
        customer = get_customer(con, ref)
    print(render_customer(customer, args.include_timestamps))
    return 0


@functools.cache
def _skip_collection_at_exit() -> None:
    """Python's garbage collection at exit, over what DuckDB left, took 10-40 ms of a 0.2-0.25 s
    `propsync get`; a read leaves nothing that needs it (its connection is closed), so everything
    is frozen out of it, once the command is done (atexit: in a test process, at its end)."""
    atexit.register(gc.freeze)


def cmd_publish(args: argparse.Namespace) -> int:
    from propsync.store.apply import publish_pending

    settings = _settings(args)
    version = publish_pending(_warehouse(settings.warehouse), settings)
    print(f"published version {version}")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from propsync.store.compaction import compact

    settings = _settings(args)
    result = compact(_warehouse(settings.warehouse), settings, full=args.full, wait=args.wait)
    if result.skipped:
        print(f"propsync: compaction skipped: {result.skipped}", file=sys.stderr)
        return 0
    print(
        f"compacted {result.folds} time{'' if result.folds == 1 else 's'}: "
        f"{result.files_before} -> {result.files_after} files in {result.seconds:.2f} s"
    )
    return 0


def _compact_later(settings: Settings) -> None:
    """After a write from the command line: fold files in a detached process when it is due."""
    if settings.auto_compact:
        from propsync.store.compaction import start_in_background

        start_in_background(_warehouse(settings.warehouse))


def cmd_migrate(args: argparse.Namespace) -> int:
    from propsync.store.migrations import migrate

    settings = _settings(args)
    result = migrate(_warehouse(settings.warehouse), settings)
    if result.applied:
        print(
            f"upgraded warehouse {settings.warehouse} from schema version {result.from_version} "
            f"to {result.to_version}"
        )
    else:
        print(
            f"warehouse {settings.warehouse} is at schema version {result.to_version}: up to date"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from propsync.demo import run_demo

    return run_demo(Path(args.warehouse or "demo-warehouse"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propsync",
        description="Customer-properties synchronisation: every property keeps its last-update "
        "time, and only newer values win.",
    )
    parser.add_argument("--version", action="version", version=f"propsync {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--warehouse",
        help="warehouse directory (default: $PROPSYNC_WAREHOUSE or ./warehouse)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_import(sub, common)
    p = sub.add_parser(
        "track", parents=[common], help="apply a tracking-API batch body from a file"
    )
    p.add_argument("file", help='JSON file with {"commands": [...]}, or - for stdin')
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("set", parents=[common], help="edit properties as the UI does (stamped now)")
    p.add_argument("customer", help="internal id or ID_TYPE:ID_VALUE")
    p.add_argument("assignments", nargs="+", metavar="PROP=VALUE", help="PROP=text or PROP:=JSON")
    p.set_defaults(func=cmd_set)

    p = sub.add_parser("get", parents=[common], help="print a customer's properties (published)")
    p.add_argument("customer", help="internal id or ID_TYPE:ID_VALUE")
    p.add_argument("--include-timestamps", action="store_true", help="add last_update per property")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("publish", parents=[common], help="publish the working database if ahead")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "compact", parents=[common], help="fold the published files into fewer (store/compaction)"
    )
    p.add_argument("--full", action="store_true", help="fold everything into one new base")
    p.add_argument("--wait", action="store_true", help="wait for a compaction already running")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser(
        "migrate", parents=[common], help="upgrade the warehouse to this release's schema"
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("demo", parents=[common], help="run the demo on the shipped sample data")
    p.set_defaults(func=cmd_demo)

    _add_plugin_commands(sub, common)
    return parser


def _add_import(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "import", parents=[common], help="import a snapshot (CSV, Parquet, JSON Lines)"
    )
    p.add_argument("source", help="snapshot file: .csv, .parquet or .jsonl")
    p.add_argument("--mapping", required=True, help="mapping model (JSON)")
    p.add_argument(
        "--started-at",
        help="default update time of every row: UNIX seconds or ISO 8601 (default: now)",
    )
    p.add_argument("--legacy", action="store_true", help="load without timestamps (migration)")
    p.add_argument("--batch-id", help="explicit batch id (default: derived from file and mapping)")
    p.add_argument(
        "--max-reject-ratio",
        type=float,
        help="fail the batch when more than this share of rows has rejections "
        "(default: $PROPSYNC_MAX_REJECT_RATIO or 0.05)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON document on stdout (the text summary on stderr)",
    )
    p.set_defaults(func=cmd_import)


def _add_plugin_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The HTTP service's commands (``serve``, ``apply``) and ``sql``; their heavy imports happen
    on use."""
    from propsync import sqlshell
    from propsync.api.commands import add_commands

    add_commands(sub, common)
    sqlshell.add_command(sub, common)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit: a reader that went away shows up below
    except BrokenPipeError:
        # Stdout was closed early (`propsync get ... | head -1`): end quietly, as Unix tools do,
        # by Python's recipe (the signal module's "Note on SIGPIPE"): the interpreter's own
        # flush at exit must not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UnknownCustomer as exc:
        print(f"propsync: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except PropsyncError as exc:
        print(f"propsync: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("propsync: interrupted; the published version is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
