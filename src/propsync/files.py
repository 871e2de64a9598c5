"""Durable file operations shared by the store, the runs and the journal."""

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
