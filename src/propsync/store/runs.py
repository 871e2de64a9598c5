"""Run files: each committed batch's changes, the feed that readers follow instead of re-reading
the warehouse.

``apply_batch`` writes ``runs/r000042.parquet`` for the batch that became version 42, inside the
batch's transaction and before its ``COMMIT``: the merges, the new ids and the properties that won
(``sql/runs/write_run.sql`` documents the rows). Its cost grows with the batch, never with the
warehouse. A follower that has applied version 41 reaches version 42 by applying that one file
(the HTTP service's read model, ``propsync.store.read_model``).

Crash safety: the file is written under a temporary name, fsync'd and renamed before the
transaction commits. A crash before the commit leaves a run for a version that was never
committed; the next batch to commit gets that version number and replaces the file (atomically)
before any publish could point at it. Followers only read runs up to the *published* version, so
they never see such a file. Version numbers restart at 1 only when ``work.duckdb`` is recreated;
``remove_runs_after`` then clears the old ones.

Runs are pruned ``keep`` versions behind the published version (``Settings.keep_runs``). A
follower further behind than that rebuilds from the published version (``RunMissing``).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import duckdb
import polars as pl

from propsync import sql
from propsync.errors import PropsyncError
from propsync.files import READ_ONLY_MODE, fsync_directory, replace_durably, temporary_name

RUN_FILE = re.compile(r"^r(\d{6,})\.parquet$")
HISTORY_FILE = re.compile(r"^r(\d{6,})\.history\.parquet$")
_PARTIAL_FILE = re.compile(r"^\.r\d{6,}(?:\.history)?\.parquet\.tmp$")

# The columns of a run file, in order (sql/runs/write_run.sql).
RUN_SCHEMA = {
    "kind": pl.String,
    "customer_id": pl.String,
    "name": pl.String,
    "value": pl.String,
    "update_ts": pl.Int64,
    "batch_id": pl.String,
    "version": pl.Int64,
    "customer_key": pl.Int64,
    "merged_key": pl.Int64,
}
KINDS = ("merge", "id", "property")  # the order a follower applies them in


class RunMissing(PropsyncError):
    """A run a follower needs was pruned (or never written): rebuild from a published version."""

    retryable = False

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


def runs_dir(root: str | os.PathLike[str]) -> Path:
    return Path(root) / "runs"


def run_path(root: str | os.PathLike[str], version: int) -> Path:
    return runs_dir(root) / f"r{version:06d}.parquet"


def history_path(root: str | os.PathLike[str], version: int) -> Path:
    return runs_dir(root) / f"r{version:06d}.history.parquet"


def write_run(
    con: duckdb.DuckDBPyConnection, root: str | os.PathLike[str], version: int, batch_id: str
) -> int:
    """Write the run of the batch being applied on ``con`` (call inside its transaction, after the
    merge, before ``COMMIT``) and return its row count. Reads the temp tables ``merges``,
    ``new_ids``, ``winning_properties`` and ``merged_winners`` of ``store/apply.py``.

    Also writes the run's history file: the records of the batches in ``history_pending`` (this
    one, and any that failed since the last run), which it then clears.
    """
    directory = runs_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    rows = write_file(
        con,
        run_path(root, version),
        sql.load("runs/write_run"),
        {"batch_id": batch_id, "version": version},
    )
    write_file(
        con, history_path(root, version), sql.load("runs/write_history"), {"version": version}
    )
    con.execute(sql.load("publish/clear_history_pending"))
    fsync_directory(directory)
    return rows


def write_sorted(
    con: duckdb.DuckDBPyConnection, final: Path, statement: str, params: dict[str, object]
) -> int:
    """``write_file``, then sorted by customer (``sql/compaction/sort_rows.sql``): for the large
    files of the published layout (bases, folded changes)."""
    unsorted = final.with_name(f".{final.name}.unsorted")
    try:
        write_file(con, unsorted, statement, params)
        return write_file(con, final, sql.load("compaction/sort_rows"), {"source": str(unsorted)})
    finally:
        with contextlib.suppress(FileNotFoundError):
            unsorted.unlink()


def write_file(
    con: duckdb.DuckDBPyConnection, final: Path, statement: str, params: dict[str, object]
) -> int:
    """Run the ``COPY ... TO $path`` ``statement`` into ``final``: a temporary name, read-only,
    fsync'd, renamed (the caller fsyncs the directory). Returns the rows written."""
    tmp = temporary_name(final)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        written = con.execute(statement, {**params, "path": str(tmp)}).fetchall()
        replace_durably(tmp, final, mode=READ_ONLY_MODE, sync_directory=False)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return int(written[0][0]) if written else 0


def read_run(root: str | os.PathLike[str], version: int) -> pl.DataFrame:
    """The rows of version ``version``'s run; ``RunMissing`` when it is gone."""
    path = run_path(root, version)
    try:
        return pl.read_parquet(path)
    except FileNotFoundError:
        raise run_missing(root, version) from None


def run_missing(root: str | os.PathLike[str], version: int) -> RunMissing:
    """The error for version ``version``'s run being gone."""
    return RunMissing(
        f"the run of version {version} is not in {str(runs_dir(root))!r} (pruned, or the "
        "warehouse was recreated): rebuild from the published version",
        version=version,
    )


def versions(root: str | os.PathLike[str]) -> list[int]:
    """The versions that have a run file, oldest first."""
    try:
        names = os.listdir(runs_dir(root))
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := RUN_FILE.match(n)))


def prune(
    root: str | os.PathLike[str], published: int, keep: int, protected: frozenset[str] = frozenset()
) -> int:
    """Remove runs (and their history files) more than ``keep`` versions behind ``published``
    unless a kept catalog lists them (``protected``: paths relative to the warehouse), and partial
    files of runs that were being written when a writer crashed (call while holding the write
    lock); returns how many files went."""
    removed = 0
    directory = runs_dir(root)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            m = RUN_FILE.match(name) or HISTORY_FILE.match(name)
            old = m and int(m.group(1)) <= published - keep and f"runs/{name}" not in protected
            if old or _PARTIAL_FILE.match(name):
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()
                    removed += 1
    return removed


def remove_runs_after(root: str | os.PathLike[str], version: int) -> None:
    """Remove runs of versions above ``version``: left from a ``work.duckdb`` that was removed and
    recreated (versions only grow otherwise), they must not be mistaken for the new ones."""
    for v in versions(root):
        if v > version:
            for path in (run_path(root, v), history_path(root, v)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
