"""The import chain's task bodies (propsync.orchestration.chain) as Airflow runs them: a payload
that does not fit its stage's model fails the task naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from propsync.errors import PayloadInvalid
from propsync.orchestration import chain, tasks
from propsync.orchestration.payloads import Extracted
from tests.dags.conftest import Env, utc
from tests.orchestration.conftest import context


def extracted_day(day: int) -> Extracted:
    ctx = context(utc(2024, 1, day))
    location = tasks.snapshot_location(ctx)
    assert location is not None
    return tasks.extract_snapshot(ctx, location)


def fails_naming(task_id: str, given: dict[str, Any], complaint: str) -> None:
    """The DAG task's own body, as Airflow runs it, given ``given`` from XCom."""
    from airflow.sdk.exceptions import AirflowFailException

    body = getattr(chain, task_id).function
    args = (given, None) if task_id in ("validate", "merge") else (given,)
    # AirflowFailException: no retry of an input that cannot change.
    with pytest.raises(AirflowFailException, match="PayloadInvalid") as failed:
        body(*args)
    assert complaint in str(failed.value)
    assert isinstance(failed.value.__cause__, PayloadInvalid)


def test_a_task_given_the_payload_of_a_stage_too_early_names_what_is_missing(env: Env) -> None:
    extracted = extracted_day(1)
    normalised = tasks.normalise(extracted)
    validated = tasks.validate(normalised)
    merged = tasks.merge(validated)
    # Each is a DAG wired past a stage: the first field that stage adds is named.
    fails_naming(
        "validate", extracted.to_xcom(), "not a valid Normalised: batch_id: Field required"
    )
    fails_naming("merge", normalised.to_xcom(), "not a valid Validated: quality: Field required")
    fails_naming("audit", validated.to_xcom(), "not a valid Merged: merge: Field required")
    fails_naming("publish", merged.to_xcom(), "not a valid Audited: audit: Field required")


def test_a_malformed_payload_fails_the_task_naming_the_field(env: Env) -> None:
    good = extracted_day(1).to_xcom()
    no_rows = {k: v for k, v in good["source"].items() if k != "rows"}
    fails_naming("normalise", {**good, "source": no_rows}, "source.rows: Field required")
    fails_naming(
        "normalise",
        {**good, "started_at_us": "yesterday"},
        "started_at_us: Input should be a valid integer",
    )
    fails_naming(
        "normalise", {**good, "batch_idd": "x"}, "batch_idd: Extra inputs are not permitted"
    )
    assert not list(Extracted.from_xcom(good).run_dir.glob("batch-*"))  # nothing was normalised
