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
from propsync.files import READ_ONLY_MODE, fsync_directory, fsync_file

RUN_FILE = re.compile(r"^r(\d{6,})\.parquet$")
_PARTIAL_FILE = re.compile(r"^\.r\d{6,}\.parquet\.tmp$")

# The columns of a run file, in order (sql/runs/write_run.sql).
RUN_SCHEMA = {
    "kind": pl.String,
    "customer_id": pl.String,
    "name": pl.String,
    "value": pl.String,
    "update_ts": pl.Int64,
    "batch_id": pl.String,
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


def write_run(
    con: duckdb.DuckDBPyConnection, root: str | os.PathLike[str], version: int, batch_id: str
) -> Path:
    """Write the run of the batch being applied on ``con`` (call inside its transaction, after the
    merge, before ``COMMIT``). Reads the temp tables ``merges``, ``new_ids``,
    ``winning_properties`` and ``merged_winners`` of ``store/apply.py``."""
    directory = runs_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    final = run_path(root, version)
    tmp = directory / f".{final.name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        con.execute(sql.load("runs/write_run"), {"path": str(tmp), "batch_id": batch_id})
        os.chmod(tmp, READ_ONLY_MODE)
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_directory(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return final


def read_run(root: str | os.PathLike[str], version: int) -> pl.DataFrame:
    """The rows of version ``version``'s run; ``RunMissing`` when it is gone."""
    path = run_path(root, version)
    try:
        return pl.read_parquet(path)
    except FileNotFoundError:
        raise RunMissing(
            f"the run of version {version} is not in {str(runs_dir(root))!r} (pruned, or the "
            "warehouse was recreated): rebuild from the published version",
            version=version,
        ) from None


def versions(root: str | os.PathLike[str]) -> list[int]:
    """The versions that have a run file, oldest first."""
    try:
        names = os.listdir(runs_dir(root))
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := RUN_FILE.match(n)))


def prune(root: str | os.PathLike[str], published: int, keep: int) -> int:
    """Remove runs more than ``keep`` versions behind ``published``, and partial files of runs
    that were being written when a writer crashed (call while holding the write lock); returns
    how many files went."""
    removed = 0
    directory = runs_dir(root)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            m = RUN_FILE.match(name)
            if (m and int(m.group(1)) <= published - keep) or _PARTIAL_FILE.match(name):
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()
                    removed += 1
    return removed


def remove_runs_after(root: str | os.PathLike[str], version: int) -> None:
    """Remove runs of versions above ``version``: left from a ``work.duckdb`` that was removed and
    recreated (versions only grow otherwise), they must not be mistaken for the new ones."""
    for v in versions(root):
        if v > version:
            with contextlib.suppress(FileNotFoundError):
                run_path(root, v).unlink()
