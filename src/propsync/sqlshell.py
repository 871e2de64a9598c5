"""``propsync sql``: SQL on the latest published version, read-only, without a DuckDB shell.

The installed packages bring DuckDB's Python module, not its command-line shell, so analysts get
this way in: a query as an argument, SQL piped on stdin, or a small prompt on a terminal. The
session is the same read-only connection ``propsync get`` uses, so it can neither change what
readers see nor hold a lock a writer needs.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from propsync.errors import PropsyncError

if TYPE_CHECKING:
    import duckdb

FORMATS = ("table", "csv", "json", "jsonl")
PROMPT, MORE = "propsync> ", "     ...> "


class SqlError(PropsyncError):
    """A statement DuckDB refused (a syntax error, an unknown table, a write on a read-only
    session): the user's to fix, so retrying does not help."""

    exit_code = 1
    retryable = False


def add_command(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sql",
        parents=[common],
        help="run SQL on the latest published version (read-only)",
        description="Run SQL on the latest published version, read-only: the views "
        "customer_properties, customers_wide, customers, batches, rejections (docs/warehouse.md). "
        "Without QUERY: SQL from stdin, or a prompt on a terminal (end statements with ';', "
        "leave with .quit or Ctrl-D).",
    )
    p.add_argument("query", nargs="?", help="SQL to run (several statements: the last one's rows)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output (default: table)")
    p.add_argument(
        "--max-rows", type=int, default=40, help="rows a table shows (default 40; csv/json: all)"
    )
    p.set_defaults(func=cmd_sql)


def cmd_sql(args: argparse.Namespace) -> int:
    from propsync.config import Settings
    from propsync.store.warehouse import Warehouse

    settings = Settings.from_env(warehouse=args.warehouse)
    with Warehouse(settings.warehouse).connect_published() as con:
        if args.query is not None:
            run(con, args.query, args.format, args.max_rows)
        elif sys.stdin.isatty():
            return prompt(con, args.format, args.max_rows)
        else:
            run(con, sys.stdin.read(), args.format, args.max_rows)
    return 0


def run(con: duckdb.DuckDBPyConnection, query: str, fmt: str, max_rows: int) -> None:
    """Run ``query`` and print the rows of its last statement (nothing for one without rows)."""
    import duckdb

    try:
        relation = con.sql(query)
        if relation is None:
            return
        if fmt == "table":
            relation.show(max_rows=max_rows)
            return
        columns = relation.columns
        rows = relation.fetchall()
    except duckdb.Error as exc:
        raise SqlError(str(exc).strip()) from None
    write(sys.stdout, fmt, columns, rows)


def write(out: TextIO, fmt: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        json.dump([dict(zip(columns, r, strict=True)) for r in rows], out, default=str)
        out.write("\n")
    else:
        for r in rows:
            out.write(json.dumps(dict(zip(columns, r, strict=True)), default=str) + "\n")


def prompt(con: duckdb.DuckDBPyConnection, fmt: str, max_rows: int) -> int:
    """A minimal prompt: statements end with ';'; an error is printed and the session goes on."""
    print("propsync sql: the latest published version, read-only. End with ';', .quit to leave.")
    pending: list[str] = []
    while True:
        try:
            line = input(MORE if pending else PROMPT)
        except EOFError:
            print()
            return 0
        if not pending and line.strip() in (".quit", ".exit", "\\q"):
            return 0
        pending.append(line)
        text = "\n".join(pending)
        if not text.rstrip().endswith(";"):
            continue
        pending.clear()
        try:
            run(con, text, fmt, max_rows)
        except SqlError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
