"""The exceptions (propsync.errors): each says whether retrying can help and which exit code the
command line gives it, and carries its structured fields into its dict."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import propsync
from propsync.cli import main
from propsync.errors import (
    AuditFailed,
    BatchRejected,
    DatabaseInUse,
    MappingError,
    NotPublished,
    PayloadInvalid,
    PropsyncError,
    SourceError,
    UnknownCustomer,
    UsageError,
    WarehouseLocked,
)
from propsync.journal.layout import JournalUnavailable
from propsync.operations.edit import EditError
from propsync.sqlshell import SqlError
from propsync.store.migrations import WarehouseTooNew
from propsync.store.read_model import BuildCancelled
from propsync.store.runs import RunMissing

# (retryable, exit code) of every error class of the package: retrying helps only while another
# process holds something (a lock, a file) or the journal is closing.
EXPECTED: dict[type[PropsyncError], tuple[bool, int]] = {
    PropsyncError: (False, 1),
    UsageError: (False, 2),
    MappingError: (False, 2),
    SourceError: (False, 2),
    WarehouseTooNew: (False, 2),
    PayloadInvalid: (False, 1),
    BatchRejected: (False, 1),
    AuditFailed: (False, 1),
    EditError: (False, 1),
    SqlError: (False, 1),
    RunMissing: (False, 1),
    BuildCancelled: (False, 1),
    UnknownCustomer: (False, 3),
    NotPublished: (False, 3),
    WarehouseLocked: (True, 1),
    DatabaseInUse: (True, 1),
    JournalUnavailable: (True, 1),
}


def subclasses(cls: type[PropsyncError]) -> set[type[PropsyncError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= subclasses(sub)
    return found


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_error_says_whether_retrying_helps_and_its_exit_code(
    cls: type[PropsyncError],
) -> None:
    assert (cls.retryable, cls.exit_code) == EXPECTED[cls]


def test_every_error_class_of_the_package_is_classified_here() -> None:
    # Every module but the orchestration's, which import Airflow (and define no errors).
    for module in pkgutil.walk_packages(propsync.__path__, "propsync."):
        if not module.name.startswith("propsync.orchestration"):
            importlib.import_module(module.name)
    ours = {c for c in subclasses(PropsyncError) if c.__module__.startswith("propsync.")}
    assert ours == set(EXPECTED)


def test_structured_fields_are_attributes_and_part_of_the_dict() -> None:
    exc = MappingError("invalid mapping at ids[0].to_id", field="ids[0].to_id", value="a:b")
    assert (exc.field, exc.value, exc.message) == ("ids[0].to_id", "a:b", str(exc))
    assert exc.to_dict() == {
        "error": "MappingError",
        "message": "invalid mapping at ids[0].to_id",
        "field": "ids[0].to_id",
        "value": "a:b",
    }
    locked = WarehouseLocked("busy", holder_pid="42")
    assert locked.to_dict() == {"error": "WarehouseLocked", "message": "busy", "holder_pid": "42"}
    assert isinstance(AuditFailed("x"), BatchRejected)
    assert isinstance(SourceError("x"), UsageError)


def test_the_command_line_exits_with_the_errors_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = str(tmp_path / "empty")
    assert main(["get", "registered:nobody", "--warehouse", empty]) == NotPublished.exit_code
    assert f"warehouse directory {empty!r} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["get", "registered:nobody", "--warehouse", empty]) == NotPublished.exit_code
    assert "has no published version yet" in capsys.readouterr().err
    missing = str(tmp_path / "missing.csv")
    mapping = str(tmp_path / "mapping.json")
    assert main(["import", missing, "--mapping", mapping, "--warehouse", empty]) == 2
    assert "propsync: error:" in capsys.readouterr().err
