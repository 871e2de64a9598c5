"""Serving copies over real HTTP: GETs read indexed copies built in the background, a PATCH waits
until its version is served (read-your-writes), and two workers build each version once."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from propsync.config import Settings
from propsync.journal import apply_journal
from propsync.locks import exclusive_lock
from propsync.store.serving import ServingCopies
from tests.api.conftest import (
    AUTH,
    ServerProcess,
    batch_url,
    customers_command,
    start_server,
    unique,
)


@contextlib.contextmanager
def build_lock(server: ServerProcess) -> Iterator[None]:
    """Hold the build lock, as another process building a serving copy (a slow one) does."""
    copies = ServingCopies(server.warehouse)
    copies.dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(copies.lock_path, 10, lambda holder: f"held by {holder}"):
        yield


def track(server: ServerProcess, user: str, props: dict[str, object]) -> None:
    with httpx.Client(base_url=server.url) as c:
        r = c.post(
            batch_url(),
            json={"commands": [customers_command({"registered": user}, props, 1_600_000_000)]},
        )
        assert r.status_code == 200, r.text
    server.apply()


def built_versions(server: ServerProcess) -> list[int]:
    """The serving copies the server's processes built, one entry per build (from its log)."""
    return [int(v) for v in re.findall(r"built serving copy v(\d+)", server.log_text())]


def test_gets_read_an_indexed_serving_copy_of_the_published_version(tmp_path: Path) -> None:
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
        assert ServingCopies(server.warehouse).versions() == [1]
        assert built_versions(server) == [1]
    finally:
        assert server.stop() == 0


def test_reads_keep_their_version_while_the_next_copy_is_built(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh")
    try:
        c = server.client()
        user = unique("keep")
        track(server, user, {"a": 1})
        with build_lock(server):  # the next serving copy cannot be built meanwhile
            with httpx.Client(base_url=server.url) as t:
                body = {"commands": [customers_command({"registered": user}, {"a": 2}, 1.7e9)]}
                assert t.post(batch_url(), json=body).status_code == 200
            # Applied by hand: ``server.apply()`` would wait for the serving copy.
            assert apply_journal(server.warehouse, Settings(warehouse=server.root)) == 1
            assert server.warehouse.published_version() == 2
            for _ in range(20):  # answered at once, from the version served so far
                started = time.monotonic()
                r = c.get(f"/api/customers/registered:{user}")
                assert time.monotonic() - started < 1
                assert r.json()["properties"] == {"a": 1}
                assert r.headers["x-propsync-version"] == "1"
            assert server.serving() == {"version": 1, "indexed": True}
        server.wait_serving()
        r = c.get(f"/api/customers/registered:{user}")
        assert r.json()["properties"] == {"a": 2} and r.headers["x-propsync-version"] == "2"
    finally:
        assert server.stop() == 0


def test_patch_waits_until_its_version_is_served_then_get_shows_it(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh")
    try:
        c = server.client()
        user = unique("ryw")
        track(server, user, {"name": "Eva"})
        hold = 1.5
        with build_lock(server):
            started = time.monotonic()

            def patch() -> httpx.Response:
                return c.patch(
                    f"/api/customers/registered:{user}", json={"properties": {"name": "Ema"}}
                )

            result: list[httpx.Response] = []
            t = threading.Thread(target=lambda: result.append(patch()))
            t.start()
            time.sleep(hold)  # the build is "running" elsewhere: the PATCH waits for it
            assert t.is_alive()
        t.join(60)
        (r,) = result
        assert r.status_code == 200, r.text
        assert time.monotonic() - started >= hold
        assert r.json()["properties"]["name"]["value"] == "Ema"
        g = c.get(f"/api/customers/registered:{user}")
        assert g.json()["properties"] == {"name": "Ema"}
        assert int(g.headers["x-propsync-version"]) == server.warehouse.published_version() == 2
    finally:
        assert server.stop() == 0


def test_patch_answers_after_its_wait_bound_with_the_edit(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh", env={"PROPSYNC_EDIT_VISIBLE_TIMEOUT": "0.3"})
    try:
        c = server.client()
        user = unique("late")
        track(server, user, {"name": "Eva"})
        with build_lock(server):
            r = c.patch(f"/api/customers/registered:{user}", json={"properties": {"name": "Ema"}})
            assert r.status_code == 200, r.text
            # The answer has the edit (read from the published file) although the serving copy
            # is late; reads show it once the copy is built.
            assert r.json()["properties"]["name"]["value"] == "Ema"
            assert c.get(f"/api/customers/registered:{user}").json()["properties"] == {
                "name": "Eva"
            }
        assert "but this server still serves version 1 after 0.3 s" in server.log_text()
        server.wait_serving()
        assert c.get(f"/api/customers/registered:{user}").json()["properties"] == {"name": "Ema"}
    finally:
        assert server.stop() == 0


def test_two_workers_build_each_version_once_and_both_read_an_edit(tmp_path: Path) -> None:
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
            # shows the edit at once (the other worker switches to the copy that was built).
            for _ in range(20):
                g = httpx.get(f"{server.url}/api/customers/registered:{user}", auth=AUTH)
                assert g.json()["properties"] == {"n": n}, g.headers
                assert int(g.headers["x-propsync-version"]) == version
        built = built_versions(server)
        assert len(built) == len(set(built)), built  # no version built twice
        assert set(built) <= {1, 2, 3, 4} and 4 in built
        # Both workers serve the last version (one built it, the other opened it).
        deadline = time.monotonic() + 30
        while server.log_text().count("serving version 4 from") < 2:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
    finally:
        assert server.stop() == 0
