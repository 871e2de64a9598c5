"""The chain both import DAGs run after their own extract: normalise -> validate -> merge ->
audit -> publish, as one task group (``import_chain``). Parse-time safe: each task imports
``propsync.orchestration.tasks`` (Polars, DuckDB, Great Expectations) only when it runs, and its
body only calls that module's function of the same name, the payload read from XCom into its
model (``propsync.orchestration.payloads``) and the result returned as JSON."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task, task_group

from propsync.orchestration.assets import PUBLISHED_WAREHOUSE
from propsync.orchestration.payloads import Audited, Extracted, Merged, Normalised, Validated

# XCom holds each payload as plain JSON: every task reads its input into the stage's model (a
# missing or mistyped field fails the task naming it) and returns its result as JSON.
XCom = dict[str, Any]


@task
def normalise(extracted: XCom) -> XCom:
    from propsync.orchestration import tasks

    with tasks.failing_fast():
        return tasks.normalise(Extracted.from_xcom(extracted)).to_xcom()


@task
def validate(normalised: XCom, expectations: str | None) -> XCom:
    from propsync.orchestration import tasks

    with tasks.failing_fast():
        return tasks.validate(Normalised.from_xcom(normalised), expectations).to_xcom()


@task
def merge(validated: XCom, expectations: str | None) -> XCom:
    from propsync.orchestration import tasks

    with tasks.failing_fast():
        return tasks.merge(Validated.from_xcom(validated), expectations).to_xcom()


@task
def audit(merged: XCom) -> XCom:
    from propsync.orchestration import tasks

    with tasks.failing_fast():
        return tasks.audit(Merged.from_xcom(merged)).to_xcom()


@task(outlets=[PUBLISHED_WAREHOUSE])
def publish(audited: XCom) -> XCom:
    from propsync.orchestration import tasks

    with tasks.failing_fast():
        payload = Audited.from_xcom(audited)
        return tasks.publish(get_current_context(), payload).to_xcom()


@task_group(group_id="import_chain", prefix_group_id=False)
def import_chain(extracted: Any, *, pool: str, expectations: str | None = None) -> Any:
    """The extracted snapshot's payload through every check to a published version. ``pool``:
    the one-slot pool of the warehouse's writers (merge and publish take it)."""
    # Each call returns the task's XComArg, which the next task receives as its payload.
    normalised: Any = normalise(extracted)
    validated: Any = validate(normalised, expectations)
    merged: Any = merge.override(pool=pool)(validated, expectations)
    audited: Any = audit(merged)
    return publish.override(pool=pool)(audited)
