"""``GET /healthz`` (propsync.api.routes.health) through the real app: liveness, what the server
reads and the journal's state; 503 once the journal cannot take records."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import TOKEN, batch_url, customers_command, serve_in_process, service_app


def test_a_fresh_service_is_ok_with_an_empty_journal(app_url: str) -> None:
    r = httpx.get(f"{app_url}/healthz")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.json() == {
        "status": "ok",
        "published_version": 0,
        "serving": {"version": 0, "indexed": False},
        "journal": {
            "segments": 0,
            "live_segments": 0,
            "unapplied_bytes": 0,
            "records_written": 0,
            "fsyncs": 0,
            "write_errors": 0,
        },
    }


def test_the_journal_counts_follow_tracking_and_a_closed_journal_is_503(tmp_path: Path) -> None:
    app = service_app(tmp_path / "warehouse")
    with serve_in_process(app) as url:
        command = customers_command({"registered": "a"}, {"p": 1})
        assert httpx.post(url + batch_url(TOKEN), json={"commands": [command]}).status_code == 200
        journal = httpx.get(f"{url}/healthz").json()["journal"]
        assert journal["records_written"] == 1 and journal["fsyncs"] >= 1
        assert (journal["segments"], journal["live_segments"]) == (1, 1)
        assert journal["unapplied_bytes"] > 0
        app.state.service.open_journal.close()  # as when the disk failed or the server stops
        r = httpx.get(f"{url}/healthz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
