"""The HTTP service's configuration (propsync.api.config): one TOML file sets the service's keys
and every core setting; the environment given (not the process's) overrides the file, the command
line overrides both, and a bad value is a usage error naming where it was written."""

from __future__ import annotations

from pathlib import Path

import pytest

from propsync.api.config import load_config
from propsync.config import ENV_VARS, Settings
from propsync.errors import UsageError

# A value other than the default for every core setting, as a TOML line and as the model holds it.
CORE_VALUES: dict[str, tuple[str, object]] = {
    "hard_id_types": ('["registered", "email"]', ("registered", "email")),
    "max_future_skew_seconds": ("30", 30.0),
    "max_reject_ratio": ("0.5", 0.5),
    "lock_timeout_seconds": ("7", 7.0),
    "duckdb_memory_limit": ('"1GB"', "1GB"),
    "audit_full_max_updates": ("10", 10),
    "keep_runs": ("5", 5),
    "keep_published_versions": ("2", 2),
    "file_retention_seconds": ("60", 60.0),
    "auto_compact": ("false", False),
}


def test_every_core_setting_has_a_case_here() -> None:
    assert set(CORE_VALUES) | {"warehouse"} == set(ENV_VARS)


def test_the_config_file_sets_every_core_setting(tmp_path: Path) -> None:
    toml = tmp_path / "propsync.toml"
    lines = [f"{key} = {text}" for key, (text, _) in CORE_VALUES.items()]
    toml.write_text("\n".join([f'warehouse = "{tmp_path / "wh"}"', *lines, "max_commands = 20"]))
    service, settings = load_config(toml, env={})
    assert service.max_commands == 20
    assert settings.warehouse == tmp_path / "wh"
    for key, (_, value) in CORE_VALUES.items():
        assert getattr(settings, key) == value, key
        assert getattr(Settings(), key) != value, key  # the case tests something


def test_the_given_environment_overrides_the_file_and_the_command_line_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "propsync.toml"
    toml.write_text('duckdb_memory_limit = "1GB"\nlock_timeout_seconds = 7\n')
    monkeypatch.setenv("PROPSYNC_DUCKDB_MEMORY_LIMIT", "3GB")  # not the environment given
    _, settings = load_config(toml, env={"PROPSYNC_DUCKDB_MEMORY_LIMIT": "2GB"})
    assert settings.duckdb_memory_limit == "2GB"
    assert settings.lock_timeout_seconds == 7.0
    _, settings = load_config(toml, env={}, warehouse=tmp_path / "cli")
    assert (settings.duckdb_memory_limit, settings.warehouse) == ("1GB", tmp_path / "cli")


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ('duckdb_memory_limit = "lots"', "duckdb_memory_limit = 'lots' in "),
        ("keep_runs = 0", "keep_runs = 0 in "),
        ("auto_compact = 3", "auto_compact = 3 in "),
    ],
)
def test_a_bad_core_value_in_the_file_names_its_key_and_the_file(
    tmp_path: Path, line: str, named: str
) -> None:
    toml = tmp_path / "propsync.toml"
    toml.write_text(line + "\n")
    with pytest.raises(UsageError) as exc:
        load_config(toml, env={})
    assert named in str(exc.value)
    assert str(toml) in str(exc.value)
