"""Run a suite with Great Expectations (pandas datasource, ephemeral context) and keep the results.

Row-level suites run chunk by chunk (``chunk_rows`` rows converted to pandas at a time) and the
chunk results are merged: counts are summed, the first examples kept, success is the conjunction.
Memory stays bounded by the chunk whatever the batch size. Aggregate suites run on one-row frames.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from propsync.files import atomic_write_text

MAX_EXAMPLES = 20
_SUM_KEYS = ("element_count", "unexpected_count", "missing_count")


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _CONTEXT = context
    return _CONTEXT


def preload() -> None:
    """Import GX now (it takes seconds), e.g. before taking the warehouse lock."""
    _context()


@dataclass
class Check:
    expectation: str
    column: str
    check: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    observed_value: Any = None
    examples: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        what = f"{self.expectation}({self.column})"
        if self.unexpected_count is not None:
            found = f"{self.unexpected_count} of {self.element_count} values unexpected"
        else:
            found = f"observed {self.observed_value!r}"
        examples = f", e.g. {self.examples[:5]!r}" if self.examples else ""
        return f"{self.check or what}: {what} failed, {found}{examples}"


@dataclass
class Outcome:
    suite: str
    success: bool
    checks: list[Check]
    result: Any  # the (merged) GX ExpectationSuiteValidationResult
    chunks: int = 1

    def failures(self) -> list[str]:
        return [c.describe() for c in self.checks if not c.success]

    def summary(self) -> str:
        failed = [c for c in self.checks if not c.success]
        if not failed:
            return f"{self.suite}: all {len(self.checks)} expectations passed"
        return (
            f"{self.suite}: {len(failed)} of {len(self.checks)} expectations failed: "
            + "; ".join(self.failures())
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.result.to_json_dict()
        data.setdefault("meta", {})["propsync_chunks"] = self.chunks
        return data

    def html(self) -> str:
        from great_expectations.render import renderer, view

        page: Any = renderer.ValidationResultsPageRenderer()  # type: ignore[attr-defined]
        html_view: Any = view.DefaultJinjaPageView()  # type: ignore[attr-defined]
        return str(html_view.render(page.render(self.result)))

    def write(self, directory: Path, stem: str) -> dict[str, str]:
        """``<stem>.json`` (the validation result) and ``<stem>.html`` (its Data Docs page)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"json": directory / f"{stem}.json", "html": directory / f"{stem}.html"}
        atomic_write_text(paths["json"], json.dumps(self.to_json(), indent=2, default=str))
        atomic_write_text(paths["html"], self.html())
        return {k: str(v) for k, v in paths.items()}


def _merge_into(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key in _SUM_KEYS:
        if key in target or key in extra:
            target[key] = int(target.get(key) or 0) + int(extra.get(key) or 0)
    for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
        if key in extra:
            target[key] = (list(target.get(key) or []) + list(extra[key] or []))[:MAX_EXAMPLES]
    target.pop("partial_unexpected_counts", None)
    if "unexpected_count" in target and "element_count" in target:
        total = target["element_count"]
        nonmissing = total - target.get("missing_count", 0)
        unexpected = target["unexpected_count"]
        target["unexpected_percent"] = 100.0 * unexpected / nonmissing if nonmissing else 0.0
        target["unexpected_percent_total"] = 100.0 * unexpected / total if total else 0.0
        target["unexpected_percent_nonmissing"] = target["unexpected_percent"]


def validate(
    suite: Mapping[str, Any],
    frames: Iterable[pl.DataFrame],
    parameters: Mapping[str, Any] | None = None,
    *,
    index_column: str | None = None,
) -> Outcome:
    """Validate each frame (a chunk) with ``suite``; merge the chunk results into one outcome."""
    gx = _gx()
    context = _context()
    source = context.data_sources.add_pandas(f"propsync-{uuid.uuid4().hex[:12]}")
    try:
        definition = source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
            "whole"
        )
        expectation_suite = gx.ExpectationSuite(
            name=suite["name"],
            expectations=[dict(e) for e in suite.get("expectations", [])],
            meta=dict(suite.get("meta", {})),
        )
        result_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": MAX_EXAMPLES,
        }
        if index_column is not None:
            result_format["unexpected_index_column_names"] = [index_column]
        merged: Any = None
        count = 0
        for frame in frames:
            batch = definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
            result = batch.validate(
                expectation_suite,
                expectation_parameters=dict(parameters or {}),
                result_format=result_format,
            )
            count += 1
            if merged is None:
                merged = result
                continue
            for mine, theirs in zip(merged.results, result.results, strict=True):
                mine.success = bool(mine.success and theirs.success)
                _merge_into(mine.result, theirs.result)
                if theirs.exception_info and theirs.exception_info.get("raised_exception"):
                    mine.exception_info = theirs.exception_info
        if merged is None:
            raise ValueError("validate needs at least one frame")
    finally:
        context.data_sources.delete(source.name)
    merged.success = all(r.success for r in merged.results)
    evaluated = len(merged.results)
    passed = sum(1 for r in merged.results if r.success)
    merged.statistics.update(
        evaluated_expectations=evaluated,
        successful_expectations=passed,
        unsuccessful_expectations=evaluated - passed,
        success_percent=100.0 * passed / evaluated if evaluated else 100.0,
    )
    return Outcome(suite["name"], bool(merged.success), _checks(merged), merged, count)


def _checks(result: Any) -> list[Check]:
    checks = []
    for r in result.results:
        config = r.expectation_config
        kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
        column = kwargs.get("column") or ",".join(
            str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs
        )
        details = dict(r.result or {})
        exception = r.exception_info or {}
        if exception.get("raised_exception"):
            details["observed_value"] = f"error: {exception.get('exception_message')}"
        checks.append(
            Check(
                expectation=str(config.type),
                column=str(column),
                check=str((config.meta or {}).get("check", "")),
                success=bool(r.success),
                element_count=details.get("element_count"),
                unexpected_count=details.get("unexpected_count"),
                observed_value=details.get("observed_value"),
                examples=list(details.get("partial_unexpected_list") or [])[:MAX_EXAMPLES],
                kwargs=kwargs,
            )
        )
    return checks
