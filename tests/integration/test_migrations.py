"""Schema versions and in-place upgrades, on a warehouse written by release 0.1.0.

``tests/fixtures/warehouse-0.1.0.tar.gz`` is ``propsync demo`` run by release 0.1.0 (commit
0024b19): it records no schema version and leaves its published versions writable.
"""

from __future__ import annotations

import logging
import stat
import tarfile
from pathlib import Path

import duckdb
import pytest

from propsync.cli import main
from propsync.store import migrations
from propsync.store.warehouse import Warehouse

FIXTURE = Path(__file__).parents[1] / "fixtures" / "warehouse-0.1.0.tar.gz"
NOTICE = "upgrading warehouse"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    root = tmp_path / "legacy"
    root.mkdir()
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(root, filter="tar")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def recorded_version(root: Path) -> int:
    with duckdb.connect(str(root / "work.duckdb"), read_only=True) as con:
        return migrations.schema_version(con)


def published_modes(root: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in (root / "published").glob("v*")}


def test_the_fixture_is_a_legacy_warehouse(legacy: Path) -> None:
    assert recorded_version(legacy) == 0
    assert set(published_modes(legacy).values()) == {0o644}


def test_migrate_upgrades_in_place_and_keeps_the_data(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = run(
        capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", str(legacy)
    )
    assert before[0] == 0

    code, out, _ = run(capsys, "migrate", "--warehouse", str(legacy))

    assert code == 0
    assert out == f"upgraded warehouse {legacy} from schema version 0 to 1\n"
    assert recorded_version(legacy) == migrations.SCHEMA_VERSION == 1
    assert set(published_modes(legacy).values()) == {0o444}
    after = run(
        capsys, "get", "registered:mgalik", "--include-timestamps", "--warehouse", str(legacy)
    )
    assert after == before
    code, out, _ = run(capsys, "migrate", "--warehouse", str(legacy))
    assert (code, out) == (0, f"warehouse {legacy} is at schema version 1: up to date\n")


def test_the_first_write_upgrades_with_one_log_line(
    legacy: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="propsync.migrations"):
        code, _, _ = run(capsys, "set", "registered:mgalik", "age:=41", "--warehouse", str(legacy))
        assert code == 0
        notices = [r.getMessage() for r in caplog.records if NOTICE in r.getMessage()]
        assert notices == [
            f"propsync: upgrading warehouse {legacy} from schema version 0 to 1: "
            "published versions read-only; schema version recorded"
        ]
        caplog.clear()
        code, _, _ = run(capsys, "set", "registered:mgalik", "age:=42", "--warehouse", str(legacy))
        assert code == 0
        assert not [r for r in caplog.records if NOTICE in r.getMessage()]
    assert recorded_version(legacy) == 1
    code, out, _ = run(capsys, "get", "registered:mgalik", "--warehouse", str(legacy))
    assert code == 0 and '"age": 42' in out and '"first_name": "Marián"' in out


def test_a_new_warehouse_is_stamped_current_without_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "new"
    with caplog.at_level(logging.WARNING, logger="propsync.migrations"):
        code, _, _ = run(capsys, "set", "registered:x", "a=1", "--warehouse", str(root))
    assert code == 0
    assert not [r for r in caplog.records if NOTICE in r.getMessage()]
    assert recorded_version(root) == migrations.SCHEMA_VERSION


def test_a_crash_inside_an_upgrade_is_redone_by_the_next_writer(
    legacy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = migrations.MIGRATIONS[0]

    def crash_after_the_file_changes(root: Path, con: duckdb.DuckDBPyConnection) -> None:
        step.apply(root, con)
        raise KeyboardInterrupt  # killed before the new version is recorded

    monkeypatch.setitem(
        migrations.MIGRATIONS,
        0,
        migrations.Migration(0, step.description, crash_after_the_file_changes),
    )
    warehouse = Warehouse(legacy)
    with pytest.raises(KeyboardInterrupt), warehouse.write_lock(5):
        warehouse.connect_work()
    assert recorded_version(legacy) == 0

    monkeypatch.setitem(migrations.MIGRATIONS, 0, step)
    result = migrations.migrate(Warehouse(legacy), 5)
    assert (result.from_version, result.to_version) == (0, 1)
    assert recorded_version(legacy) == 1
    assert set(published_modes(legacy).values()) == {0o444}


def test_a_warehouse_from_a_newer_release_is_refused_untouched(
    legacy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(str(legacy / "work.duckdb")) as con:
        con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    before = (legacy / "work.duckdb").read_bytes()

    code, _, err = run(capsys, "set", "registered:mgalik", "age:=1", "--warehouse", str(legacy))

    assert code == 2
    assert err == (
        f"propsync: error: warehouse {str(legacy)!r} has schema version 99; this propsync "
        "writes version 1: upgrade propsync to use it\n"
    )
    assert (legacy / "work.duckdb").read_bytes() == before


def test_migrate_refuses_a_directory_without_a_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "migrate", "--warehouse", str(tmp_path / "nothing"))
    assert code == 2
    assert "has no working database (work.duckdb): nothing to migrate" in err
    assert not (tmp_path / "nothing").exists()
