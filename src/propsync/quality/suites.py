"""Suite files: ``quality/expectations/<name>.json`` (package data), in GX 1.x ``ExpectationSuite`` JSON.

An expectation may carry ``meta.check`` (the rule in words, shown in failures) and
``meta.unless`` (a flag such as ``legacy`` under which it does not apply).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from propsync.errors import UsageError

STAGED_CELLS = "staged_batch_cells"
STAGED_SUMMARY = "staged_batch_summary"
MERGED_AUDIT = "merged_audit"


def expectations_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, else ``$PROPSYNC_EXPECTATIONS``, else the suites shipped in the package
    (``propsync/quality/expectations/``)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("PROPSYNC_EXPECTATIONS", "").strip()
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "expectations"


def load_suite(
    name: str, directory: str | os.PathLike[str] | None = None, flags: Iterable[str] = ()
) -> dict[str, Any]:
    path = expectations_dir(directory) / f"{name}.json"
    try:
        suite: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read expectation suite {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"expectation suite {str(path)!r} is not valid JSON: {exc}") from None
    active = set(flags)
    suite["expectations"] = [
        e for e in suite.get("expectations", []) if e.get("meta", {}).get("unless") not in active
    ]
    return suite
