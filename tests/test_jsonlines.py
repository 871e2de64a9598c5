"""JSON Lines keys: missing vs null, the last of equal keys, arrays and objects exactly, against
Python's json (what the SDKs mean) as the oracle, for random lines written in random styles."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from propsync import jsonlines
from propsync.normalize import iter_source

MAPPED = ["id", "a", "b", "c"]  # a: integers, b: strings, c: arrays/objects; z is not mapped
TRICKY = ['"a": null', "{", "[1]", "\\", 'x", "a": 1', "é", ""]


def value_for(rng: random.Random, key: str, typed: bool) -> Any:
    """``typed``: values Polars can give one type per key (else it reads the file as text)."""
    if rng.random() < 0.2:
        return None
    if key == "a":
        return rng.randint(-5, 5)
    if key in ("b", "id"):
        return rng.choice(TRICKY) if rng.random() < 0.5 else f"s{rng.randint(0, 9)}"
    if key == "c":
        typed_values = [[1, "x"], [], [2]]
        return rng.choice(typed_values if typed else [*typed_values, {"a": None}, [{"c": 1}]])
    typed_values = [{"a": None}, {"a": 1, "b": None}, {"b": "x"}]  # z
    return rng.choice(typed_values if typed else [*typed_values, [{"a": 2}], "a"])


def encode_key(rng: random.Random, key: str) -> str:
    if rng.random() < 0.1:
        return '"' + "".join(f"\\u{ord(ch):04x}" for ch in key) + '"'
    return json.dumps(key)


def random_line(rng: random.Random, typed: bool) -> str:
    pairs = [("id", f"u{rng.randint(0, 3)}")]
    for _ in range(rng.randint(0, 6)):
        key = rng.choice(["a", "b", "c", "z"])
        pairs.append((key, value_for(rng, key, typed)))
    rng.shuffle(pairs)
    colon = rng.choice([":", ": ", " : ", "\t:"])
    body = ", ".join(encode_key(rng, k) + colon + json.dumps(v) for k, v in pairs)
    return "{" + body + "}"


def ensure_types(lines: list[str]) -> list[str]:
    """One line with each mapped key of its kind, so that every key is in the file."""
    return [*lines, '{"id": "u9", "a": 1, "b": "s", "c": [1], "z": {"a": 1, "b": "y"}}']


@pytest.mark.parametrize("step_1", [True, False], ids=["key-counts", "json-only"])
@pytest.mark.parametrize("typed", [True, False])
@pytest.mark.parametrize("seed", range(25))
def test_keys_and_values_match_pythons_json(
    tmp_path: Path, seed: int, typed: bool, step_1: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # step_1: the per-key counts run however few rows need them (else Python's json parses them)
    monkeypatch.setattr(jsonlines, "_PARSE_AT_MOST", 0 if step_1 else 10**9)
    rng = random.Random(seed)
    lines = ensure_types([random_line(rng, typed) for _ in range(rng.randint(1, 40))])
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = []
    for chunk in iter_source(path, chunk_rows=rng.randint(1, 7), columns=MAPPED):
        frame = chunk.frame
        if typed:  # Polars' own types, not the text fallback
            assert frame["a"].dtype == pl.Int64
        for i in range(frame.height):
            got = {}
            for key in MAPPED:
                if bool(chunk.absent[key][i]):
                    continue
                value = frame[key][i]
                json_cell = chunk.json_cells.get(key)
                if json_cell is not None and bool(json_cell[i]):
                    value = json.loads(value)
                elif key == "a" and isinstance(value, str):
                    value = int(value)  # a file Polars cannot type is read as text
                got[key] = value
            rows.append(got)
    expected = [{k: v for k, v in json.loads(text).items() if k in MAPPED} for text in lines]
    assert rows == expected


def test_blank_lines_are_skipped_and_lines_of_several_kinds(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(
        '\n{"id": "u1", "a": 1, "a": 2}\n  \n\r\n{"id": "u2", "a": null}\n{"id": "u3"}\n',
        encoding="utf-8",
    )
    (chunk,) = iter_source(path, columns=["id", "a"])
    assert chunk.frame["a"].to_list() == [2, None, None]
    assert chunk.absent["a"].to_list() == [False, False, True]
