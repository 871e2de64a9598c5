"""Published versions without copies: a small catalog of views over immutable Parquet files.

A published version is the list of files that together hold its state, oldest first::

    segments/s000001-000118.parquet       the base: every row as of version 118 (compaction)
    segments/s000119-000126.parquet       changes of versions 119..126, folded (compaction)
    runs/r000127.parquet                  the changes one batch committed (store/runs.py)
    ...                                   each with a ``.history.parquet`` file: batch records

``published/v000127.duckdb`` is that version's **catalog**: a DuckDB file of a few hundred KB
holding the file list (``internal.files``) and the documented views over it
(``sql/catalog/``: ``properties``, ``customer_ids``, ``customer_aliases``,
``customer_properties``, ``customers``, ``customers_wide``, ``batches``, ``rejections``,
``quality_results``). Publishing a version writes its run and a new catalog: the cost follows the
batch and the number of files, never the warehouse. Compaction (``store/compaction.py``) folds
files into fewer and writes the same version's catalog again as a new generation
(``v000127.c1.duckdb``); the logical state does not change.

Every row carries its customer's integer key (``customer_key``, the working database's) beside its
internal id (``customer_id``, the text readers see): compaction groups changes by key and the
read model keys its rows by it, while the views analysts filter match rows by id, so that a
filter on ``customer_id`` reaches the files' scans (a view that joined keyed rows to their names
made a point query 60x slower: DuckDB's join filter does not pass an anti join). The views in
schema ``internal`` (``customer_aliases``, ``customer_ids``, ``current_properties``) carry the
keys; the documented ones are their projections.

The views never compare timestamps: every change won against the state it was committed on, so
a property's value is its newest change (by version), otherwise its row in the base. Customer
merges are rows too: the views follow them (ids to the survivor, the merged-away customer's
properties dropped), and compaction folds them into the base.

The views name files by absolute path (DuckDB resolves a relative path against the reader's
working directory, not the catalog's); ``internal.files`` keeps them relative to the warehouse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import duckdb

from propsync import sql
from propsync.files import (
    READ_ONLY_MODE,
    atomic_write_text,
    replace_durably,
    temporary_name,
)

# The shape of the published files: the schema version that introduced it (3: catalogs over
# Parquet files; 5: each row with its customer's key, sql/runs/write_run.sql). Files of another
# shape are never continued: the next publish writes the whole state as a new base.
LAYOUT = 5
CATALOG_FILE = re.compile(r"^v(\d{6,})(?:\.c(\d+))?\.duckdb$")
PARTIAL_CATALOG = re.compile(r"^\.v\d{6,}(?:\.c\d+)?\.(?:duckdb|manifest\.json)\.tmp")
HISTORY_SUFFIX = ".history.parquet"
MANIFEST_SUFFIX = ".manifest.json"

# Empty relations of the two file shapes, for a version without changes (or without a base).
_NO_ROWS = (
    "SELECT NULL::VARCHAR AS kind, NULL::VARCHAR AS customer_id, NULL::VARCHAR AS name, "
    "NULL::VARCHAR AS value, NULL::BIGINT AS update_ts, NULL::VARCHAR AS batch_id, "
    "NULL::BIGINT AS version, NULL::BIGINT AS customer_key, NULL::BIGINT AS merged_key "
    "WHERE false"
)


@dataclass(frozen=True)
class Segment:
    """Files holding the changes of versions ``first``..``last`` (the base: ``first`` = 1)."""

    first: int
    last: int
    changes: str  # relative to the warehouse root
    history: str
    rows: int

    @property
    def paths(self) -> tuple[str, str]:
        return (self.changes, self.history)


@dataclass(frozen=True)
class Manifest:
    version: int
    generation: int
    segments: tuple[Segment, ...]
    property_names: tuple[str, ...] = ()
    # Files a compaction replaced, with when (UNIX µs): kept for readers of older catalogs until
    # the file retention has passed (``Settings.file_retention_seconds``).
    retired: tuple[tuple[str, int], ...] = field(default=())
    # The warehouse directory the catalog's views name (absolute): a warehouse that was copied or
    # moved has catalogs naming the old place until its next publish.
    root: str = ""
    # A digest of the view definitions the catalog was written with (``views_digest``): the next
    # catalog starts from a copy of this one only when they are the same.
    views: str = ""
    layout: int = LAYOUT  # the shape of its files (manifests written before layout 5: 3)

    def files(self) -> set[str]:
        return {p for s in self.segments for p in s.paths}


def catalog_name(version: int, generation: int = 0) -> str:
    suffix = f".c{generation}" if generation else ""
    return f"v{version:06d}{suffix}.duckdb"


def parse_catalog_name(name: str) -> tuple[int, int] | None:
    m = CATALOG_FILE.match(name)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def _source(root: Path, paths: Sequence[str], empty: str) -> str:
    if not paths:
        return empty
    files = ", ".join(sql.literal(str(root / p)) for p in paths)
    return f"SELECT * FROM read_parquet([{files}])"


def _history_empty() -> str:
    return (
        "SELECT NULL::BIGINT AS run_version, NULL::VARCHAR AS batch_id, NULL AS batch, "
        "NULL AS rejections, NULL AS quality WHERE false"
    )


def create_views(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    segments: Sequence[Segment],
    property_names: Iterable[str],
    *,
    base: bool = True,
) -> None:
    """Create schema ``internal`` and the published views over ``segments`` on ``con``.

    With ``base`` the first segment is the base (the state before the others); without, every
    segment is a change (a compaction folding changes only).
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS internal")
    _file_views(con, root, segments, base=base)
    for statement in _view_statements():
        con.execute(statement)
    con.execute(wide_view(property_names))


def _file_views(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    segments: Sequence[Segment],
    *,
    base: bool = True,
    create: str = "CREATE",
) -> None:
    """The three views that name files; every other view reads through them."""
    base_segments = list(segments[:1]) if base else []
    change_segments = list(segments[1:] if base else segments)
    # A view over files cannot bind parameters: the paths are the warehouse's own, quoted.
    con.execute(
        f"{create} VIEW internal.base_rows AS "
        + _source(root, [s.changes for s in base_segments], _NO_ROWS)
    )
    con.execute(
        f"{create} VIEW internal.change_rows AS "
        + _source(root, [s.changes for s in change_segments], _NO_ROWS)
    )
    histories = [s.history for s in segments]
    con.execute(
        f"{create} VIEW internal.history AS "
        + (_source(root, histories, "") if histories else _history_empty())
    )


def _view_statements() -> list[str]:
    return [*sql.folder_statements("catalog/internal"), *sql.folder_statements("catalog")]


def views_digest() -> str:
    """Identifies the view definitions of this release (and the catalog layout)."""
    text = "\x00".join([str(LAYOUT), _NO_ROWS, _history_empty(), *_view_statements()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def wide_view(property_names: Iterable[str], create: str = "CREATE") -> str:
    """``customers_wide``: one row per customer, one JSON column per property name in use.

    A view cannot bind parameters, so property names (user data) are quoted as identifiers and as
    string literals, never pasted raw."""
    columns = "".join(
        f",\n    any_value(value::JSON) FILTER (WHERE property = {sql.literal(n)}) AS {sql.quote_ident(n)}"
        for n in sorted(property_names)
    )
    return (
        f"{create} VIEW customers_wide AS\n"
        f"SELECT customer_id{columns}\n"
        "FROM properties\n"
        "GROUP BY customer_id"
    )


def manifest_path(catalog_path: Path) -> Path:
    """The catalog's file list as JSON beside it: what writers read (opening the DuckDB catalog
    costs tens of milliseconds, this file a fraction of one)."""
    return catalog_path.with_name(catalog_path.name.removesuffix(".duckdb") + MANIFEST_SUFFIX)


def _manifest_json(manifest: Manifest) -> str:
    return json.dumps(
        {
            "version": manifest.version,
            "generation": manifest.generation,
            "segments": [asdict(s) for s in manifest.segments],
            "property_names": list(manifest.property_names),
            "retired": [list(r) for r in manifest.retired],
            "root": manifest.root,
            "views": manifest.views,
            "layout": manifest.layout,
        }
    )


def _manifest_from_json(text: str) -> Manifest:
    data = json.loads(text)
    return Manifest(
        int(data["version"]),
        int(data["generation"]),
        tuple(Segment(**s) for s in data["segments"]),
        tuple(data["property_names"]),
        tuple((str(p), int(t)) for p, t in data["retired"]),
        str(data.get("root", "")),
        str(data.get("views", "")),
        int(data.get("layout", 3)),
    )


# Opens a DuckDB file read-write for the duration of a ``with`` (a writer instance's attach).
FileOpener = Callable[[Path], contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]]


@contextlib.contextmanager
def _connect_file(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()


def write_catalog(
    root: Path,
    manifest: Manifest,
    previous: tuple[Path, Manifest] | None = None,
    open_file: FileOpener | None = None,
) -> Path:
    """Write ``manifest``'s catalog under ``published/`` (tmp name, fsync, read-only, rename), its
    JSON manifest first: a catalog in place always has its manifest beside it.

    With ``previous`` (the current catalog and its manifest) written by this release for the same
    place, the new catalog starts as a copy of it and only the views that name files (and
    ``customers_wide`` when the property names changed) are replaced: binding every view anew
    costs several times that. DuckDB binds a view's body when it is queried, so the views over
    the replaced ones need no change. ``open_file`` opens the new file (default: a DuckDB
    connection of its own; the HTTP service attaches it to its writer instance instead, which
    saves a DuckDB start-up per publish)."""
    directory = root / "published"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = replace(manifest, views=views_digest())
    final = directory / catalog_name(manifest.version, manifest.generation)
    tmp = temporary_name(final)
    remove_partial(directory)
    listing = manifest_path(final)
    base = previous if previous is not None and _continues(previous[1], manifest) else None
    try:
        atomic_write_text(
            listing, _manifest_json(manifest), mode=READ_ONLY_MODE, sync_directory=False
        )
        if base is not None:
            shutil.copyfile(base[0], tmp)
            os.chmod(tmp, 0o644)
        with (open_file or _connect_file)(tmp) as con:
            con.execute("BEGIN TRANSACTION")
            if base is None:
                create_views(con, root, manifest.segments, manifest.property_names)
                for statement in sql.folder_statements("catalog/tables"):
                    con.execute(statement)
            else:
                _file_views(con, root, manifest.segments, create="CREATE OR REPLACE")
                if base[1].property_names != manifest.property_names:
                    con.execute(wide_view(manifest.property_names, "CREATE OR REPLACE"))
                for table in ("files", "meta", "property_names", "retired"):
                    con.execute(f"DELETE FROM internal.{table}")
            _fill_tables(con, manifest)
            con.execute("COMMIT")
        replace_durably(tmp, final, mode=READ_ONLY_MODE)
    except BaseException:
        remove_partial(directory)
        raise
    return final


def _continues(previous: Manifest, manifest: Manifest) -> bool:
    return previous.views == manifest.views and previous.root == manifest.root != ""


def _fill_tables(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
    # One statement per table: executemany prepares and runs a statement per row (about 1 ms each).
    segments = manifest.segments
    con.execute(
        "INSERT INTO internal.files SELECT * FROM (SELECT unnest($position::INTEGER[]), "
        "unnest($first::BIGINT[]), unnest($last::BIGINT[]), unnest($changes::VARCHAR[]), "
        "unnest($history::VARCHAR[]), unnest($rows::BIGINT[]))",
        {
            "position": list(range(len(segments))),
            "first": [s.first for s in segments],
            "last": [s.last for s in segments],
            "changes": [s.changes for s in segments],
            "history": [s.history for s in segments],
            "rows": [s.rows for s in segments],
        },
    )
    con.execute(
        "INSERT INTO internal.meta VALUES ('version', $v), ('generation', $g), ('layout', $l)",
        {"v": str(manifest.version), "g": str(manifest.generation), "l": str(manifest.layout)},
    )
    con.execute(
        "INSERT INTO internal.property_names SELECT unnest($names::VARCHAR[])",
        {"names": list(manifest.property_names)},
    )
    con.execute(
        "INSERT INTO internal.retired SELECT * FROM "
        "(SELECT unnest($paths::VARCHAR[]), unnest($at::BIGINT[]))",
        {"paths": [p for p, _ in manifest.retired], "at": [t for _, t in manifest.retired]},
    )


def remove_partial(directory: Path) -> None:
    """Remove catalogs being written when a writer crashed (and DuckDB's files beside them)."""
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if PARTIAL_CATALOG.match(name):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (directory / name).unlink()


def read_manifest(path: Path) -> Manifest | None:
    """The manifest of the catalog at ``path``: the JSON file beside it, written before the
    catalog itself. None when there is none: a full copy of a working database, as schema
    versions 1 and 2 published."""
    try:
        return _manifest_from_json(manifest_path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def connect(
    root: Path,
    path: Path,
    config: dict[str, str | bool | int | float | list[str]] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the catalog at ``path`` of the warehouse at ``root``. When the
    catalog names another directory (the warehouse was copied or moved since it was written),
    the same views over this warehouse's files, in memory: the next publish writes catalogs with
    the new place."""
    manifest = read_manifest(path)
    # Files of an older shape are read only through the views written with them.
    if manifest is None or manifest.root == str(root.resolve()) or manifest.layout != LAYOUT:
        return duckdb.connect(str(path), read_only=True, config=config or {})
    con = duckdb.connect(":memory:", config=config or {})
    try:
        create_views(con, root.resolve(), manifest.segments, manifest.property_names)
    except BaseException:
        con.close()
        raise
    return con


def with_runs(
    manifest: Manifest, runs: Sequence[Segment], property_names: Sequence[str]
) -> Manifest:
    """The next version's manifest: ``manifest`` and the runs committed since."""
    return replace(
        manifest,
        version=runs[-1].last if runs else manifest.version,
        generation=0,
        segments=manifest.segments + tuple(runs),
        property_names=tuple(property_names),
    )
