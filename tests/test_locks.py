"""The inter-process lock (propsync.locks) on real files: a waiter times out naming the holder's
pid, and a holder sees who waits (``others_waiting``); a shared presence lock is seen by all
processes and dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from propsync.errors import WarehouseLocked
from propsync.locks import exclusive_lock, held, others_waiting, presence
from tests.helpers import wait_for

HOLDER = """
import sys, time
from pathlib import Path
from propsync.locks import exclusive_lock
with exclusive_lock(Path(sys.argv[1]), 5, str):
    print("held", flush=True)
    time.sleep(600)
"""


def busy(holder: str) -> str:
    return f"held by {holder}"


@pytest.fixture
def other_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds ``tmp_path / "x.lock"`` until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "x.lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def test_a_second_holder_times_out_naming_the_holder(
    tmp_path: Path, other_process: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(WarehouseLocked) as info, exclusive_lock(tmp_path / "x.lock", 0.3, busy):
        pytest.fail("the lock of another process was taken")
    assert time.monotonic() - started >= 0.3  # it waited its timeout
    assert info.value.message == f"held by {other_process.pid}"
    assert info.value.fields == {"holder_pid": str(other_process.pid)}
    assert info.value.retryable


def test_the_lock_is_free_once_its_holder_dies(
    tmp_path: Path, other_process: subprocess.Popen[str]
) -> None:
    os.kill(other_process.pid, signal.SIGKILL)
    other_process.wait(10)
    path = tmp_path / "x.lock"
    assert path.read_text() == str(other_process.pid)  # the pid of the dead holder stays...
    with exclusive_lock(path, 5, busy):
        assert path.read_text() == str(os.getpid())  # ...until the next holder writes its own


def test_one_holder_at_a_time_within_a_process_too(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with (
        exclusive_lock(path, 1, busy),
        pytest.raises(WarehouseLocked, match=f"held by {os.getpid()}"),
        exclusive_lock(path, 0.05, busy),
    ):
        pytest.fail("taken twice")
    with exclusive_lock(path, 0, busy):  # released on leaving: free at once
        pass


def test_others_waiting_sees_a_waiter_until_it_has_the_lock_or_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    assert not others_waiting(path)  # no wait file yet
    got: list[str] = []

    def wait(timeout: float) -> None:
        try:
            with exclusive_lock(path, timeout, busy):
                got.append("lock")
        except WarehouseLocked:
            got.append("gave up")

    with exclusive_lock(path, 1, busy):
        assert not others_waiting(path)
        quick = threading.Thread(target=wait, args=(0.3,))
        quick.start()
        wait_for(lambda: others_waiting(path))
        quick.join(10)
        assert got == ["gave up"] and not others_waiting(path)
        patient = threading.Thread(target=wait, args=(30,))
        patient.start()
        wait_for(lambda: others_waiting(path))
        assert got == ["gave up"]
    patient.join(10)
    assert got == ["gave up", "lock"] and not others_waiting(path)


PRESENT = """
import sys, time
from pathlib import Path
from propsync.locks import presence
with presence(Path(sys.argv[1])):
    print("present", flush=True)
    time.sleep(600)
"""


def test_presence_is_seen_by_every_process_until_its_holder_leaves_or_dies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.present"
    assert not held(path)  # no file yet
    with presence(path):
        assert held(path)  # seen from another open file in the same process too
        with presence(path):  # shared: a second holder is not refused
            assert held(path)
    assert not held(path)
    proc = subprocess.Popen(
        [sys.executable, "-c", PRESENT, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "present"
        assert held(path) and held(path)  # looking does not take it away
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert not held(path)  # the kernel let go with the process
    finally:
        proc.kill()
        proc.wait(10)
