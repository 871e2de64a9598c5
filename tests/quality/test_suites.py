"""The Great Expectations suites ship inside the package (propsync/quality/expectations/) and are
found there without configuration; PROPSYNC_EXPECTATIONS points elsewhere."""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from propsync.quality import suites

NAMES = (suites.STAGED_CELLS, suites.STAGED_SUMMARY, suites.MERGED_AUDIT)


def test_the_suites_load_from_the_package_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROPSYNC_EXPECTATIONS", raising=False)
    shipped = resources.files("propsync.quality").joinpath("expectations")
    assert suites.expectations_dir() == Path(str(shipped))
    for name in NAMES:
        assert suites.load_suite(name)["name"] == name


def test_the_package_data_pattern_ships_every_suite() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["propsync"]
    package = Path(suites.__file__).parents[1]
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    assert {package / "quality" / "expectations" / f"{n}.json" for n in NAMES} <= shipped


def test_a_configured_directory_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / f"{suites.MERGED_AUDIT}.json").write_text(
        json.dumps({"name": suites.MERGED_AUDIT, "expectations": []})
    )
    monkeypatch.setenv("PROPSYNC_EXPECTATIONS", str(tmp_path))
    assert suites.load_suite(suites.MERGED_AUDIT)["expectations"] == []
