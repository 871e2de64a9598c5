"""propsync.config: one resolver for every settings model. Options beat the environment, which
beats a config file, which beats computed defaults; an invalid value names where it was written
and never echoes a secret."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from propsync.api.config import ServiceConfig
from propsync.config import Settings, SettingsModel, read_config_file
from propsync.errors import UsageError
from propsync.orchestration.settings import DataSettings, ScheduleSettings

MODELS: list[type[SettingsModel]] = [Settings, ServiceConfig, ScheduleSettings, DataSettings]
# Fields no user sets by a variable: `propsync serve --no-apply`, and a size tests shrink.
NO_VARIABLE = {("ServiceConfig", "apply_enabled"), ("ServiceConfig", "journal_segment_bytes")}
ROOT = Path(__file__).resolve().parents[1]


class Toy(SettingsModel):
    ENV: ClassVar[Mapping[str, str]] = {"size": "TOY_SIZE", "token": "TOY_TOKEN"}
    OPTIONS: ClassVar[Mapping[str, str]] = {"size": "--size"}
    SECRET: ClassVar[frozenset[str]] = frozenset({"token"})

    size: int = Field(default=1, ge=1)
    token: str = Field(default="none-given", min_length=8)
    where: str = "model default"


@pytest.mark.parametrize(
    ("options", "env", "file", "expected"),
    [
        ({"size": 4}, {"TOY_SIZE": "3"}, {"size": 2}, 4),
        ({"size": None}, {"TOY_SIZE": "3"}, {"size": 2}, 3),
        ({}, {"TOY_SIZE": "  "}, {"size": 2}, 2),
        ({}, {}, {}, 5),
    ],
)
def test_options_beat_the_environment_beats_the_file_beats_defaults(
    options: dict[str, object], env: dict[str, str], file: dict[str, object], expected: int
) -> None:
    toy = Toy.resolve(env=env, file=file, options=options, defaults={"size": 5})
    assert toy.size == expected
    assert Toy.resolve(env={}).size == 1


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"env": {"TOY_SIZE": "0"}}, "TOY_SIZE=0: must be a whole number >= 1"),
        ({"env": {}, "options": {"size": 0}}, "--size 0: must be a whole number >= 1"),
        ({"env": {}, "options": {"size": 0}, "labels": {"size": "size=0"}}, "size=0: must"),
        ({"env": {}, "file": {"size": 0}, "file_name": "t.toml"}, "size = 0 in t.toml: must"),
        ({"env": {}, "file": {"colour": "red"}, "file_name": "t.toml"}, "colour = 'red' in t.toml"),
    ],
)
def test_an_invalid_value_names_where_it_was_written(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(UsageError) as exc:
        Toy.resolve(**kwargs)  # type: ignore[arg-type]
    assert named in str(exc.value)


def test_a_secret_is_named_but_never_shown() -> None:
    with pytest.raises(UsageError) as exc:
        Toy.resolve(env={"TOY_TOKEN": "s3cret"})
    assert "TOY_TOKEN: " in str(exc.value)
    assert "s3cret" not in str(exc.value)
    with pytest.raises(UsageError) as exc:
        Toy.resolve(env={}, file={"token": "s3cret"}, file_name="t.toml")
    assert "token in t.toml: " in str(exc.value)
    assert "s3cret" not in str(exc.value)
    assert "s3cret" not in repr(exc.value.__cause__)


def test_every_setting_has_one_variable_and_every_variable_is_documented() -> None:
    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))
    )
    seen: dict[str, str] = {}
    for model in MODELS:
        for field in model.model_fields:
            if (model.__name__, field) in NO_VARIABLE:
                assert field not in model.ENV
                continue
            var = model.ENV[field]
            assert var.startswith("PROPSYNC_"), var
            assert var not in seen, f"{var} is used by {seen.get(var)} and {model.__name__}"
            seen[var] = model.__name__
            assert f"`{var}" in docs, f"{var} is not documented"
        assert set(model.ENV) <= set(model.model_fields), model.__name__


def test_the_environment_reaches_every_model_the_same_way() -> None:
    env = {
        "PROPSYNC_KEEP_RUNS": "7",
        "PROPSYNC_MAX_COMMANDS": "9",
        "PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS": "3",
        "PROPSYNC_GX_CHUNK_ROWS": "11",
    }
    assert Settings.from_env(env=env).keep_runs == 7
    assert ServiceConfig.resolve(env=env).max_commands == 9
    assert ScheduleSettings.from_env(env=env).snapshot_max_active_runs == 3
    data = DataSettings.from_env(Path("/wh"), env=env)
    assert (data.gx_chunk_rows, data.staging) == (11, Path("/wh/staging"))
    bad = {"PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS": "0"}
    with pytest.raises(UsageError, match="PROPSYNC_SNAPSHOT_MAX_ACTIVE_RUNS=0: must be"):
        ScheduleSettings.from_env(env=bad)


def test_a_config_file_that_is_missing_or_not_toml_is_a_usage_error(tmp_path: Path) -> None:
    assert read_config_file(None) == {}
    with pytest.raises(UsageError, match="does not exist"):
        read_config_file(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("warehouse = \n")
    with pytest.raises(UsageError, match="is not valid TOML"):
        read_config_file(broken)
