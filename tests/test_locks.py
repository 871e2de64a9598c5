"""The inter-process lock (propsync.locks) on real files: a waiter times out naming the holder's
pid, and a holder sees who waits (``others_waiting``)."""

from __future__ import annotations

import threading
from pathlib import Path

from propsync.errors import WarehouseLocked
from propsync.locks import exclusive_lock, others_waiting
from tests.helpers import wait_for


def busy(holder: str) -> str:
    return f"held by {holder}"


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
