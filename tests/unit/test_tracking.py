"""Parsing tracking commands: text that is not Unicode fails its command, never the batch."""

from __future__ import annotations

import json

from propsync.tracking import parse_commands

RECEIVE = 1_700_000_000_000_000


def test_lone_surrogates_fail_only_their_command_and_stay_out_of_the_batch() -> None:
    # As json.loads gives them from the escapes "\ud800" / "\udc00".
    body = json.loads(
        '{"commands": ['
        '{"name": "customers", "data": {"customer_ids": {"registered": "\\ud800"}, "properties": {"p": 1}}},'
        '{"name": "customers", "data": {"customer_ids": {"\\udc00": "a"}, "properties": {"p": 1}}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"\\ud800": 1}}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"p": {"\\ud800": 1}}}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "properties": {"p": 1}, "update_timestamp": "\\ud800"}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}, "\\ud800": 1}},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "a"}}, "command_id": ["\\ud800"]},'
        '{"name": "customers", "data": {"customer_ids": {"registered": "ok", "cookie": 7}, "properties": {"\\u017e": "\\ud83d\\ude00"}}},'
        '{"name": "system/time"}'
        "]}"
    )
    tb = parse_commands(body, receive_us=RECEIVE)
    assert [r["success"] for r in tb.results] == [False] * 7 + [True, True]
    errors = [r["errors"] for r in tb.results[:7]]
    assert errors == [
        [
            "customer_ids.registered value '\\ud800' is not valid Unicode text: it contains a lone surrogate"
        ],
        ["customer id type '\\udc00' is not valid Unicode text: it contains a lone surrogate"],
        ["property name '\\ud800' is not valid Unicode text: it contains a lone surrogate"],
        ["properties.p: not valid Unicode text: surrogates not allowed"],
        ["update_timestamp '\\ud800' is not a timestamp"],
        ["unknown keys in data: '\\ud800'"],
        ["command_id is not valid Unicode text: it contains a lone surrogate"],
    ]
    # Every error message is itself Unicode (the API writes responses as UTF-8).
    json.dumps(tb.results, ensure_ascii=False).encode("utf-8")
    # Only the valid command reaches the batch; a valid pair (an emoji) is fine.
    assert tb.batch.ids.rows() == [(8, "registered", "ok"), (8, "cookie", "7")]
    assert tb.batch.cells.rows() == [(8, "ž", '"😀"', RECEIVE)]
