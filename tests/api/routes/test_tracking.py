"""The tracking routes over real HTTP: contract, per-command errors, limits, postponed tracking."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid

import duckdb
import httpx
import pytest

from tests.api.conftest import (
    TOKEN,
    ServerProcess,
    batch_url,
    customers_command,
    unique,
)


@pytest.fixture(autouse=True)
def _drained(server: ServerProcess) -> None:
    """Every test starts with an applied journal, so it can count what it applies itself."""
    server.apply()


def _customer(client: httpx.Client, ref: str, ts: bool = True) -> dict[str, object]:
    r = client.get(f"/api/customers/{ref}", params={"include_timestamps": "1" if ts else "0"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_seed_example_batch(server: ServerProcess, client: httpx.Client) -> None:
    user = unique("mgalik")
    body = {
        "commands": [
            {"name": "system/time"},
            {"name": "system/cookie"},
            {
                "name": "customers",
                "data": {
                    "customer_ids": {"registered": user},
                    "properties": {"first_name": "Marian", "last_name": "Galik"},
                    "update_timestamp": 1570001049,
                },
            },
        ]
    }
    before = time.time()
    r = client.post(batch_url(), json=body)
    after = time.time()
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"start_time", "end_time", "success", "results"}
    assert out["success"] is True
    assert before - 0.001 <= out["start_time"] <= out["end_time"] <= after + 0.001
    time_result, cookie_result, customers_result = out["results"]
    assert time_result == {"success": True, "time": out["start_time"]}
    assert cookie_result["success"] is True
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", cookie_result["cookie"]
    )
    assert customers_result == {"success": True}

    assert server.apply() == 1
    customer_id = hashlib.md5(f"registered\x1f{user}".encode()).hexdigest()
    r = client.get(f"/api/customers/registered:{user}", params={"include_timestamps": "1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.text == (
        '{"properties": {"first_name": {"value": "Marian", "last_update": 1570001049}, '
        '"last_name": {"value": "Galik", "last_update": 1570001049}}, '
        f'"ids": {{"registered": ["{user}"]}}, "customer_id": "{customer_id}"}}'
    )
    plain = client.get(f"/api/customers/registered:{user}")
    assert plain.text == (
        '{"properties": {"first_name": "Marian", "last_name": "Galik"}, '
        f'"ids": {{"registered": ["{user}"]}}, "customer_id": "{customer_id}"}}'
    )
    assert client.get(f"/api/customers/registered:{user}?include_timestamps=0").text == plain.text
    assert client.get(f"/api/customers/{customer_id}").text == plain.text


def test_each_command_gets_its_result_in_order_and_bad_ones_do_not_block(
    server: ServerProcess, client: httpx.Client
) -> None:
    good1, good2 = unique("good"), unique("good")
    commands = [
        customers_command({"registered": good1}, {"plan": "gold"}, 1_600_000_000, command_id="a"),
        {"name": "customers", "data": {"properties": {"x": 1}}, "command_id": {"nested": ["b"]}},
        {"name": "customers/delete", "command_id": 3},
        customers_command({"registered": unique()}, {"x": 1}, "yesterday-ish", command_id="d"),
        "not an object",
        customers_command({"registered": good2}, {"plan": "silver", "score": 7.5}, command_id="f"),
    ]
    r = client.post(batch_url(), json={"commands": commands})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 6
    assert results[0] == {"success": True, "command_id": "a"}
    assert results[1]["success"] is False and results[1]["command_id"] == {"nested": ["b"]}
    assert any("customer_ids" in e for e in results[1]["errors"])
    assert results[2] == {
        "success": False,
        "errors": ["unknown command 'customers/delete'"],
        "command_id": 3,
    }
    assert results[3]["success"] is False and results[3]["command_id"] == "d"
    assert any("update_timestamp" in e for e in results[3]["errors"])
    assert results[4]["success"] is False and "command_id" not in results[4]
    assert results[5] == {"success": True, "command_id": "f"}

    assert server.apply() == 2
    assert _customer(client, f"registered:{good1}", ts=False)["properties"] == {"plan": "gold"}
    got = _customer(client, f"registered:{good2}")["properties"]
    assert got["plan"]["value"] == "silver" and got["score"]["value"] == 7.5  # type: ignore[index]
    # Without update_timestamp the server's receive time (the response's start_time) is used.
    assert got["plan"]["last_update"] == r.json()["start_time"]  # type: ignore[index]


def test_postponed_tracking_older_batch_arriving_later_does_not_overwrite(
    server: ServerProcess, client: httpx.Client
) -> None:
    user = unique("mobile")
    ref = f"registered:{user}"
    fresh = customers_command({"registered": user}, {"city": "Brno", "app": "v2"}, 1_700_000_100)
    assert client.post(batch_url(), json={"commands": [fresh]}).status_code == 200
    assert server.apply() == 1
    # The phone was offline: its older batch arrives now.
    stale = customers_command(
        {"registered": user}, {"city": "Praha", "app": "v1", "lang": "sk"}, 1_700_000_000
    )
    assert client.post(batch_url(), json={"commands": [stale]}).status_code == 200
    assert server.apply() == 1
    props = _customer(client, ref)["properties"]
    assert props == {
        "app": {"value": "v2", "last_update": 1700000100},
        "city": {"value": "Brno", "last_update": 1700000100},
        "lang": {"value": "sk", "last_update": 1700000000},  # new property: nothing fresher to keep
    }

    # Both orders inside one apply give the same result, and a realtime update (no timestamp,
    # stamped with the receive time) beats a postponed one that arrives after it.
    user2 = unique("mobile")
    live = customers_command({"registered": user2}, {"city": "Kosice"})
    r_live = client.post(batch_url(), json={"commands": [live]})
    late = customers_command(
        {"registered": user2}, {"city": "Zilina"}, r_live.json()["start_time"] - 30
    )
    earlier_first = customers_command({"registered": user}, {"city": "Nitra"}, 1_700_000_050)
    assert client.post(batch_url(), json={"commands": [late, earlier_first]}).status_code == 200
    assert server.apply() == 3
    assert _customer(client, f"registered:{user2}")["properties"] == {
        "city": {"value": "Kosice", "last_update": r_live.json()["start_time"]}
    }
    assert _customer(client, ref, ts=False)["properties"] == {
        "app": "v2",
        "city": "Brno",
        "lang": "sk",
    }


def test_fractional_and_iso_update_timestamps(server: ServerProcess, client: httpx.Client) -> None:
    users = [unique("ts") for _ in range(3)]
    stamps: list[object] = [1570001049.123456, "2019-10-02T07:24:09.5Z", 1570001049]
    commands = [
        customers_command({"registered": u}, {"p": i}, ts)
        for i, (u, ts) in enumerate(zip(users, stamps, strict=True))
    ]
    r = client.post(batch_url(), json={"commands": commands})
    assert [x["success"] for x in r.json()["results"]] == [True, True, True]
    server.apply()
    expected = ["1570001049.123456", "1570001049.5", "1570001049"]
    for u, text in zip(users, expected, strict=True):
        raw = client.get(f"/api/customers/registered:{u}?include_timestamps=1").text
        assert f'"last_update": {text}}}' in raw


def test_future_and_negative_timestamps_are_rejected_per_command(client: httpx.Client) -> None:
    far = time.time() + 3600
    commands = [
        customers_command({"registered": unique()}, {"p": 1}, far),
        customers_command({"registered": unique()}, {"p": 1}, -5),
        customers_command({"registered": unique()}, {"p": 1}, time.time() + 60),
    ]
    results = client.post(batch_url(), json={"commands": commands}).json()["results"]
    assert results[0]["success"] is False and "beyond the server time" in results[0]["errors"][0]
    assert results[1] == {"success": False, "errors": ["update_timestamp must not be negative"]}
    assert results[2] == {"success": True}


def test_batch_limits(client: httpx.Client) -> None:
    fifty = [{"name": "system/time"}] * 50
    r = client.post(batch_url(), json={"commands": fifty})
    assert r.status_code == 200 and len(r.json()["results"]) == 50
    r = client.post(batch_url(), json={"commands": [*fifty, {"name": "system/time"}]})
    assert r.status_code == 400
    assert r.json() == {"error": "TooManyCommands", "message": "51 commands; at most 50 per batch"}
    assert client.post(batch_url(), json={"commands": []}).json()["results"] == []


def test_body_not_json_or_not_a_batch_is_400(client: httpx.Client) -> None:
    for content in (
        b"not json",
        b'{"commands": [',
        b"\xff\xfe\x00",
        b"",
        b'{"commands": [{"name": NaN}]}',
    ):
        r = client.post(batch_url(), content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400, content
        assert r.json()["error"] == "InvalidJson"
    bodies: list[object] = [[], {"commands": {"name": "system/time"}}, {"cmds": []}, "commands"]
    for body in bodies:
        r = client.post(batch_url(), json=body)
        assert r.status_code == 400
        assert r.json()["error"] == "InvalidBatch"


def test_lone_surrogates_fail_their_command_only(
    server: ServerProcess, client: httpx.Client
) -> None:
    # JSON can carry "\ud800" (not Unicode). Wherever it sits in a command (value, id value, id
    # type, property name, update_timestamp, command_id) that command fails; the others apply.
    good = unique("good")
    commands = [
        r'{"name": "customers", "data": {"customer_ids": {"registered": "x"}, "properties": {"p": "\ud800"}}}',
        r'{"name": "customers", "data": {"customer_ids": {"registered": "\ud800"}, "properties": {"p": 1}}}',
        r'{"name": "customers", "data": {"customer_ids": {"\udc00": "x"}, "properties": {"p": 1}}}',
        r'{"name": "customers", "data": {"customer_ids": {"registered": "x"}, "properties": {"\ud800": 1}}}',
        r'{"name": "customers", "data": {"customer_ids": {"registered": "x"}, "properties": {"p": 1}, "update_timestamp": "\ud800"}}',
        r'{"name": "customers", "data": {"customer_ids": {"registered": "x"}, "properties": {"p": 1}}, "command_id": "\ud800"}',
        r'{"name": "system/time", "command_id": {"\ud800": 1}}',
        json.dumps(customers_command({"registered": good}, {"p": 1}, command_id="ok")),
        r'{"name": "system/time"}',
    ]
    raw = ('{"commands": [' + ", ".join(commands) + "]}").encode()
    r = client.post(batch_url(), content=raw)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [res["success"] for res in results] == [False] * 7 + [True, True]
    where = [
        "properties.p:",
        "customer_ids.registered value '\\ud800'",
        "customer id type '\\udc00'",
        "property name '\\ud800'",
        "update_timestamp '\\ud800' is not a timestamp",
        "command_id",
        "command_id",
    ]
    for res, prefix in zip(results, where, strict=False):
        assert "command_id" not in res  # not echoed: it cannot be
        (error,) = res["errors"]
        assert error.startswith(prefix), error
        assert "Unicode" in error or "timestamp" in prefix, error
    assert results[7] == {"success": True, "command_id": "ok"}
    assert server.apply() == 1
    assert _customer(client, f"registered:{good}", ts=False)["properties"] == {"p": 1}
    # The single-command route answers 400 with the command's result.
    r = client.post(
        f"/track/v2/projects/{TOKEN}/customers",
        content=rb'{"customer_ids": {"registered": "\ud800"}, "properties": {"p": 1}}',
    )
    assert r.status_code == 400 and r.json()["success"] is False
    assert "Unicode" in r.json()["errors"][0]


def test_body_too_large_is_413(client: httpx.Client) -> None:
    big = json.dumps({"commands": [{"name": "system/time", "pad": "x" * (1024 * 1024)}]}).encode()
    r = client.post(batch_url(), content=big)
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLarge"

    def chunks() -> object:  # no Content-Length: counted while streaming
        yield b'{"commands": [], "pad": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    r = client.post(batch_url(), content=chunks())  # type: ignore[arg-type]
    assert r.status_code == 413
    r = client.post(f"/track/v2/projects/{TOKEN}/customers", content=big)
    assert r.status_code == 413


def test_unknown_project_token_is_403(client: httpx.Client) -> None:
    body = {"commands": [customers_command({"registered": unique()}, {"p": 1})]}
    for url in (batch_url("not-a-project"), "/track/v2/projects/not-a-project/customers"):
        r = client.post(url, json=body)
        assert r.status_code == 403
        assert r.json()["error"] == "UnknownProject"
    assert client.post(batch_url("second-project"), json=body).status_code == 200


def test_single_customers_command_route(server: ServerProcess, client: httpx.Client) -> None:
    user = unique("single")
    url = f"/track/v2/projects/{TOKEN}/customers"
    r = client.post(
        url,
        json={
            "customer_ids": {"registered": user},
            "properties": {"tier": 3},
            "update_timestamp": 1600000000,
        },
    )
    assert r.status_code == 200 and r.json() == {"success": True}
    r = client.post(url, json={"properties": {"tier": 4}})
    assert r.status_code == 400
    assert r.json()["success"] is False and r.json()["errors"]
    assert client.post(url, content=b"{").status_code == 400
    assert server.apply() == 1
    assert _customer(client, f"registered:{user}")["properties"] == {
        "tier": {"value": 3, "last_update": 1600000000}
    }


def test_hard_id_conflicts_are_found_at_apply_time_and_quarantined(
    server: ServerProcess, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, cookie = unique("hard"), unique("hard"), unique("cookie")
    commands = [
        customers_command(
            {"registered": a, "cookie": cookie}, {"p": "a"}, 1_600_000_000, command_id="first"
        ),
        # Would merge two customers with different hard ids: valid on receipt, rejected on apply.
        customers_command(
            {"registered": b, "cookie": cookie}, {"p": "b"}, 1_600_000_001, command_id="second"
        ),
    ]
    r = client.post(batch_url(), json={"commands": commands})
    assert [x["success"] for x in r.json()["results"]] == [True, True]
    assert server.apply() == 2
    assert _customer(client, f"registered:{a}", ts=False)["properties"] == {"p": "a"}
    assert client.get(f"/api/customers/registered:{b}").status_code == 404
    with duckdb.connect(str(server.warehouse.published_file()), read_only=True) as con:
        rows = con.execute(
            "SELECT r.batch_id, r.reason, b.kind FROM rejections r JOIN batches b USING (batch_id) "
            "WHERE r.reason LIKE $p",
            {"p": f"%{b}%"},
        ).fetchall()
    assert len(rows) == 1
    batch_id, reason, kind = rows[0]
    assert batch_id.startswith("jrn-") and kind == "track" and "hard ids" in reason
    # The applier names the request and command that was refused.
    request_ids = [rec.args[0] for rec in caplog.records if "rejected at apply time" in rec.msg]  # type: ignore[index]
    assert len(request_ids) == 1 and str(request_ids[0]).startswith("trk-")
    assert "command 2 (command_id 'second')" in caplog.text


def test_many_concurrent_batches_are_all_applied_once(server: ServerProcess) -> None:
    import concurrent.futures

    users = [unique("conc") for _ in range(200)]

    def send(chunk: list[str]) -> int:
        with httpx.Client(base_url=server.url) as c:
            cmds = [
                customers_command({"registered": u}, {"n": i}, 1_650_000_000 + i)
                for i, u in enumerate(chunk)
            ]
            return c.post(batch_url(), json={"commands": cmds}).status_code

    chunks = [users[i : i + 20] for i in range(0, 200, 20)]
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        assert list(pool.map(send, chunks)) == [200] * 10
    assert server.apply() == 200
    assert server.apply() == 0
    with duckdb.connect(str(server.warehouse.published_file()), read_only=True) as con:
        n = con.execute(
            "SELECT count(*) FROM customer_ids WHERE id_value IN (SELECT unnest($u))", {"u": users}
        ).fetchall()[0][0]
    assert n == 200


def test_command_ids_are_any_json(client: httpx.Client) -> None:
    cid = {"id": str(uuid.uuid4()), "n": [1, 2.5, None, True]}
    r = client.post(batch_url(), json={"commands": [{"name": "system/cookie", "command_id": cid}]})
    assert r.json()["results"][0]["command_id"] == cid
