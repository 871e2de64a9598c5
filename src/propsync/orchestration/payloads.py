"""What the import DAGs' tasks pass each other through XCom: one frozen model per stage.

Each stage's model extends the previous one with that stage's section, so a task's XCom holds
everything the run knows so far (extract -> ``Extracted``, normalise -> ``Normalised``, validate ->
``Validated``, merge -> ``Merged``, audit -> ``Audited``); publish returns ``Published``.

Over XCom they travel as plain JSON (``to_xcom``), read back with ``from_xcom``, in the DAG task
bodies. Returning the models themselves would rely on Airflow's serde, which stores a
``__classname__`` envelope, refuses to load it in the next task unless the class is listed in
``[core] allowed_deserialization_classes`` (default ``airflow.*``) and shows it in the UI as one
line of text instead of a JSON tree.

It imports only pydantic and ``propsync.errors``: the DAG files may name it at parse time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from propsync.errors import PayloadInvalid


class Payload(BaseModel):
    # extra="forbid": a key no stage defines is a wiring mistake, not data to carry along.
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_xcom(cls, value: object) -> Self:
        """The model of an upstream task's XCom value; ``PayloadInvalid`` names each bad field."""
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise PayloadInvalid(
                f"the payload is not a valid {cls.__name__}: {problems}", model=cls.__name__
            ) from None

    def to_xcom(self) -> dict[str, Any]:
        """Plain JSON for XCom (paths as strings), shown as a tree in the Airflow UI."""
        return self.model_dump(mode="json")

    def fields(self) -> dict[str, Any]:
        """The fields as they are (nested models kept), for the next stage's model to extend."""
        return dict(self)


# -- extract ------------------------------------------------------------------------------------


class SnapshotLocation(Payload):
    """A landed snapshot of ``customer_snapshots`` and its mapping (the sensor's XCom)."""

    source: str
    mapping: str
    date: str


class StagedFile(Payload):
    """A file copied into the run's staging directory under its checksum."""

    origin: str
    path: Path
    sha256: str
    bytes: int
    format: str


class StagedSource(StagedFile):
    """The staged source: its rows counted on their own (for reconciliation)."""

    rows: int
    sql: str | None = None  # the statement of a database source


class Extracted(Payload):
    dag_id: str
    run_key: str
    run_dir: Path
    snapshot_date: str | None = None  # customer_snapshots only
    source: StagedSource
    mapping: StagedFile
    started_at_us: int  # the default update time (also of a legacy import's batch id)
    legacy: bool = False
    max_reject_ratio: float | None = None  # None: PROPSYNC_MAX_REJECT_RATIO


# -- normalise ----------------------------------------------------------------------------------


class NormaliseMeta(Payload):
    """``batch-<batch_id>/normalise.json``: what normalising the batch found, written once."""

    batch_id: str
    normalised_at_us: int
    max_future_skew_us: int
    started_at_us: int
    legacy: bool
    property_types: dict[str, str]
    rows_read: int
    cells: int
    rejections: int


class Normalised(Extracted):
    batch_id: str
    batch_dir: Path
    normalised: NormaliseMeta


# -- validate -----------------------------------------------------------------------------------


class StagedQuality(Payload):
    staged: tuple[str, ...]  # the Data Docs pages of the staged suites


class Validated(Normalised):
    quality: StagedQuality


# -- merge --------------------------------------------------------------------------------------


class MergeMetrics(Payload):
    """The post-merge metrics (``audit.merge_metrics``) that the ``merged_audit`` suite checks."""

    duplicate_keys: int
    timestamps_went_backwards: int
    customers_without_id: int
    cells_incoming: int
    properties_applied: int
    properties_stored: int
    properties_stale: int
    cells_rejected: int
    cells_accounted: int
    rows_read: int
    source_rows: int
    published_compared: str | None  # the published version compared with; None before any

    def checked(self) -> dict[str, int]:
        """The metrics the suite checks (the compared file is for the reader)."""
        return self.model_dump(exclude={"published_compared"})


class MergeSummary(Payload):
    batch_id: str
    status: Literal["applied", "already_applied"]
    message: str
    rows_read: int
    properties_applied: int
    properties_stale: int
    rows_rejected: int
    cells_rejected: int
    already_applied: bool
    metrics: MergeMetrics | None  # None when the batch was applied before: no audit ran


class Merged(Validated):
    merge: MergeSummary


# -- audit, publish -----------------------------------------------------------------------------


class AuditResult(Payload):
    batch_version: int
    work_version: int
    checks_passed: int
    published_version: int


class Audited(Merged):
    audit: AuditResult


class Published(Payload):
    """What publish did; also the ``extra`` of the Asset event (without its empty fields)."""

    version: int
    path: Path
    compacted_files: int | None = None  # with PROPSYNC_AUTO_COMPACT
    batch_id: str | None = None  # the import's batch; None for tracking_ingest

    def asset_extra(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
