"""The typed payloads between the DAG tasks: what XCom stores of them, and what a task does with a
payload that does not fit its model."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from propsync.orchestration import payloads, tasks
from propsync.orchestration.payloads import (
    Audited,
    Extracted,
    Merged,
    Normalised,
    Payload,
    Published,
    SnapshotLocation,
    Validated,
)
from tests.dags.conftest import Env, load_dag, run_dag, utc, xcom
from tests.orchestration.conftest import context

# Each task's XCom and the model it must validate as.
MODELS: dict[str, type[Payload]] = {
    "wait_for_snapshot": SnapshotLocation,
    "extract": Extracted,
    "normalise": Normalised,
    "validate": Validated,
    "merge": Merged,
    "audit": Audited,
    "publish": Published,
}


def every_payload_model() -> set[type[Payload]]:
    found: set[type[Payload]] = set()
    todo = [Payload]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__ == payloads.__name__ and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def nested(model: Payload) -> Iterator[Payload]:
    """The model and every model inside it."""
    yield model
    for value in model.fields().values():
        if isinstance(value, Payload):
            yield from nested(value)


def through_xcom(value: dict[str, Any]) -> Any:
    """What a downstream task reads: Airflow's serde into the JSON stored in the metadata DB."""
    from airflow.sdk.serde import deserialize, serialize

    return deserialize(json.loads(json.dumps(serialize(value))))


def pipeline_payloads() -> list[Payload]:
    """One snapshot day through every task function, and its merge again (already applied)."""
    ctx = context(utc(2024, 1, 1))
    location = tasks.snapshot_location(ctx)
    assert location is not None
    extracted = tasks.extract_snapshot(ctx, location)
    normalised = tasks.normalise(extracted)
    validated = tasks.validate(normalised)
    merged = tasks.merge(validated)
    audited = tasks.audit(merged)
    again = tasks.merge(validated)
    assert again.merge.metrics is None  # the model's optional section, round-tripped too
    published = tasks.publish(None, audited)
    return [location, extracted, normalised, validated, merged, audited, again, published]


def test_every_payload_model_round_trips_through_xcom_unchanged(env: Env) -> None:
    from airflow.serialization.stringify import stringify

    seen: set[type[Payload]] = set()
    for top in pipeline_payloads():
        for model in nested(top):
            stored = through_xcom(model.to_xcom())
            assert stored == model.to_xcom()
            assert type(model).from_xcom(stored) == model
            assert stringify(stored) == stored  # the UI shows the JSON itself, not a class name
            seen.add(type(model))
    assert seen == every_payload_model()


def test_a_dag_runs_xcom_values_are_the_models_as_plain_json(env: Env) -> None:
    run = run_dag(load_dag("customer_snapshots"), logical_date=utc(2024, 1, 2))
    assert run.state == "success", run.tasks

    stored = {task_id: xcom("customer_snapshots", run.run_id, task_id) for task_id in MODELS}
    for task_id, model in MODELS.items():
        assert "__classname__" not in json.dumps(stored[task_id])  # no serde envelope
        assert model.from_xcom(stored[task_id]).to_xcom() == stored[task_id], task_id
    # Each stage passes on everything the one before it knew, unchanged.
    for before, after in itertools.pairwise(["extract", "normalise", "validate", "merge", "audit"]):
        assert {k: stored[after][k] for k in stored[before]} == stored[before], after
    audited = Audited.from_xcom(stored["audit"])
    assert audited.snapshot_date == SnapshotLocation.from_xcom(stored["wait_for_snapshot"]).date
    assert Published.from_xcom(stored["publish"]).batch_id == audited.batch_id
