"""Run-scoped, immutable staging: a source is copied once, with its SHA-256, and never changed.

A staged file is named after its checksum (``source-<sha256[:16]>.csv``) and written through a
temporary file and an atomic rename, so a half-written file never has a final name. Its model
(``payloads.StagedFile``, passed on through XCom and kept beside it as ``.manifest.json``) names
the file and its checksum; every later task verifies the bytes before using them, so a retry sees
exactly what the first try saw. Re-running the extract of a run whose source has not changed
stages the same file again (a no-op); a changed source gets a new name and, downstream, a new
batch id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from propsync.errors import SourceError, UsageError
from propsync.files import READ_ONLY_MODE, atomic_write_text, replace_durably
from propsync.orchestration.payloads import StagedFile, StagedSource
from propsync.sql import quote_ident

CHUNK = 1 << 20
FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def is_uri(location: str) -> bool:
    return "://" in location


def _open_source(location: str) -> IO[bytes]:
    """Open a local path or any URI that Airflow's ObjectStoragePath reads."""
    try:
        if is_uri(location) and not location.startswith("file://"):
            from airflow.sdk import ObjectStoragePath

            return ObjectStoragePath(location).open("rb")  # type: ignore[no-untyped-call, no-any-return]
        path = location.removeprefix("file://")
        return open(path, "rb")
    except FileNotFoundError:
        raise SourceError(f"source {location!r} does not exist", path=location) from None
    except OSError as exc:
        raise SourceError(f"cannot read {location!r}: {exc}", path=location) from None


def suffix_of(location: str) -> str:
    name = location.rstrip("/").rsplit("/", 1)[-1]
    return ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""


@contextmanager
def _atomic_target(directory: Path, suffix: str) -> Iterator[tuple[IO[bytes], Path]]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".staging-", suffix=suffix, dir=directory)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out, tmp_path
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _finish(tmp: Path, directory: Path, stem: str, digest: str, suffix: str) -> Path:
    final = directory / f"{stem}-{digest[:16]}{suffix}"
    if final.exists() and sha256_file(final) == digest:
        tmp.unlink()
    else:
        replace_durably(tmp, final, mode=READ_ONLY_MODE)
    return final


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def count_rows(path: Path, fmt: str) -> int:
    """Rows of a staged file, counted on their own (not by the normaliser) for reconciliation."""
    import polars as pl

    from propsync.normalize import scan_csv_text

    try:
        if fmt == "csv":  # Polars' rows, blank lines included (UpdateBatch.blank_lines)
            lf = scan_csv_text(path, truncate=True)
        elif fmt == "parquet":
            lf = pl.scan_parquet(path)
        else:  # the non-blank lines: also for a file Polars cannot read with one type per key
            lf = pl.scan_lines(path).filter(~pl.col("line").str.contains(r"^[ \t\r]*$"))
        return int(lf.select(pl.len()).collect().item())
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"cannot read staged {str(path)!r}: {exc}", path=str(path)) from None


def _copy(location: str, directory: Path, stem: str) -> StagedFile:
    suffix = suffix_of(location)
    h = hashlib.sha256()
    size = 0
    with _open_source(location) as src, _atomic_target(directory, suffix) as (out, tmp):
        for chunk in iter(lambda: src.read(CHUNK), b""):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
    digest = h.hexdigest()
    return StagedFile(
        origin=location,
        path=_finish(tmp, directory, stem, digest, suffix),
        sha256=digest,
        bytes=size,
        format=FORMATS.get(suffix, suffix.lstrip(".")),
    )


def stage_file(location: str, directory: Path, *, stem: str) -> StagedFile:
    """Copy ``location`` (e.g. the mapping) into ``directory`` under its checksum."""
    staged = _copy(location, directory, stem)
    _write_manifest(directory, stem, staged)
    return staged


def stage_source(location: str, directory: Path) -> StagedSource:
    """Copy the source ``location`` into ``directory`` under its checksum and count its rows."""
    if FORMATS.get(suffix_of(location)) not in ("csv", "parquet", "jsonl"):
        raise SourceError(
            f"cannot tell the format of {location!r}: use .csv, .parquet or .jsonl", path=location
        )
    staged = _copy(location, directory, "source")
    source = StagedSource(**staged.fields(), rows=count_rows(staged.path, staged.format))
    _write_manifest(directory, "source", source)
    return source


def quote_table(table: str) -> str:
    """``schema.table`` with each part checked and double-quoted (never pasted raw into SQL)."""
    parts = table.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise UsageError(
            f"table {table!r} is not a plain [schema.]table name; use the query parameter instead"
        )
    return ".".join(quote_ident(p) for p in parts)


def stage_query(
    conn_id: str,
    directory: Path,
    *,
    table: str | None = None,
    query: str | None = None,
    chunk_rows: int = 100_000,
) -> StagedSource:
    """Extract a table or a query through an Airflow connection (common.sql) into Parquet.

    Rows are fetched in chunks; the staged Parquet file is the immutable copy the run works on.
    """
    import polars as pl
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    if (table is None) == (query is None):
        raise UsageError("give exactly one of table and query for a database source")
    sql = f"SELECT * FROM {quote_table(table)}" if table is not None else str(query)
    hook = BaseHook.get_connection(conn_id).get_hook()  # type: ignore[no-untyped-call]
    if not isinstance(hook, DbApiHook):
        raise UsageError(f"connection {conn_id!r} is not an SQL database connection")
    # The hook's DB-API connection, fetched in batches by Polars (common.sql's own polars
    # chunking yields columns, not frames, with Polars 2). Types come from the database.
    conn = hook.get_conn()
    try:
        frame = pl.read_database(
            sql, connection=conn, batch_size=chunk_rows, infer_schema_length=None
        )
    finally:
        conn.close()
    if frame.width == 0:
        raise SourceError(f"query on {conn_id!r} returned no columns: {sql}", path=conn_id)
    with _atomic_target(directory, ".parquet") as (out, tmp):
        frame.write_parquet(out)
    digest = sha256_file(tmp)
    final = _finish(tmp, directory, "source", digest, ".parquet")
    origin = f"{conn_id}:{table}" if table is not None else f"{conn_id}:query"
    source = StagedSource(
        origin=origin,
        sql=sql,
        path=final,
        sha256=digest,
        bytes=final.stat().st_size,
        format="parquet",
        rows=frame.height,
    )
    _write_manifest(directory, "source", source)
    return source


def _write_manifest(directory: Path, stem: str, staged: StagedFile) -> None:
    target = directory / f"{stem}-{staged.sha256[:16]}.manifest.json"
    manifest = staged.model_dump(mode="json", exclude_none=True)
    atomic_write_text(target, json.dumps(manifest, indent=2, sort_keys=True))


def verified(staged: StagedFile) -> Path:
    """The staged file after checking its checksum: retries see the same bytes."""
    path = staged.path
    if not path.is_file():
        raise SourceError(f"staged file {str(path)!r} is missing", path=str(path))
    digest = sha256_file(path)
    if digest != staged.sha256:
        raise SourceError(
            f"staged file {str(path)!r} changed after staging: sha256 {digest} != {staged.sha256}",
            path=str(path),
        )
    return path
