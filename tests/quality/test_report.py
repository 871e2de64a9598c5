"""The Data Docs page of a suite run: propsync's merged checks, escaped, above GX's own page of
the chunk that failed first."""

from __future__ import annotations

import html
from typing import Any

import polars as pl

from propsync.quality import report, runner

SUITE: dict[str, Any] = {
    "name": "names <suite>",
    "expectations": [
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "name", "value_set": ["ok"]},
            "meta": {"check": "known <names>"},
        }
    ],
}


def test_the_merged_checks_come_first_escaped_then_the_failing_chunks_gx_page() -> None:
    chunks = [
        pl.DataFrame({"name": ["ok", "ok"]}),
        pl.DataFrame({"name": ["ok", "<img src=x onerror=alert(1)>"]}),
    ]
    outcome = runner.validate(SUITE, chunks)
    assert outcome.failed_chunks == [2]
    page = report.page(outcome, outcome.page_result())
    body = page.index("<body")
    summary = page.index('<section id="propsync-summary"')
    assert body < summary < page.index("</section>") < page.index("</body>")
    section = page[summary : page.index("</section>")]
    assert "<img" not in section and "<suite>" not in section
    text = html.unescape(section)
    assert "names <suite>: FAILED, merged over 2 chunk(s)" in text
    assert "chunk 2 of 2 (the first failing chunk)" in text
    assert "known <names>" in text and "<img src=x onerror=alert(1)>" in text
    assert "<td>4</td><td>1</td>" in section  # 4 values, 1 unexpected, over both chunks


def test_a_run_that_passed_shows_the_first_chunk() -> None:
    outcome = runner.validate(SUITE, [pl.DataFrame({"name": ["ok"]})] * 2)
    text = html.unescape(report.page(outcome, outcome.page_result()))
    assert "FAILED" not in text.split("</section>")[0]
    assert "passed, merged over 2 chunk(s)" in text and "(the first chunk)" in text
