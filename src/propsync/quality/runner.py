"""Run a suite with Great Expectations (pandas datasource, ephemeral context) and keep the results.

Row-level suites run chunk by chunk (``chunk_rows`` rows converted to pandas at a time). Each
chunk's GX result is read into propsync's own ``Check`` records and those are merged: counts
summed, the first examples kept, success is the conjunction. GX's result objects are only read;
the first chunk's and the failing chunks' are kept as evidence for the reports. Memory stays
bounded by the chunk whatever the batch size. Aggregate suites run on one-row frames.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Generator, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from propsync.files import atomic_write_text
from propsync.quality import report

MAX_EXAMPLES = 20
# GX chunk results kept for the reports: the first chunk's and failing ones, up to this many.
MAX_GX_RESULTS = 10


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


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


def _percent(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else 100.0 * part / whole


@dataclass(frozen=True)
class Check:
    """One expectation's result, over one chunk or merged over all of them (``merged``).

    Counts cover the chunks where the expectation evaluated; ``errors`` name those where it raised.
    """

    expectation: str
    column: str
    check: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    observed_value: Any = None
    examples: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    missing_count: int | None = None
    example_rows: list[Any] = field(default_factory=list)  # with the index column, if asked
    errors: list[str] = field(default_factory=list)

    @property
    def unexpected_percent(self) -> float | None:
        """Of the non-missing values, as GX computes it."""
        if self.element_count is None:
            return None
        return _percent(self.unexpected_count, self.element_count - (self.missing_count or 0))

    @property
    def unexpected_percent_total(self) -> float | None:
        return _percent(self.unexpected_count, self.element_count)

    def merged(self, later: Check) -> Check:
        """This check (of the earlier chunks) merged with ``later`` (of the next chunk)."""
        # An aggregate's observed value cannot be summed: show the first failing chunk's.
        take_later = self.success and not later.success
        return replace(
            self,
            success=self.success and later.success,
            element_count=_add(self.element_count, later.element_count),
            unexpected_count=_add(self.unexpected_count, later.unexpected_count),
            missing_count=_add(self.missing_count, later.missing_count),
            observed_value=later.observed_value if take_later else self.observed_value,
            examples=(self.examples + later.examples)[:MAX_EXAMPLES],
            example_rows=(self.example_rows + later.example_rows)[:MAX_EXAMPLES],
            errors=(self.errors + later.errors)[:MAX_EXAMPLES],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "unexpected_percent": self.unexpected_percent,
            "unexpected_percent_total": self.unexpected_percent_total,
        }

    def describe(self) -> str:
        what = f"{self.expectation}({self.column})"
        found = []
        if self.unexpected_count is not None:
            found.append(f"{self.unexpected_count} of {self.element_count} values unexpected")
        elif not self.errors:
            found.append(f"observed {self.observed_value!r}")
        if self.examples:
            found.append(f"e.g. {self.examples[:5]!r}")
        if self.errors:
            found.append(f"raised: {'; '.join(self.errors[:3])}")
        return f"{self.check or what}: {what} failed, {', '.join(found)}"


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's GX ``ExpectationSuiteValidationResult``, as GX returned it (never edited)."""

    chunk: int  # 1-based, in the order the frames came
    result: Any


@dataclass(frozen=True)
class Outcome:
    """A suite run: the checks merged over every chunk, and GX's results of some chunks."""

    suite: str
    checks: list[Check]  # in the suite's order
    chunks: int = 1
    failed_chunks: list[int] = field(default_factory=list)
    gx_results: list[ChunkResult] = field(default_factory=list)  # see MAX_GX_RESULTS

    @property
    def success(self) -> bool:
        return all(c.success for c in self.checks)

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

    def statistics(self) -> dict[str, Any]:
        evaluated = len(self.checks)
        passed = sum(1 for c in self.checks if c.success)
        return {
            "evaluated_expectations": evaluated,
            "successful_expectations": passed,
            "unsuccessful_expectations": evaluated - passed,
            "success_percent": _percent(passed, evaluated) if evaluated else 100.0,
        }

    def page_result(self) -> ChunkResult:
        """The chunk the Data Docs page shows: the first failing one, else the first."""
        failed = set(self.failed_chunks)
        return next((r for r in self.gx_results if r.chunk in failed), self.gx_results[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "success": self.success,
            "statistics": self.statistics(),
            "chunks": self.chunks,
            "failed_chunks": self.failed_chunks,
            "checks": [c.to_json() for c in self.checks],
            "gx_results": [
                {"chunk": r.chunk, "result": r.result.to_json_dict()} for r in self.gx_results
            ],
        }

    def html(self) -> str:
        return report.page(self, self.page_result())

    def write(self, directory: Path, stem: str) -> dict[str, str]:
        """``<stem>.json`` (``to_json``) and ``<stem>.html`` (the merged checks above GX's Data
        Docs page of ``page_result``)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"json": directory / f"{stem}.json", "html": directory / f"{stem}.html"}
        atomic_write_text(paths["json"], json.dumps(self.to_json(), indent=2, default=str))
        atomic_write_text(paths["html"], self.html())
        return {k: str(v) for k, v in paths.items()}


def validate(
    suite: Mapping[str, Any],
    frames: Iterable[pl.DataFrame],
    parameters: Mapping[str, Any] | None = None,
    *,
    index_column: str | None = None,
) -> Outcome:
    """Validate each frame (a chunk) with ``suite``; merge the chunk results into one outcome."""
    with contextlib.closing(gx_results(suite, frames, parameters, index_column)) as results:
        return merge_results(suite["name"], results)


def gx_results(
    suite: Mapping[str, Any],
    frames: Iterable[pl.DataFrame],
    parameters: Mapping[str, Any] | None = None,
    index_column: str | None = None,
) -> Generator[Any, None, None]:
    """GX's ``ExpectationSuiteValidationResult`` of each frame, as GX returns it."""
    context = _context()
    source = context.data_sources.add_pandas(f"propsync-{uuid.uuid4().hex[:12]}")
    try:
        definition = source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
            "whole"
        )
        expectation_suite = _suite(suite)
        options = {
            "expectation_parameters": dict(parameters or {}),
            "result_format": _result_format(index_column),
        }
        for frame in frames:
            batch = definition.get_batch(batch_parameters={"dataframe": _to_pandas(frame)})
            yield batch.validate(expectation_suite, **options)
    finally:
        context.data_sources.delete(source.name)


def _to_pandas(frame: pl.DataFrame) -> Any:
    # Not use_pyarrow_extension_array: GX checks "between" one Python call per value on Arrow
    # dtypes (vectorised on NumPy ones), ~40% slower at 1M rows; strings are Arrow-backed anyway.
    return frame.to_pandas()


def _suite(suite: Mapping[str, Any]) -> Any:
    # GX orders results its own way (one that raised comes first), so each expectation gets its
    # suite position as id, and chunks are matched and ordered by it.
    expectations = [
        {**e, "id": str(uuid.UUID(int=i))} for i, e in enumerate(suite.get("expectations", []))
    ]
    return _gx().ExpectationSuite(
        name=suite["name"], expectations=expectations, meta=dict(suite.get("meta", {}))
    )


def _result_format(index_column: str | None) -> dict[str, Any]:
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": MAX_EXAMPLES,
    }
    if index_column is not None:
        result_format["unexpected_index_column_names"] = [index_column]
    return result_format


def merge_results(suite: str, results: Iterable[Any]) -> Outcome:
    """The ``Outcome`` of GX ``ExpectationSuiteValidationResult``s, one per chunk in order (as
    ``validate`` builds them); the results are only read."""
    checks: list[Check] = []
    failed: list[int] = []
    kept: list[ChunkResult] = []
    chunk = 0
    for chunk, result in enumerate(results, 1):
        mine = _checks(result, chunk)
        checks = mine if chunk == 1 else [a.merged(b) for a, b in zip(checks, mine, strict=True)]
        bad = not all(c.success for c in mine)
        if bad:
            failed.append(chunk)
        if chunk == 1 or (bad and len(kept) < MAX_GX_RESULTS):
            kept.append(ChunkResult(chunk, result))
    if not chunk:
        raise ValueError("validate needs at least one frame")
    return Outcome(suite, checks, chunk, failed, kept)


def _checks(result: Any, chunk: int) -> list[Check]:
    ordered = sorted(result.results, key=lambda r: uuid.UUID(r.expectation_config.id).int)
    return [_check(r, chunk) for r in ordered]


def _check(r: Any, chunk: int) -> Check:
    config = r.expectation_config
    kwargs = _plain({k: v for k, v in dict(config.kwargs).items() if k != "batch_id"})
    details = r.result or {}
    return Check(
        expectation=str(config.type),
        column=_column(kwargs),
        check=str((config.meta or {}).get("check", "")),
        success=bool(r.success),
        element_count=_count(details.get("element_count")),
        unexpected_count=_count(details.get("unexpected_count")),
        missing_count=_count(details.get("missing_count")),
        observed_value=_plain(details.get("observed_value")),
        examples=_plain(list(details.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]),
        example_rows=_plain(
            list(details.get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES]
        ),
        kwargs=kwargs,
        errors=[f"chunk {chunk}: {m}" for m in _raised(r.exception_info)],
    )


def _column(kwargs: Mapping[str, Any]) -> str:
    pair = ",".join(str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs)
    return str(kwargs.get("column") or pair)


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def _raised(info: Mapping[str, Any] | None) -> list[str]:
    """The exception messages of a GX expectation result: GX 1.x keeps one at the top level or
    one per metric that failed to resolve (keyed by metric id)."""
    info = info or {}
    found = [info] if "raised_exception" in info else [v for v in info.values() if v]
    messages = (str(e.get("exception_message")) for e in found if e.get("raised_exception"))
    return list(dict.fromkeys(messages))


def _plain(value: Any) -> Any:
    """A copy in plain Python values (GX hands out numpy scalars, NaN or NA for missing values),
    sharing nothing with GX's result."""
    import numpy as np  # both imported by GX already
    import pandas as pd

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
