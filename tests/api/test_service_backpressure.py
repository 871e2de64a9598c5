"""Backpressure over real HTTP: past the journal's bound, tracking gets 429 with Retry-After and
nothing is journaled; once the applier catches up, calls are taken again. A 200 still means
stored: every command acknowledged before the 429s is applied."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from propsync.journal import journal_status
from tests.api.conftest import TOKEN, batch_url, customers_command, start_server, unique

BOUND = 4096


def _batch(run: str, n: int) -> dict[str, object]:
    return {
        "commands": [
            customers_command({"registered": f"{run}-{i}"}, {"p": "x" * 50}) for i in range(n)
        ]
    }


def _post_until_refused(client: httpx.Client, run: str) -> tuple[int, httpx.Response]:
    """Batches until one is refused (the bound is looked at every 0.25 s); the number taken."""
    accepted = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = client.post(batch_url(), json=_batch(f"{run}-{accepted}", 10))
        if r.status_code != 200:
            return accepted, r
        accepted += 1
        time.sleep(0.02)
    raise AssertionError("the server never refused a batch past its bound")


def test_past_the_bound_tracking_is_refused_with_retry_after_until_applied(
    tmp_path: Path,
) -> None:
    server = start_server(
        tmp_path / "warehouse",
        env={"PROPSYNC_MAX_UNAPPLIED_BYTES": str(BOUND), "PROPSYNC_RETRY_AFTER": "3"},
    )
    try:
        client = server.client(auth=None)
        run = unique("bp")
        accepted, refused = _post_until_refused(client, run)
        assert accepted >= 1
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "3"
        body = refused.json()
        assert body["error"] == "TooManyRequests"
        assert "PROPSYNC_MAX_UNAPPLIED_BYTES=4,096" in body["message"]
        assert "nothing was stored" in body["message"]
        backlog = journal_status(server.root).unapplied_bytes
        assert backlog > BOUND
        # Refused calls add nothing to the journal, on either tracking route.
        single = client.post(
            f"/track/v2/projects/{TOKEN}/customers",
            json={"customer_ids": {"registered": "refused"}, "properties": {"p": 1}},
        )
        assert single.status_code == 429 and single.headers["retry-after"] == "3"
        assert client.post(batch_url(), json=_batch("refused", 5)).status_code == 429
        assert journal_status(server.root).unapplied_bytes == backlog

        # Every acknowledged command is applied; then the server takes calls again.
        assert server.apply() == accepted * 10
        deadline = time.monotonic() + 10
        while (r := client.post(batch_url(), json=_batch(f"{run}-after", 10))).status_code == 429:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.05)
        assert r.status_code == 200, r.text
        with server.warehouse.connect_published() as con:
            rows = con.execute(
                "SELECT count(*) FROM customer_ids WHERE id_type = 'registered' "
                "AND id_value LIKE $p",
                {"p": f"{run}-%"},
            ).fetchall()
        assert rows == [(accepted * 10,)]
        assert not [line for line in server.log_text().splitlines() if "Traceback" in line]
    finally:
        server.stop()


def test_without_a_bound_nothing_is_refused(tmp_path: Path) -> None:
    server = start_server(tmp_path / "warehouse", env={"PROPSYNC_MAX_UNAPPLIED_BYTES": "0"})
    try:
        client = server.client(auth=None)
        for i in range(40):
            r = client.post(batch_url(), json=_batch(f"nb-{i}", 10))
            assert r.status_code == 200, r.text
        assert journal_status(server.root).unapplied_bytes > 40 * 10 * 50
        assert json.loads(r.text)["success"] is True
    finally:
        server.stop()
