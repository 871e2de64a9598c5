"""The applier's state: cursors (bytes applied per segment) and the intent of the batch under way,
and the lock that makes one applier at a time."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from propsync.errors import PropsyncError
from propsync.files import atomic_write_text
from propsync.journal.layout import APPLY_LOCK, STATE_FILE
from propsync.locks import exclusive_lock

log = logging.getLogger("propsync.journal")


# -- applier state --------------------------------------------------------------------------------


@dataclass
class ApplyState:
    path: Path
    cursors: dict[str, int] = field(default_factory=dict)
    pending: dict[str, Any] | None = None

    @classmethod
    def load(cls, jdir: Path) -> ApplyState:
        path = jdir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except ValueError as exc:
            raise PropsyncError(f"journal state {str(path)!r} is unreadable: {exc}") from None
        cursors = {str(k): int(v) for k, v in data.get("cursors", {}).items()}
        return cls(path, cursors, data.get("pending"))

    def save(self) -> None:
        data = json.dumps({"cursors": self.cursors, "pending": self.pending}, indent=1)
        atomic_write_text(self.path, data)


def apply_lock(jdir: Path, timeout: float) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(
        jdir / APPLY_LOCK,
        timeout,
        lambda holder: (
            f"the journal of {str(jdir.parent)!r} is being applied by another process "
            f"(pid {holder}); gave up after {timeout:g} s"
        ),
    )
