"""SQL statements, one per file. ``load("apply/insert_newer_properties")`` returns the text."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


def schema_statements() -> list[str]:
    folder = resources.files(__package__).joinpath("schema")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [load(f"schema/{n.removesuffix('.sql')}") for n in names]
