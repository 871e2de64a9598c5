"""Request bodies and parameters (propsync.api.bodies): read within the size limit, parsed by the
one JSON parser, checked, or refused with a 4xx that names what is wrong."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from propsync.api import bodies
from propsync.api.errors import ApiError


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str, bool]:
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    e = info.value
    return e.status, e.error, e.message, e.html


def test_json_bodies_are_parsed_or_refused_naming_why() -> None:
    assert bodies.loads(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    assert refused(bodies.loads, b"[" * 100) == (
        400,
        "JsonTooDeep",
        "the body nests arrays/objects more than 64 levels deep (the limit is 64)",
        False,
    )
    status, error, message, _ = refused(bodies.loads, b'{"a": NaN}')
    assert (status, error) == (400, "InvalidJson") and "NaN is not valid JSON" in message
    status, error, message, _ = refused(bodies.loads, b"\xff")
    assert (status, error) == (400, "InvalidJson") and "can't decode byte 0xff" in message
    # On the page, the error is a page titled for people.
    _, error, message, html = refused(bodies.loads, b"{", "the value", html=True)
    assert (error, html) == ("Bad request", True) and message.startswith(
        "the value is not valid JSON"
    )


def test_a_form_must_be_urlencoded_utf8_and_its_raw_bytes_are_percent_encoded() -> None:
    form = "name=%C3%A9&value=ž".encode()
    assert bodies.urlencoded_form(form, "application/x-www-form-urlencoded; charset=UTF-8") == (
        b"name=%C3%A9&value=%C5%BE"
    )
    assert refused(bodies.urlencoded_form, b"a=1", "text/plain")[:2] == (
        415,
        "Unsupported media type",
    )
    assert refused(bodies.urlencoded_form, b"a=1", None)[0] == 415
    status, _, message, html = refused(
        bodies.urlencoded_form, b"a=%FF", "application/x-www-form-urlencoded"
    )
    assert (status, html) == (400, True)
    assert message.startswith("the form is not UTF-8 text (invalid start byte at byte 2)")


def test_an_edit_body_is_a_non_empty_object_of_unicode_properties() -> None:
    assert bodies.edit_properties({"properties": {"a": 1, "b": [None]}}) == {"a": 1, "b": [None]}
    for body in ({"properties": {}}, {"properties": [1]}):
        assert refused(bodies.edit_properties, body)[:2] == (400, "InvalidEdit")
    for body in ({"properties": {"a": 1}, "x": 1}, [], None):
        assert refused(bodies.edit_properties, body)[2] == (
            'the body must be {"properties": {name: value, ...}}'
        )
    assert refused(bodies.edit_properties, {"properties": {"a": {"b": "\udc00"}}})[:2] == (
        400,
        "InvalidText",
    )


def test_include_timestamps_is_0_or_1() -> None:
    assert [bodies.include_timestamps(v) for v in (None, "0", "1")] == [False, False, True]
    assert refused(bodies.include_timestamps, "true")[:3] == (
        400,
        "BadRequest",
        "include_timestamps must be 0 or 1",
    )


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def read(declared: str | None, *chunks: bytes, limit: int = 4) -> bytes:
    return asyncio.run(bodies.read_limited(declared, stream(*chunks), limit))


def test_a_body_is_read_up_to_its_limit_declared_or_streamed() -> None:
    assert read(None, b"ab", b"cd") == b"abcd"
    assert read("4", b"abcd") == b"abcd"
    assert refused(read, "5", b"ab")[:3] == (
        413,
        "PayloadTooLarge",
        "the body has 5 bytes; the limit is 4",
    )
    # A client that declares less than it sends is cut off at the limit too.
    assert refused(read, "2", b"ab", b"cde")[2] == "the body exceeds the limit of 4 bytes"
    assert refused(read, "four", b"ab")[:3] == (400, "BadRequest", "Content-Length is not a number")
