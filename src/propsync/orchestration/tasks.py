"""One function per DAG task. Each takes the Airflow context or the previous task's payload (a
model of ``propsync.orchestration.payloads``; the DAG task bodies convert it from and to the JSON
that XCom holds) and returns the next payload. Every step is idempotent:

* extract copies the source under its checksum (same bytes -> same file);
* normalise writes ``batch-<batch_id>/`` once, the batch id being derived from the staged bytes,
  the mapping, ``legacy`` and the default update time (the run's data interval, never now());
* validate re-runs the suites on the same files and gets the same verdict;
* merge is a no-op for a batch id already applied; publish publishes only when the working
  database is ahead of the published version.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from propsync.config import Settings
from propsync.errors import AuditFailed, BatchRejected, PropsyncError, UsageError
from propsync.orchestration.payloads import (
    Audited,
    AuditResult,
    Extracted,
    Merged,
    MergeSummary,
    Normalised,
    NormaliseMeta,
    Published,
    SnapshotLocation,
    StagedQuality,
    StagedSource,
    Validated,
)
from propsync.orchestration.runs import ManualRun, SnapshotRun
from propsync.orchestration.settings import DataSettings
from propsync.orchestration.staging import stage_file, stage_query, stage_source, verified

if TYPE_CHECKING:
    from propsync.mapping import Mapping as MappingModel

log = logging.getLogger("propsync.orchestration")


@contextmanager
def failing_fast() -> Iterator[None]:
    """Around a task body: a data error (bad mapping, failed check, a payload that does not fit its
    model) fails the task at once with its message, as retrying the same input cannot help.
    Retryable errors (a busy warehouse lock) and unexpected ones propagate, so Airflow's retries
    apply to them.
    """
    try:
        yield
    except PropsyncError as exc:
        if exc.retryable:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc.message}") from exc


def settings() -> Settings:
    """Core settings from the environment; the warehouse must be named explicitly."""
    if not os.environ.get("PROPSYNC_WAREHOUSE", "").strip():
        raise UsageError("set PROPSYNC_WAREHOUSE to the warehouse directory for the Airflow tasks")
    s = Settings.from_env()
    return s.model_copy(update={"warehouse": s.warehouse.resolve()})


def _data(s: Settings) -> DataSettings:
    data = DataSettings.from_env(s.warehouse)
    return data.model_copy(update={"staging": data.staging.resolve()})


# -- extract ------------------------------------------------------------------------------------


def snapshot_location(context: Mapping[str, Any]) -> SnapshotLocation | None:
    """The landed snapshot of the run and its mapping, or None while it has not landed."""
    from propsync.orchestration.sources import find_snapshot

    s = settings()
    data = _data(s)
    if "{landing}" in data.snapshot_source and not os.environ.get("PROPSYNC_LANDING", "").strip():
        raise UsageError("set PROPSYNC_LANDING to the landing location (a path or a URI)")
    run = SnapshotRun.from_context(context)
    found = find_snapshot(
        data.snapshot_source, data.snapshot_mapping, data.landing, run.placeholders()
    )
    if found.source is None:
        log.info("snapshot for %s not landed yet: %s", run.snapshot_date, found.describe_missing())
        return None
    log.info("snapshot for %s: %s (mapping %s)", run.snapshot_date, found.source, found.mapping)
    return SnapshotLocation(source=found.source, mapping=found.mapping, date=run.snapshot_date)


def extract_snapshot(context: Mapping[str, Any], location: SnapshotLocation) -> Extracted:
    """Stage the run's snapshot and mapping; the default update time is the interval's end."""
    s = settings()
    run = SnapshotRun.from_context(context)
    run_dir = _data(s).staging / run.dag_id / run.key
    return Extracted(
        dag_id=run.dag_id,
        run_key=run.key,
        run_dir=run_dir,
        snapshot_date=run.snapshot_date,
        source=stage_source(location.source, run_dir),
        mapping=stage_file(location.mapping, run_dir, stem="mapping"),
        started_at_us=run.started_at_us,
    )


def extract_import(context: Mapping[str, Any], params: Mapping[str, Any]) -> Extracted:
    """Stage the source of a manual import: a file/URI, or a table or query of a connection."""
    from propsync.timestamps import parse_timestamp_value

    s = settings()
    run = ManualRun.from_context(context)
    run_dir = _data(s).staging / run.dag_id / run.key
    source = str(params.get("source") or "").strip()
    conn_id = str(params.get("conn_id") or "").strip()
    table = str(params.get("table") or "").strip() or None
    query = str(params.get("query") or "").strip() or None
    mapping = str(params.get("mapping") or "").strip()
    if not mapping:
        raise UsageError("the mapping parameter is required (a path or URI of the mapping JSON)")
    if bool(source) == bool(conn_id):
        raise UsageError("give either source (a file or URI) or conn_id with table or query")
    if conn_id:
        staged: StagedSource = stage_query(conn_id, run_dir, table=table, query=query)
    else:
        if table or query:
            raise UsageError("table and query only apply with conn_id")
        staged = stage_source(source, run_dir)
    started_raw = params.get("started_at")
    if started_raw in (None, ""):
        started_at = run.started_at_us
    else:
        parsed = parse_timestamp_value(started_raw)
        if parsed is None or parsed < 0:
            raise UsageError(
                f"started_at {started_raw!r} is not a timestamp (UNIX seconds or ISO 8601)"
            )
        started_at = parsed
    ratio = params.get("max_reject_ratio")
    return Extracted(
        dag_id=run.dag_id,
        run_key=run.key,
        run_dir=run_dir,
        source=staged,
        mapping=stage_file(mapping, run_dir, stem="mapping"),
        started_at_us=started_at,
        legacy=bool(params.get("legacy", False)),
        max_reject_ratio=None if ratio is None else float(ratio),
    )


# -- normalise ----------------------------------------------------------------------------------


def normalise(payload: Extracted) -> Normalised:
    """Map the staged source with the staged mapping into ``batch-<batch_id>/`` (written once)."""
    from propsync.normalize import import_batch_id
    from propsync.operations.imports import read_snapshot

    source_path, model = read_snapshot(verified(payload.source), verified(payload.mapping))
    batch_id = import_batch_id(payload.source.sha256, model, payload.legacy, payload.started_at_us)
    batch_dir = payload.run_dir / f"batch-{batch_id}"
    meta_path = batch_dir / "normalise.json"
    if not meta_path.is_file():
        _write_batch(payload, source_path, model, batch_dir)
    meta = NormaliseMeta.model_validate_json(meta_path.read_text(encoding="utf-8"))
    log.info(
        "batch %s: %s rows, %s cells, %s rejections",
        batch_id,
        meta.rows_read,
        meta.cells,
        meta.rejections,
    )
    return Normalised(**payload.fields(), batch_id=batch_id, batch_dir=batch_dir, normalised=meta)


def _write_batch(
    payload: Extracted, source_path: Path, model: MappingModel, batch_dir: Path
) -> None:
    """Normalise into a temporary directory renamed to ``batch_dir``: it is complete or absent."""
    from propsync.operations.imports import normalise_snapshot
    from propsync.timestamps import now_us

    s = settings()
    batch_id = batch_dir.name.removeprefix("batch-")
    now = now_us()
    batch = normalise_snapshot(
        source_path,
        model,
        s,
        batch_id=batch_id,
        source=payload.source.origin,
        started_at_us=payload.started_at_us,
        now=now,
        legacy=payload.legacy,
    )
    tmp = batch_dir.with_name(f".{batch_dir.name}.{uuid.uuid4().hex[:8]}")
    batch.save(tmp)
    meta = NormaliseMeta(
        batch_id=batch_id,
        normalised_at_us=now,
        max_future_skew_us=s.max_future_skew_us,
        started_at_us=payload.started_at_us,
        legacy=payload.legacy,
        property_types={p.to_property: p.type for p in model.properties},
        rows_read=batch.rows_read,
        cells=batch.cells.height,
        rejections=batch.rejections.height,
    )
    (tmp / "normalise.json").write_text(meta.model_dump_json(indent=2), encoding="utf-8")
    try:
        os.replace(tmp, batch_dir)
    except OSError:  # a concurrent try finished first: keep its files
        shutil.rmtree(tmp, ignore_errors=True)


# -- validate -----------------------------------------------------------------------------------


def _quality_dir(payload: Normalised) -> Path:
    return payload.batch_dir / "quality"


def validate(payload: Normalised, expectations: str | None = None) -> Validated:
    """Run the staged-batch suites; on failure record the batch as failed and raise."""
    from propsync.batch import UpdateBatch
    from propsync.orchestration.records import SuiteRun, record_failure
    from propsync.quality import frames, runner, suites
    from propsync.store.warehouse import Warehouse

    s = settings()
    meta = payload.normalised
    batch = UpdateBatch.load(payload.batch_dir)
    types = meta.property_types
    flags = {"legacy"} if meta.legacy else set()
    ratio = s.max_reject_ratio if payload.max_reject_ratio is None else payload.max_reject_ratio
    chunk_rows = _data(s).gx_chunk_rows
    cells = runner.validate(
        suites.load_suite(suites.STAGED_CELLS, expectations, flags),
        frames.chunks(frames.staged_cells(batch, types), chunk_rows),
        {
            "max_update_ts": meta.normalised_at_us + meta.max_future_skew_us,
            "mapped_properties": sorted(types),
        },
        index_column="row_nr",
    )
    summary = runner.validate(
        suites.load_suite(suites.STAGED_SUMMARY, expectations, flags),
        [frames.staged_summary(batch, source_rows=payload.source.rows, n_properties=len(types))],
        {"max_reject_ratio": ratio},
    )
    qdir = _quality_dir(payload)
    runs, pages = [], []
    for outcome in (cells, summary):
        files = outcome.write(qdir, outcome.suite)
        runs.append(SuiteRun.of("staged", outcome, files["html"]))
        pages.append(files["html"])
        log.info("%s (Data Docs: %s)", outcome.summary(), files["html"])
    (qdir / "staged_checks.json").write_text(
        json.dumps([r.to_json() for r in runs], indent=2, default=str), encoding="utf-8"
    )
    failed = [o for o in (cells, summary) if not o.success]
    if failed:
        message = "validation failed, nothing was merged: " + " | ".join(
            o.summary() for o in failed
        )
        record_failure(Warehouse(s.warehouse), s, batch, message, runs)
        raise BatchRejected(message, batch_id=batch.batch_id)
    return Validated(**payload.fields(), quality=StagedQuality(staged=tuple(pages)))


# -- merge, audit, publish ----------------------------------------------------------------------


def merge(payload: Validated, expectations: str | None = None) -> Merged:
    """``apply_batch(publish=False)`` with the post-merge audit inside the batch's transaction."""
    from propsync.batch import UpdateBatch
    from propsync.orchestration.audit import MergeAudit
    from propsync.orchestration.records import SuiteRun, insert_quality, record_quality
    from propsync.quality import runner, suites
    from propsync.store.apply import apply_batch
    from propsync.store.warehouse import Warehouse

    s = settings()
    runner.preload()  # GX takes seconds to import: not while holding the warehouse lock
    warehouse = Warehouse(s.warehouse)
    batch = UpdateBatch.load(payload.batch_dir)
    qdir = _quality_dir(payload)
    staged = [
        SuiteRun.from_json(d)
        for d in json.loads((qdir / "staged_checks.json").read_text(encoding="utf-8"))
    ]
    report = str(qdir / f"{suites.MERGED_AUDIT}.html")

    def keep_results(con: Any, outcome: runner.Outcome) -> None:
        insert_quality(con, batch.batch_id, [*staged, SuiteRun.of("merged", outcome, report)])

    hook = MergeAudit(
        suite=suites.load_suite(suites.MERGED_AUDIT, expectations),
        warehouse_root=warehouse.root,
        source_rows=payload.source.rows,
        n_properties=len(payload.normalised.property_types),
        on_pass=keep_results,
        batch=batch,
    )
    try:
        result = apply_batch(
            warehouse,
            batch,
            s,
            publish=False,
            audit=hook,
            max_reject_ratio=payload.max_reject_ratio,
        )
    except AuditFailed as exc:
        runs = list(staged)
        if hook.outcome is not None:
            hook.outcome.write(qdir, suites.MERGED_AUDIT)
            runs.append(SuiteRun.of("merged", hook.outcome, report))
        record_quality(warehouse, s, batch.batch_id, runs)
        raise AuditFailed(f"{exc.message} (Data Docs: {report})", batch_id=batch.batch_id) from None
    if result.status == "failed":
        record_quality(warehouse, s, batch.batch_id, staged)
        raise BatchRejected(result.message, batch_id=batch.batch_id)
    if hook.outcome is not None:
        hook.outcome.write(qdir, suites.MERGED_AUDIT)
        log.info("%s (Data Docs: %s)", hook.outcome.summary(), report)
    # The payload keeps the counts it was defined with (an XCom contract; extra keys are refused).
    counts = {k: v for k, v in result.summary().items() if k in MergeSummary.model_fields}
    summary = MergeSummary.model_validate(
        {**counts, "status": result.status, "message": result.message, "metrics": hook.metrics}
    )
    log.info("merge of %s: %s", batch.batch_id, summary)
    return Merged(**payload.fields(), merge=summary)


def audit(payload: Merged) -> Audited:
    """Confirm from the warehouse that the batch is committed and passed every recorded check."""
    from propsync.store.warehouse import Warehouse

    s = settings()
    warehouse = Warehouse(s.warehouse)
    batch_id = payload.batch_id
    with warehouse.write_lock(s.lock_timeout_seconds):
        con = warehouse.connect_work(s.duckdb_memory_limit)
        try:
            row = con.execute(
                "SELECT status, version, message FROM batches WHERE batch_id = $b", {"b": batch_id}
            ).fetchone()
            checks = con.execute(
                "SELECT stage, suite, check_name, success FROM quality_results "
                "WHERE batch_id = $b ORDER BY stage, suite",
                {"b": batch_id},
            ).fetchall()
            work_version = Warehouse.work_version(con)
        finally:
            con.close()
    if row is None or row[0] != "applied" or row[1] is None:
        state = "missing" if row is None else f"{row[0]}: {row[2]}"
        raise AuditFailed(
            f"batch {batch_id} is not applied in the warehouse ({state})", batch_id=batch_id
        )
    failed = [f"{stage}/{suite}: {name}" for stage, suite, name, ok in checks if not ok]
    if failed:
        raise AuditFailed(
            f"batch {batch_id} has failed checks: {'; '.join(failed)}", batch_id=batch_id
        )
    stages = sorted({c[0] for c in checks})
    if payload.merge.status == "applied" and stages != ["merged", "staged"]:
        raise AuditFailed(
            f"batch {batch_id} lacks check results (found stages {stages})", batch_id=batch_id
        )
    result = AuditResult(
        batch_version=int(row[1]),
        work_version=work_version,
        checks_passed=len(checks),
        published_version=warehouse.published_version(),
    )
    log.info("audit of %s: %s", batch_id, result)
    return Audited(**payload.fields(), audit=result)


def publish(
    context: Mapping[str, Any] | None = None, payload: Normalised | None = None
) -> Published:
    """Publish the working database if it is ahead, compact the published files when due;
    describe the version on the outlet Asset. ``payload``: the import's (any stage from normalise
    on names its batch); None for tracking."""
    from propsync.orchestration.assets import PUBLISHED_WAREHOUSE
    from propsync.store.apply import publish_pending
    from propsync.store.warehouse import Warehouse

    s = settings()
    warehouse = Warehouse(s.warehouse)
    version = publish_pending(warehouse, s)
    compacted = None
    if s.auto_compact:  # folds the published files when due; outside the write lock
        from propsync.store.compaction import compact

        done = compact(warehouse, s)
        compacted = done.files_before - done.files_after
    published = Published(
        version=version,
        path=warehouse.published_file(),
        compacted_files=compacted,
        batch_id=None if payload is None else payload.batch_id,
    )
    if context is not None and "outlet_events" in context:
        context["outlet_events"][PUBLISHED_WAREHOUSE].extra = published.asset_extra()
    log.info("published version %s: %s", version, published.path)
    return published


# -- tracking -----------------------------------------------------------------------------------


def ingest_tracking() -> int:
    """Apply the commands the tracking API journaled since the last run; return how many.

    Applies with ``publish=False``: the commit reaches ``work.duckdb`` only, and the DAG's publish
    task makes it visible (``publish_tracking``), as merge and publish are split for imports.
    """
    from propsync.journal import apply_journal
    from propsync.store.warehouse import Warehouse

    s = settings()
    applied = int(apply_journal(Warehouse(s.warehouse), s, publish=False))
    log.info("applied %s journaled tracking commands (not published yet)", applied)
    return applied


def _work_ahead(s: Settings) -> bool:
    """Whether ``work.duckdb`` holds a version newer than the published one (under the lock)."""
    from propsync.store.warehouse import Warehouse

    warehouse = Warehouse(s.warehouse)
    with warehouse.write_lock(s.lock_timeout_seconds):
        if not warehouse.work_path.exists():
            return False
        con = warehouse.connect_work(s.duckdb_memory_limit)
        try:
            version = Warehouse.work_version(con)
        finally:
            con.close()
    return version > warehouse.published_version()


def publish_tracking(context: Mapping[str, Any], applied: int) -> Published:
    """Publish after tracking commands were applied, or when an earlier run applied some and its
    publish failed; skip (no Asset event) when the published version is current."""
    if not applied and not _work_ahead(settings()):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no new tracking commands: nothing to publish")
    return publish(context)
