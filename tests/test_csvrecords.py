"""CSV field counts per row, against Python's csv module as the oracle, across batch boundaries."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import polars as pl
import pytest

from propsync.csvrecords import CsvRecords, exact_fields

ALPHABET = ["a", "b", ",", '"', "\n", "\r\n", " ", "é"]


def random_file(rng: random.Random, width: int) -> tuple[bytes, list[int | None]]:
    """A CSV file of rows with random field counts and contents, and blank lines (None)."""
    buf = io.StringIO()
    quoting = rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
    writer = csv.writer(buf, lineterminator=rng.choice(["\n", "\r\n"]), quoting=quoting)
    writer.writerow([f"h{i}" for i in range(width)])
    expected: list[int | None] = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.15:
            buf.write(rng.choice(["\n", "  \n", "\t\r\n"]))
            expected.append(None)
            continue
        fields = rng.randint(1, width + 2)
        row = ["".join(rng.choices(ALPHABET, k=rng.randint(0, 4))) for _ in range(fields)]
        if fields == 1 and not row[0].strip(" \r") and "\n" not in row[0]:
            row[0] = "x"  # a single empty or blank field would be a blank line
        writer.writerow(row)
        expected.append(fields)
    return buf.getvalue().encode(), expected


def counted(path: Path, line_batch: int) -> tuple[int | None, list[int | None]]:
    rows = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True).height
    records = CsvRecords(path, line_batch=line_batch)
    try:
        shape = records.take(rows) if rows else None
        records.finish()
        header = records.header_fields
    finally:
        records.close()
    if shape is None:
        return header, []
    fields = exact_fields(shape).to_list()
    return header, [None if b else f for f, b in zip(fields, shape["blank"], strict=True)]


@pytest.mark.parametrize("seed", range(40))
def test_field_counts_match_pythons_csv_module(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for trial in range(25):
        width = rng.randint(1, 4)
        data, expected = random_file(rng, width)
        path = tmp_path / f"{trial}.csv"
        path.write_bytes(data)
        assert counted(path, line_batch=rng.randint(1, 5)) == (width, expected), data


def test_leading_empty_lines_are_skipped_and_a_record_may_span_batches(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'\n\r\nid,a,b\n"u1","x\n\n\nlong,line,with,commas\nend",c\nu2\n')
    assert counted(path, line_batch=1) == (3, [3, 1])


def test_rows_that_do_not_add_up_are_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,a\nu1,x\n")
    records = CsvRecords(path)
    try:
        with pytest.raises(Exception, match="could not be told apart"):
            records.take(2)
    finally:
        records.close()


@pytest.mark.parametrize("seed", range(20))
def test_the_reader_marks_exactly_the_rows_of_another_width(tmp_path: Path, seed: int) -> None:
    # Through normalize's reader: the strict read, the switch to counting, and exact_fields only
    # where a row's last cell is empty must together mark exactly the rows the oracle says.
    from propsync.normalize import iter_source

    rng = random.Random(1000 + seed)
    for trial in range(10):
        width = rng.randint(1, 4)
        data, expected = random_file(rng, width)
        path = tmp_path / f"{trial}.csv"
        path.write_bytes(data)
        marked: list[str | None] = []
        for chunk in iter_source(path, chunk_rows=rng.randint(1, 4)):
            errors = chunk.row_errors
            marked += [None] * chunk.frame.height if errors is None else errors.to_list()
        rows = [f for f in expected if f is not None]
        assert [m is not None for m in marked] == [f != width for f in rows], data
        assert all(
            m is None or m.startswith(f"row has {f} fields")
            for m, f in zip(marked, rows, strict=True)
        )
