"""Acknowledged means durable: kill -9 right after responses loses nothing; background apply;
``propsync apply`` drains the journal of a stopped server."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

from propsync.config import Settings
from propsync.journal import journal_dir, journal_status
from propsync.store.read_model import ReadModel
from propsync.store.warehouse import Warehouse
from tests.api.conftest import AUTH, batch_url, customers_command, start_server, unique
from tests.helpers import apply, wait_for
from tests.store.test_read_model import populate
from tests.store.test_read_model_segments import folded_rows


def _stored(root: Path, prefix: str) -> dict[str, int]:
    """``id value -> seq`` of every stored customer whose registered id starts with ``prefix``."""
    published = (root / "propsync.duckdb").resolve()
    with duckdb.connect(str(published), read_only=True) as con:
        rows = con.execute(
            "SELECT i.id_value, p.value FROM customer_ids i JOIN properties p USING (customer_id) "
            "WHERE i.id_type = 'registered' AND starts_with(i.id_value, $p) AND p.property = 'seq'",
            {"p": prefix},
        ).fetchall()
    return {v: int(json.loads(seq)) for v, seq in rows}


def test_kill_9_after_acknowledgement_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    server = start_server(root)
    prefix = unique("k9") + "-"
    acked: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**9))

    def sender() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                seqs = [next(counter) for _ in range(50)]
                body = {
                    "commands": [
                        customers_command(
                            {"registered": f"{prefix}{s}"}, {"seq": s}, 1_600_000_000 + s / 1000
                        )
                        for s in seqs
                    ]
                }
                try:
                    r = c.post(batch_url(), json=body)
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 200 and all(x["success"] for x in r.json()["results"]):
                    with lock:
                        acked.extend(f"{prefix}{s}" for s in seqs)
                else:
                    errors.append(r.text)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 5000 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill9()  # while the senders are still sending
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(acked) >= 5000
    # The dead writer's segment is no longer locked: the applier treats it as complete.
    status = journal_status(root)
    assert status.segments >= 1 and status.live_segments == 0

    restarted = start_server(root)  # an applier run by a fresh process, as after a crash
    try:
        applied = restarted.apply()
        stored = _stored(root, prefix)
        missing = [a for a in acked if a not in stored]
        assert missing == []
        assert applied >= len(acked)
        assert all(stored[v] == int(v.removeprefix(prefix)) for v in acked)
        # Fully applied segments of the dead writer are gone; nothing is left to apply.
        assert restarted.apply() == 0
        assert journal_status(root).segments == 0
        # The restarted server journals into a new segment.
        with restarted.client() as c:
            r = c.post(
                batch_url(),
                json={
                    "commands": [customers_command({"registered": f"{prefix}after"}, {"seq": -1})]
                },
            )
            assert r.status_code == 200
        assert journal_status(root).live_segments == 1
        assert restarted.apply() == 1
    finally:
        restarted.stop()


def test_background_apply_makes_tracking_visible(tmp_path: Path) -> None:
    server = start_server(tmp_path / "wh", apply=True, args=["--apply-interval", "0.2"])
    try:
        c = server.client()
        user = unique("bg")
        r = c.post(
            batch_url(),
            json={
                "commands": [customers_command({"registered": user}, {"seen": 1}, 1_600_000_000)]
            },
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 20
        got = c.get(f"/api/customers/registered:{user}")
        while got.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            got = c.get(f"/api/customers/registered:{user}")
        assert got.status_code == 200, got.text
        assert got.json()["properties"] == {"seen": 1}
        # The applier logs its apply after the publish that made it visible.
        wait_for(lambda: "applied 1 journaled commands" in server.log_text(), timeout=10)
    finally:
        server.stop()


def test_the_appliers_follower_follows_versions_others_publish(tmp_path: Path) -> None:
    # While the follower process runs the server workers never apply runs (they only build), so
    # the model reaches a version published by another process only through that follower.
    root = tmp_path / "wh"
    server = start_server(root, apply=True, args=["--apply-interval", "0.2"])
    try:
        user = unique("other")
        c = server.client()
        assert (
            c.post(
                batch_url(), json={"commands": [customers_command({"registered": user}, {"n": 1})]}
            ).status_code
            == 200
        )
        model = ReadModel(Warehouse(root))

        def model_version() -> int:
            state = model.state()
            return 0 if state is None else state.version

        wait_for(lambda: model_version() >= 1)
        wait_for(model.follower_present)  # the follower process may still be starting
        subprocess.run(
            [
                sys.executable,
                "-m",
                "propsync.cli",
                "set",
                "--warehouse",
                str(root),
                f"registered:{user}",
                "n:=2",
            ],
            check=True,
            capture_output=True,
        )
        published = Warehouse(root).published_version()
        wait_for(lambda: model_version() >= published)
        # The follower logs its follow just after the commit the model shows.
        followed = rf"read model at version {published}: .* \(propsync-follower\)"
        wait_for(lambda: re.search(followed, server.log_text()) is not None, timeout=10)
        got = c.get(f"/api/customers/registered:{user}")
        assert got.json()["properties"] == {"n": 2}
    finally:
        server.stop()


def _follower_with_small_segments(
    settings_json: str, parent: int, published: Any, stop_event: Any
) -> None:
    """The applier's follower process, with thresholds that a few batches reach."""
    from propsync.api.commands import _follower_main
    from propsync.store import read_model
    from tests.store.test_read_model_segments import SMALL

    for name, value in SMALL.items():
        setattr(read_model, name, value)
    _follower_main(settings_json, parent, "INFO", published, stop_event)


def test_the_follower_process_merges_and_folds_the_segments_between_follows(
    warehouse: Warehouse, settings: Settings
) -> None:
    populate(warehouse, settings)
    model = ReadModel(warehouse)
    model.follow()  # the server builds; the follower process only follows
    ctx = multiprocessing.get_context("spawn")
    published, stop = ctx.Event(), ctx.Event()
    follower = ctx.Process(
        target=_follower_with_small_segments,
        args=(settings.model_dump_json(), os.getpid(), published, stop),
    )
    follower.start()
    try:
        for i in range(12):
            updates = [({"cookie": f"s{j}"}, f"n{i}", i, 1_700_000_000 + i) for j in range(8)]
            apply(warehouse, settings, f"s{i}", updates)
            published.set()

        # 96 recent rows against a fold at 40: only a fold writes them into properties.
        wait_for(lambda: folded_rows(model, "n[0-9]*") > 0)
        wait_for(lambda: (state := model.state()) is not None and state.version == 17)
    finally:
        stop.set()
        follower.join(30)
    assert follower.exitcode == 0


def test_cli_apply_drains_a_stopped_servers_journal(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    server = start_server(root)
    users = [unique("cli") for _ in range(3)]
    with httpx.Client(base_url=server.url) as c:
        for u in users:
            assert (
                c.post(
                    batch_url(), json={"commands": [customers_command({"registered": u}, {"v": u})]}
                ).status_code
                == 200
            )
    assert server.stop() == 0  # SIGTERM: graceful, the segment is closed
    assert journal_status(root).live_segments == 0
    out = subprocess.run(
        [sys.executable, "-m", "propsync.cli", "apply", "--warehouse", str(root), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["commands_applied"] == 3 and summary["journal_segments"] == 0
    assert summary["published_version"] >= 1
    assert sorted(p.name for p in journal_dir(root).iterdir()) == ["apply.lock", "state.json"]
    again = subprocess.run(
        [sys.executable, "-m", "propsync.cli", "apply", "--warehouse", str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout.startswith("applied 0 journaled commands")
    server2 = start_server(root)
    try:
        with httpx.Client(base_url=server2.url, auth=AUTH) as c:
            for u in users:
                assert c.get(f"/api/customers/registered:{u}").json()["properties"] == {"v": u}
    finally:
        server2.stop()
