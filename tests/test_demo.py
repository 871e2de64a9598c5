"""``propsync demo`` (propsync.demo): the specification's story on the shipped samples, ending in
the story's final state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import run


def test_demo_runs_the_specification_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = tmp_path / "demo"
    code, out, _ = run(capsys, "demo", "--warehouse", str(wh))
    assert code == 0, out
    got = json.loads(
        run(capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", str(wh))[1]
    )
    props = got["properties"]
    # 09:00 tracking beats the 08:00 snapshot and the 08:30 postponed SDK call.
    assert props["email"] == {"value": "marian@new.example", "last_update": 1569999600}
    assert props["first_name"] == {"value": "Marián", "last_update": 1569999600}
    # The snapshot replaced the legacy last name; the postponed call added app_version.
    assert props["last_name"] == {"value": "Galik", "last_update": 1569996000}
    assert props["app_version"] == {"value": "2.1.0", "last_update": 1569997800}
    assert got["ids"] == {"cookie": ["3f2a-web"], "registered": ["mgalik"]}
    # Peter's age was not a number: quarantined, his legacy name was still replaced.
    peter = json.loads(
        run(capsys, "get", "registered:pkral", "--include-timestamps", "--warehouse", str(wh))[1]
    )
    assert "age" not in peter["properties"]
    assert peter["properties"]["first_name"]["last_update"] == 1569996000
