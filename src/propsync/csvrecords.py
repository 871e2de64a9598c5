"""How many fields each row of a CSV file has, and which rows are blank lines.

Polars' CSV reader fills the fields a row lacks with nulls (so a row cut short looks like a row of
empty cells), cannot read a row with too many fields unless told to drop the extra ones, and makes
a blank line a row of empty cells. None of that can be told apart in the frame it returns, so this
module counts each row's fields from the raw lines, splitting rows and fields as Polars does: a
newline inside quotes continues the row (quote parity), a field is quoted only when it starts with
``"``, and ``""`` inside it is a quote. The lines are scanned with vectorised Polars expressions in
a background thread, a batch ahead of the reader; a line with quotes is counted exactly only
where the reader cannot vouch for its row (``exact_fields``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from propsync.errors import SourceError
from propsync.prefetch import RowFeed

# Polars' defaults, which ``normalize`` reads with.
SEPARATOR = ","
QUOTE = '"'
LINE_BATCH = 200_000
# A quoted field at the start of a row or after a separator; "" is an escaped quote.
_QUOTED_FIELD = r'(^|,)"(?:[^"]|"")*"'
_BLANK = r"^[ \t\r]*$"
_LINES_SCHEMA = {"commas": pl.Int32, "quotes": pl.Int32, "text": pl.String}


def _line_stats(path: Path) -> pl.LazyFrame:
    line = pl.col("line")
    commas = line.str.count_matches("[,]").cast(pl.Int32)  # faster than literal=True here
    quotes = line.str.count_matches('["]').cast(pl.Int32)
    return pl.scan_lines(path).select(
        commas.alias("commas"),
        quotes.alias("quotes"),
        # Text only where it is looked at again: blank candidates and lines with quotes.
        pl.when((quotes > 0) | (commas == 0)).then(line).alias("text"),
    )


def _plain_records(lines: pl.DataFrame) -> pl.DataFrame:
    """Records of lines without any quote: one per line, counted exactly."""
    text = pl.col("text")  # null where the line has a separator
    return lines.select(
        fields=pl.col("commas") + 1,
        blank=text.str.contains(_BLANK).fill_null(False),
        quoted=pl.lit(None, pl.String),
    )


def _exact_fields(text: pl.Expr) -> pl.Expr:
    """Fields of a record's text: separators outside quoted fields, plus one (slow: regex)."""
    return (text.str.replace_all(_QUOTED_FIELD, "$1").str.count_matches("[,]") + 1).cast(pl.Int32)


def _single_line_records(lines: pl.DataFrame) -> pl.DataFrame:
    """Records that are one line each. A line with quotes keeps its text: its count includes any
    separators inside quotes until ``exact_fields`` recounts it, which only some rows need."""
    return _plain_records(lines).with_columns(
        quoted=pl.when(lines["quotes"] > 0).then(lines["text"]), rec=lines["rec"]
    )


def _multi_line_records(lines: pl.DataFrame) -> pl.DataFrame:
    """Records whose quoted fields span lines (rare): their lines joined and counted exactly."""
    grouped = lines.group_by("rec", maintain_order=True).agg(
        # A line inside quotes with no quote of its own has no text kept: "" counts the same.
        pl.col("text").fill_null("").str.join("\n")
    )
    return grouped.select(
        fields=_exact_fields(pl.col("text")),
        blank=False,
        quoted=pl.lit(None, pl.String),
        rec=pl.col("rec"),
    )


def _quoted_records(lines: pl.DataFrame) -> pl.DataFrame:
    """Records of lines of which some have quotes."""
    q = pl.col("quotes")
    lines = lines.with_columns(
        inside_before=(q.cum_sum() - q) % 2 == 1, inside_after=q.cum_sum() % 2 == 1
    ).with_columns(rec=(~pl.col("inside_before")).cum_sum())
    multi = lines["inside_before"] | lines["inside_after"]
    single = _single_line_records(lines.filter(~multi))
    if not multi.any():
        return single.drop("rec")
    joined = _multi_line_records(lines.filter(multi))
    return pl.concat([single, joined], how="vertical_relaxed").sort("rec").drop("rec")


def exact_fields(records: pl.DataFrame, rows: pl.Series | None = None) -> pl.Series:
    """The field count of ``records`` (from ``CsvRecords.take``), exact at least where ``rows``
    (all rows when None): lines with quotes are recounted there."""
    need = records["quoted"].is_not_null()
    if rows is not None:
        need = need & rows
    if not need.any():
        return records["fields"]
    # Only the rows in need: a when/then would run the regex on every row.
    recount = records.filter(need).select(_exact_fields(pl.col("quoted"))).to_series()
    return records["fields"].scatter(need.arg_true(), recount)


def _split_unfinished(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(lines of complete records, lines of the last record when a quote is still open)."""
    q = lines["quotes"]
    if int(q.sum()) % 2 == 0:
        return lines, lines.clear()
    starts = ((q.cum_sum() - q) % 2 == 0).arg_true()
    last = int(starts[-1])
    return lines.slice(0, last), lines.slice(last)


def _records(lines: pl.DataFrame) -> pl.DataFrame:
    return _quoted_records(lines) if lines["quotes"].max() else _plain_records(lines)


def iter_records(path: Path, line_batch: int = LINE_BATCH) -> Iterator[pl.DataFrame]:
    """``(fields, blank, quoted)`` of every record of the file, header included, in batches
    (``quoted``: the text of a line whose count ``exact_fields`` may have to correct)."""
    carry = pl.DataFrame(schema=_LINES_SCHEMA)
    for batch in _line_stats(path).collect_batches(chunk_size=line_batch, lazy=True):
        lines, carry = _split_unfinished(pl.concat([carry, batch]))
        if lines.height:
            yield _records(lines)
    if carry.height:  # a quote open at the end: Polars fails on the file anyway
        yield _records(carry)


class CsvRecords:
    """The records of the data rows of a CSV file (``iter_records``), in Polars' order.

    Leading blank lines and the header are skipped, as ``normalize`` has Polars do. ``take(n)``
    gives the next ``n`` rows (see ``exact_fields``); ``finish()`` checks that none are left.
    """

    def __init__(self, path: Path, skip: int = 0, line_batch: int = LINE_BATCH) -> None:
        """``skip``: data rows to pass over first (the reader has them already)."""
        self.path = path
        self._feed = RowFeed(iter_records(path, line_batch), name="csv-records")
        self._header_fields: int | None = -1  # not looked for yet
        self._skip = skip

    @property
    def header_fields(self) -> int | None:
        """Fields of the header; None for a file of empty lines."""
        if self._header_fields == -1:
            self._header_fields = self._header()
        return self._header_fields

    def close(self) -> None:
        self._feed.close()

    def _header(self) -> int | None:
        while (record := self._feed.take(1)) is not None:
            if not record["blank"][0]:  # blank lines before the header are skipped too
                return int(exact_fields(record)[0])
        return None

    def take(self, n: int) -> pl.DataFrame:
        if self.header_fields is None:
            raise self.mismatch()
        if self._skip:
            skipped, self._skip = self._feed.take(self._skip), 0
            if skipped is None:
                raise self.mismatch()
        rows = self._feed.take(n)
        if rows is None:
            raise self.mismatch()
        return rows

    def finish(self) -> None:
        if self._skip:
            self.take(0)
        if self.header_fields is not None and not self._feed.exhausted():
            raise self.mismatch()

    def mismatch(self) -> SourceError:
        return SourceError(
            f"cannot read {str(self.path)!r}: its rows could not be told apart "
            "(a quote left open, or a quote inside an unquoted field?)",
            path=str(self.path),
        )
