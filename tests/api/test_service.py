"""The read model over real HTTP: GETs read the SQLite read model the server builds once and then
follows run by run, a PATCH applies its own run before it answers (read-your-writes without a
build to wait for), two workers build it once and both read every edit, and a killed server
catches up on the runs when it starts again."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from propsync.config import Settings
from propsync.journal import apply_journal
from propsync.locks import exclusive_lock
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse
from tests.api.conftest import (
    AUTH,
    ServerProcess,
    batch_url,
    customers_command,
    start_server,
    unique,
)
from tests.helpers import apply


@contextlib.contextmanager
def follower_lock(server: ServerProcess) -> Iterator[None]:
    """Hold the read model's lock, as another process building or following it does."""
    model = ReadModel(server.warehouse)
    model.dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(model.lock_path, 10, lambda holder: f"held by {holder}"):
        yield


def track(server: ServerProcess, user: str, props: dict[str, object]) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post(
            batch_url(),
            json={"commands": [customers_command({"registered": user}, props, 1_600_000_000)]},
        )
        assert r.status_code == 200, r.text
    server.apply()


def builds(server: ServerProcess) -> list[int]:
    """The read model builds of the server's processes, one entry per build (from its log)."""
    return [int(v) for v in re.findall(r"built the read model of version (\d+)", server.log_text())]


def test_gets_read_the_read_model_which_follows_each_version(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh")
    try:
        c = server.client()
        assert server.serving() == {"version": 0, "indexed": False}  # nothing published yet
        user = unique("srv")
        track(server, user, {"a": 1})
        r = c.get(f"/api/customers/registered:{user}")
        assert r.status_code == 200 and r.json()["properties"] == {"a": 1}
        assert r.headers["x-propsync-version"] == "1"
        assert server.serving() == {"version": 1, "indexed": True}
        assert ReadModel(server.warehouse).exists()
        for n in range(2, 5):
            track(server, user, {"a": n})
            r = c.get(f"/api/customers/registered:{user}")
            assert r.json()["properties"] == {"a": n}
            assert r.headers["x-propsync-version"] == str(n)
        assert builds(server) == [1]  # built once; versions 2-4 followed by their runs
        assert "read model at version 4: applied 1 run(s)" in server.log_text()
    finally:
        assert server.stop() == 0


def test_reads_keep_their_version_while_another_process_follows(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh")
    try:
        c = server.client()
        user = unique("keep")
        track(server, user, {"a": 1})
        with follower_lock(server):  # the model cannot be followed meanwhile
            with httpx.Client(base_url=server.url) as t:
                body = {"commands": [customers_command({"registered": user}, {"a": 2}, 1.7e9)]}
                assert t.post(batch_url(), json=body).status_code == 200
            # Applied by hand: ``server.apply()`` would wait for the read model.
            assert apply_journal(server.warehouse, Settings(warehouse=server.root)) == 1
            assert server.warehouse.published_version() == 2
            for _ in range(20):  # answered at once, from the version read so far
                r = c.get(f"/api/customers/registered:{user}")
                assert r.json()["properties"] == {"a": 1}
                assert r.headers["x-propsync-version"] == "1"
            assert server.serving() == {"version": 1, "indexed": True}
        server.wait_serving()
        r = c.get(f"/api/customers/registered:{user}")
        assert r.json()["properties"] == {"a": 2} and r.headers["x-propsync-version"] == "2"
    finally:
        assert server.stop() == 0


def test_patch_applies_its_run_and_the_next_get_shows_it(tmp_path: Path) -> None:
    # A follower thread that would take an hour to look by itself: edits are read at once
    # because the edit follows its own run (and a read that sees a new version wakes it).
    server = start_server(tmp_path / "wh", env={"PROPSYNC_READ_MODEL_POLL": "3600"})
    try:
        c = server.client()
        user = unique("ryw")
        with httpx.Client(base_url=server.url) as t:
            body = {"commands": [customers_command({"registered": user}, {"name": "Eva"}, 1e9)]}
            assert t.post(batch_url(), json=body).status_code == 200
        assert apply_journal(server.warehouse, Settings(warehouse=server.root)) == 1
        assert c.get(f"/api/customers/registered:{user}").status_code == 200  # starts the build
        server.wait_serving()
        for name in ("Ema", "Eli", "Ela"):
            r = c.patch(f"/api/customers/registered:{user}", json={"properties": {"name": name}})
            assert r.status_code == 200, r.text
            assert r.json()["properties"]["name"]["value"] == name
            g = c.get(f"/api/customers/registered:{user}")
            assert g.json()["properties"] == {"name": name}
            assert int(g.headers["x-propsync-version"]) == server.warehouse.published_version()
        assert builds(server) == [1]
        assert "but this server still serves" not in server.log_text()
    finally:
        assert server.stop() == 0


def test_patch_answers_after_its_wait_bound_with_the_edit(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh", env={"PROPSYNC_EDIT_VISIBLE_TIMEOUT": "0.3"})
    try:
        c = server.client()
        user = unique("late")
        track(server, user, {"name": "Eva"})
        with follower_lock(server):
            r = c.patch(f"/api/customers/registered:{user}", json={"properties": {"name": "Ema"}})
            assert r.status_code == 200, r.text
            # The answer has the edit (read from the published file) although the read model
            # could not follow; reads show it once it has.
            assert r.json()["properties"]["name"]["value"] == "Ema"
            assert c.get(f"/api/customers/registered:{user}").json()["properties"] == {
                "name": "Eva"
            }
        assert "but this server still serves version 1 after 0.3 s" in server.log_text()
        server.wait_serving()
        assert c.get(f"/api/customers/registered:{user}").json()["properties"] == {"name": "Ema"}
    finally:
        assert server.stop() == 0


def test_two_workers_build_once_and_both_read_an_edit(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh", args=["--workers", "2"])
    try:
        user = unique("w2")
        track(server, user, {"n": 0})
        for n in range(1, 4):
            with httpx.Client(base_url=server.url, auth=AUTH) as c:
                r = c.patch(f"/api/customers/registered:{user}", json={"properties": {"n": n}})
                assert r.status_code == 200, r.text
            version = server.warehouse.published_version()
            # Every request on a new connection, so both workers answer some of them: each
            # shows the edit at once (both read the one model file).
            for _ in range(20):
                g = httpx.get(f"{server.url}/api/customers/registered:{user}", auth=AUTH)
                assert g.json()["properties"] == {"n": n}, g.headers
                assert int(g.headers["x-propsync-version"]) == version
        assert builds(server) == [1], server.log_text()
    finally:
        assert server.stop() == 0


def test_a_killed_server_catches_up_on_the_runs_when_it_starts_again(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh")
    user = unique("k9")
    try:
        track(server, user, {"n": 0})
    finally:
        server.kill9()
    assert builds(server) == [1]
    settings = Settings(warehouse=server.root)
    for n in range(1, 4):  # published while no server runs
        apply(server.warehouse, settings, f"off{n}", [({"registered": user}, "n", n, 1.7e9 + n)])
    again = start_server(server.root)
    try:
        g = again.client().get(f"/api/customers/registered:{user}")
        assert g.json()["properties"] == {"n": 3}
        assert g.headers["x-propsync-version"] == "4"
        assert builds(again) == []  # no rebuild: three runs applied
        assert "read model at version 4: applied 3 run(s)" in again.log_text()
    finally:
        assert again.stop() == 0


def test_a_service_closed_right_after_it_opened_waits_for_its_warm_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warm-up of the edit path uses the writer instance that close() shuts: closing first
    made it log "Connection already closed" (and a process exiting then could abort)."""
    from propsync.api.config import ServiceConfig
    from propsync.api.service import Service

    settings = Settings(warehouse=tmp_path / "wh", lock_timeout_seconds=5)
    apply(Warehouse(settings.warehouse), settings, "b1", [({"registered": "a"}, "p", 1, 1)])
    for _ in range(3):
        service = Service(ServiceConfig(), settings, journal=None)
        with caplog.at_level(logging.INFO, logger="propsync"):
            service.open()
            service.close()
        assert service.warm_up is not None and not service.warm_up.is_alive()
        assert "warm-up failed" not in caplog.text and "already closed" not in caplog.text
        assert "edit path warmed up" in caplog.text
        caplog.clear()
