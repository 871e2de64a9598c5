"""Warehouse files, the single-writer lock, and publishing.

Layout of a warehouse directory::

    work.duckdb                 the writer's database; only the lock holder opens it
    tmp/                        DuckDB's spill space for merges larger than its memory limit
    write.lock                  flock(2) lock file; holds the writer's pid
    published/v000042.duckdb    immutable published versions (the newest few are kept)
    propsync.duckdb             symlink to the current published version: what readers open

DuckDB lets no reader open a file that a writer has open, so readers never touch ``work.duckdb``.
A version is copied out only after its batch committed and passed its audit; the symlink is
swapped atomically, so a reader sees the old version or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import duckdb

from propsync import sql
from propsync.errors import NotPublished
from propsync.locks import exclusive_lock

_VERSION_FILE = re.compile(r"^v(\d{6,})\.duckdb$")


class Warehouse:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def work_path(self) -> Path:
        return self.root / "work.duckdb"

    @property
    def published_dir(self) -> Path:
        return self.root / "published"

    @property
    def current_path(self) -> Path:
        """The stable path analysts open: always the latest published version."""
        return self.root / "propsync.duckdb"

    # -- the writer -----------------------------------------------------------------------------

    def write_lock(self, timeout: float = 600.0) -> contextlib.AbstractContextManager[None]:
        """Exclusive across processes; waits up to ``timeout`` seconds for the current holder."""
        self.root.mkdir(parents=True, exist_ok=True)
        return exclusive_lock(
            self.root / "write.lock",
            timeout,
            lambda holder: (
                f"warehouse {str(self.root)!r} is locked by another writer (pid {holder}); "
                f"gave up after {timeout:g} s"
            ),
        )

    def connect_work(self, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """Open the working database (call only while holding the write lock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            "temp_directory": str(self.root / "tmp"),
            # Row order of inserts is irrelevant here, and keeping it costs memory.
            "preserve_insertion_order": False,
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        con = duckdb.connect(str(self.work_path), config=config)
        for statement in sql.schema_statements():
            con.execute(statement)
        return con

    @staticmethod
    def work_version(con: duckdb.DuckDBPyConnection) -> int:
        rows = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchall()
        return int(rows[0][0]) if rows else 0

    @staticmethod
    def set_work_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
        con.execute("DELETE FROM meta WHERE key = 'version'")
        con.execute("INSERT INTO meta VALUES ('version', $v)", {"v": str(version)})

    # -- publishing -----------------------------------------------------------------------------

    def published_version(self) -> int:
        try:
            target = os.readlink(self.current_path)
        except (FileNotFoundError, OSError):
            return 0
        m = _VERSION_FILE.match(Path(target).name)
        return int(m.group(1)) if m else 0

    def publish(self, version: int, keep: int = 3) -> Path:
        """Copy the closed, checkpointed work database out as ``version`` and point readers at it."""
        self.published_dir.mkdir(parents=True, exist_ok=True)
        final = self.published_dir / f"v{version:06d}.duckdb"
        tmp = self.published_dir / f".v{version:06d}.duckdb.tmp"
        shutil.copyfile(self.work_path, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        link_tmp = self.root / ".propsync.duckdb.tmp"
        with contextlib.suppress(FileNotFoundError):
            link_tmp.unlink()
        os.symlink(Path("published") / final.name, link_tmp)
        os.replace(link_tmp, self.current_path)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._prune(keep)
        return final

    def _prune(self, keep: int) -> None:
        versions = sorted(
            (int(m.group(1)), p)
            for p in self.published_dir.iterdir()
            if (m := _VERSION_FILE.match(p.name))
        )
        for _, path in versions[:-keep]:
            # Readers that still have an old version open keep reading it: unlink frees it later.
            path.unlink()

    # -- readers --------------------------------------------------------------------------------

    def published_file(self) -> Path:
        if not self.current_path.is_symlink() or not self.current_path.exists():
            raise NotPublished(
                f"warehouse {str(self.root)!r} has no published version yet: import something first",
                warehouse=str(self.root),
            )
        return self.current_path.resolve()

    def connect_published(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.published_file()), read_only=True)
