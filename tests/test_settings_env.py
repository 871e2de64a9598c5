"""propsync.settings_env: the settings a read needs without pydantic. Whenever it answers, it
answers what propsync.config.Settings would; otherwise it leaves the answer to Settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from propsync.config import ENV_VARS, Settings
from propsync.errors import UsageError
from propsync.settings_env import CORE_ENV, duckdb_memory_limit, plain_warehouse


def test_the_variables_are_the_settings_variables() -> None:
    assert CORE_ENV == dict(ENV_VARS) == dict(Settings.ENV)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, None), ("", None), ("none", None), (" Default ", None), ("1GB", "1GB")],
)
def test_duckdb_memory_limit(given: str | None, expected: str | None) -> None:
    assert duckdb_memory_limit(given) == expected


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    option=st.sampled_from([None, "", "wh", "a-file", "sub/dir"]),
    env_warehouse=st.sampled_from([None, "", " ", "from-env", "a-file"]),
    other=st.sampled_from([None, "PROPSYNC_KEEP_RUNS=0", "PROPSYNC_KEEP_RUNS=5", "PROPSYNC_X=1"]),
)
def test_it_agrees_with_settings_or_defers_to_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str | None,
    env_warehouse: str | None,
    other: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    env: dict[str, str] = {}
    if env_warehouse is not None:
        env["PROPSYNC_WAREHOUSE"] = env_warehouse
    if other is not None:
        var, value = other.split("=")
        env[var] = value
    plain = plain_warehouse(option, env)
    try:
        resolved: Path | None = Settings.from_env(env=env, warehouse=option).warehouse
    except UsageError:
        resolved = None
    if plain is not None:
        assert plain == resolved
    chosen = option if option is not None else env_warehouse
    if other == "PROPSYNC_KEEP_RUNS=0" or chosen == "a-file":
        assert plain is None  # Settings refuses these, and says why
    if other is None and chosen != "a-file" and option != "":
        assert plain is not None  # the fast path is taken when nothing else is set
