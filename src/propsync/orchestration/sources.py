"""Where the snapshot of a run lands: ``$PROPSYNC_LANDING/customers/{date}.{csv,parquet,jsonl}``.

The location is a template (``PROPSYNC_SNAPSHOT_SOURCE``, default ``{landing}/customers/{date}``)
rendered with the run's placeholders; without an extension each supported one is tried. Paths
and any URI that Airflow's ObjectStoragePath reads (``s3://``, ``gs://``, ``file://`` ...) work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from propsync.errors import SourceError, UsageError
from propsync.orchestration.settings import SNAPSHOT_EXTENSIONS
from propsync.orchestration.staging import FORMATS, is_uri, suffix_of


def exists(location: str) -> bool:
    if is_uri(location) and not location.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        return bool(ObjectStoragePath(location).exists())
    return Path(location.removeprefix("file://")).is_file()


def render(template: str, landing: str, placeholders: dict[str, str]) -> str:
    try:
        return template.format(landing=landing, **placeholders)
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(
            f"bad location template {template!r}: {exc!s}; placeholders are "
            f"{{landing}}, {', '.join('{' + k + '}' for k in sorted(placeholders))}"
        ) from None


def candidates(location: str) -> list[str]:
    if FORMATS.get(suffix_of(location)) in ("csv", "parquet", "jsonl"):
        return [location]
    return [location + ext for ext in SNAPSHOT_EXTENSIONS]


@dataclass(frozen=True)
class SnapshotLocation:
    source: str | None  # the snapshot found, or None while it has not landed
    mapping: str
    tried: list[str]

    def describe_missing(self) -> str:
        return "no snapshot at " + " or ".join(self.tried)


def find_snapshot(
    template: str, mapping_template: str, landing: str, placeholders: dict[str, str]
) -> SnapshotLocation:
    """The snapshot of a run, if it has landed. Raises if two formats landed for one date."""
    tried = candidates(render(template, landing, placeholders))
    found = [c for c in tried if exists(c)]
    if len(found) > 1:
        raise SourceError(
            f"ambiguous snapshot: {' and '.join(found)} all exist; keep exactly one",
            path=found[0],
        )
    mapping = render(mapping_template, landing, placeholders)
    return SnapshotLocation(found[0] if found else None, mapping, tried)
