"""SQL statements, one per file. ``load("apply/insert_newer_properties")`` returns the text.

Values are bound as parameters. Where DuckDB takes none (file paths of ``ATTACH`` and of a
view's ``read_parquet``, names that become columns), text enters SQL only through ``literal`` and
``quote_ident``."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


def load_all() -> int:
    """Read every statement into ``load``'s cache (a long-lived process warming up); how many."""
    count = 0
    pending = [("", resources.files(__package__))]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((f"{prefix}{entry.name}/", entry))
            elif entry.name.endswith(".sql"):
                load(prefix + entry.name.removesuffix(".sql"))
                count += 1
    return count


def folder_statements(folder: str, prefix: str = "") -> list[str]:
    """Every statement of ``folder`` (whose file name starts with ``prefix``), in name order."""
    path = resources.files(__package__).joinpath(folder)
    names = sorted(
        p.name for p in path.iterdir() if p.name.endswith(".sql") and p.name.startswith(prefix)
    )
    return [load(f"{folder}/{n.removesuffix('.sql')}") for n in names]


# The documented views, the same text in work.duckdb as in a published catalog (sql/catalog/):
# projections of the keyed views of schema internal, which each defines its own way
# (sql/schema/2*_internal_*.sql over the writer's tables, sql/catalog/internal/ over the files).
_SHARED_VIEWS = (
    "catalog/01_customer_aliases",
    "catalog/02_customer_ids",
    "catalog/03_properties",
    "catalog/04_customer_properties",
    "catalog/05_customers",
)


@cache
def schema_statements() -> tuple[str, ...]:
    return (*folder_statements("schema"), *(load(name) for name in _SHARED_VIEWS))


@cache
def schema_digest() -> str:
    """Identifies the working database's schema statements of this release."""
    return hashlib.sha256("\x00".join(schema_statements()).encode()).hexdigest()[:16]


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (a property name as a column of ``customers_wide``)."""
    return '"' + name.replace('"', '""') + '"'
