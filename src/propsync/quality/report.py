"""The Data Docs page of a suite run: propsync's merged checks above GX's page of one chunk."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from propsync.quality.runner import Check, ChunkResult, Outcome

_HEAD = (
    "<tr><th>check</th><th>expectation</th><th>result</th><th>values</th>"
    "<th>unexpected</th><th>unexpected %</th><th>examples</th><th>errors</th></tr>"
)


def page(outcome: Outcome, shown: ChunkResult) -> str:
    """GX's page of ``shown`` with the merged checks of every chunk inserted above it."""
    from great_expectations.render import renderer, view

    page_renderer: Any = renderer.ValidationResultsPageRenderer()  # type: ignore[attr-defined]
    html_view: Any = view.DefaultJinjaPageView()  # type: ignore[attr-defined]
    gx_page = str(html_view.render(page_renderer.render(shown.result)))
    start = gx_page.find("<body")
    at = gx_page.find(">", start) + 1 if start >= 0 else 0
    return gx_page[:at] + _section(outcome, shown.chunk) + gx_page[at:]


def _section(outcome: Outcome, shown: int) -> str:
    status = "passed" if outcome.success else "FAILED"
    which = "the first failing chunk" if shown in outcome.failed_chunks else "the first chunk"
    rows = "".join(_row(c) for c in outcome.checks)
    return (
        '<section id="propsync-summary" class="container-fluid my-3">'
        f"<h2>{escape(outcome.suite)}: {status}, merged over {outcome.chunks} chunk(s)</h2>"
        f"<p>Failing chunks: {escape(str(outcome.failed_chunks or 'none'))}. Below it, Great "
        f"Expectations' page of chunk {shown} of {outcome.chunks} ({which}).</p>"
        f'<table class="table table-sm">{_HEAD}{rows}</table></section>'
    )


def _row(c: Check) -> str:
    percent = c.unexpected_percent
    cells = (
        c.check,
        f"{c.expectation}({c.column})",
        "passed" if c.success else "FAILED",
        "" if c.element_count is None else c.element_count,
        "" if c.unexpected_count is None else c.unexpected_count,
        "" if percent is None else f"{percent:.4g}",
        ", ".join(repr(e) for e in c.examples[:5]),
        "; ".join(c.errors),
    )
    return "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in cells) + "</tr>"
