"""The chain both import DAGs run after their own extract: normalise -> validate -> merge ->
audit -> publish, as one task group (``import_chain``). Parse-time safe: each task imports
``propsync.orchestration.tasks`` (Polars, DuckDB, Great Expectations) only when it runs, and its
body only translates the payload to that module's function of the same name."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task, task_group

from propsync.orchestration.assets import PUBLISHED_WAREHOUSE


@task
def normalise(payload: dict[str, Any]) -> dict[str, Any]:
    from propsync.orchestration import tasks

    return tasks.run(tasks.normalise, payload)


@task
def validate(payload: dict[str, Any], expectations: str | None) -> dict[str, Any]:
    from propsync.orchestration import tasks

    return tasks.run(tasks.validate, payload, expectations)


@task
def merge(payload: dict[str, Any], expectations: str | None) -> dict[str, Any]:
    from propsync.orchestration import tasks

    return tasks.run(tasks.merge, payload, expectations)


@task
def audit(payload: dict[str, Any]) -> dict[str, Any]:
    from propsync.orchestration import tasks

    return tasks.run(tasks.audit, payload)


@task(outlets=[PUBLISHED_WAREHOUSE])
def publish(payload: dict[str, Any]) -> dict[str, Any]:
    from propsync.orchestration import tasks

    return tasks.run(tasks.publish, get_current_context(), payload)


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
