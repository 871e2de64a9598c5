"""Durable file operations shared by the store, the runs, the journal and the orchestration."""

from __future__ import annotations

import os
from pathlib import Path

READ_ONLY_MODE = 0o444  # published versions and runs are never written again


def fsync_file(path: Path) -> None:
    """fsync ``path`` through a read-only descriptor (it may be read-only on disk already)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Make renames and new entries in directory ``path`` durable."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def replace_durably(
    tmp: Path, final: Path, *, mode: int | None = None, sync_directory: bool = True
) -> None:
    """Give ``tmp``, written completely, the name ``final`` in one step: readers see the old file
    or the whole new one, and after a crash the new one is there whole or not at all. ``mode``
    first (e.g. ``READ_ONLY_MODE``); the directory is fsync'd unless the caller does that once
    for several renames (``sync_directory=False``)."""
    if mode is not None:
        os.chmod(tmp, mode)
    fsync_file(tmp)
    os.replace(tmp, final)
    if sync_directory:
        fsync_directory(final.parent)


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before ``replace_durably`` names it: a hidden sibling."""
    return path.with_name(f".{path.name}.tmp")


def atomic_write_text(
    path: Path, text: str, *, mode: int | None = None, sync_directory: bool = True
) -> None:
    """Write ``text`` (UTF-8) to ``path`` through ``temporary_name`` and ``replace_durably``."""
    tmp = temporary_name(path)
    tmp.unlink(missing_ok=True)  # a crashed attempt's, possibly read-only already
    try:
        tmp.write_text(text, encoding="utf-8")
        replace_durably(tmp, path, mode=mode, sync_directory=sync_directory)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
