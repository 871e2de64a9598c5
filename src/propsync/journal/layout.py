"""Where the journal lives and how its files are named; whether a segment's writer is alive."""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

from propsync.errors import PropsyncError

log = logging.getLogger("propsync.journal")


JOURNAL_DIR = "journal"
STATE_FILE = "state.json"
APPLY_LOCK = "apply.lock"


SEGMENT_RE = re.compile(r"^\d{20}-\d+-[0-9a-f]{8}\.jsonl$")
TMP_PREFIX = ".tmp-"


class JournalUnavailable(PropsyncError):
    """The journal cannot take records (closed, or the disk failed); nothing was acknowledged."""

    retryable = True


def journal_dir(root: str | os.PathLike[str]) -> Path:
    return Path(root) / JOURNAL_DIR


def writer_alive(path: Path) -> bool | None:
    """Whether a live writer holds the segment's flock; None when the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases our probe lock
