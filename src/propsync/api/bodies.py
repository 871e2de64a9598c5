"""Request bodies and parameters: read within the size limit, parsed by the one JSON parser,
checked, or refused with a 4xx ``ApiError`` that names what is wrong."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from fastapi import Request

from propsync import jsonlimits
from propsync.api.errors import ApiError

FORM_TYPE = "application/x-www-form-urlencoded"
_ASCII = bytes(range(128))


def loads(body: bytes | str, what: str = "the body", *, html: bool = False) -> Any:
    """Parse JSON from a client (``jsonlimits``): 400 ``JsonTooDeep`` or ``InvalidJson``."""
    try:
        return jsonlimits.loads(body)
    except jsonlimits.JsonTooDeep as exc:
        error, message = "JsonTooDeep", exc.describe(what)
    except ValueError as exc:  # incl. UnicodeDecodeError, NaN/Infinity
        error, message = "InvalidJson", f"{what} is not valid JSON: {exc}"
    raise ApiError(400, "Bad request" if html else error, message, html=html)


def urlencoded_form(body: bytes, content_type: str | None) -> bytes:
    """``body``, an urlencoded form of UTF-8 text, with its raw non-ASCII bytes percent-encoded
    (Starlette's parser reads raw bytes as Latin-1); else a 415 or 400 page. Bytes that are not
    UTF-8 are refused: decoding them with replacement would store U+FFFD in place of the user's
    text."""
    if (content_type or "").partition(";")[0].strip().lower() != FORM_TYPE:
        raise ApiError(
            415, "Unsupported media type", f"the form must be sent as {FORM_TYPE}", html=True
        )
    try:
        unquote_to_bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            "Bad request",
            f"the form is not UTF-8 text ({exc.reason} at byte {exc.start}): nothing was saved; "
            "submit it from a page served by propsync (UTF-8)",
            html=True,
        ) from None
    return quote_from_bytes(body, safe=_ASCII).encode("ascii")


def check_unicode(value: Any) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400,
            "InvalidText",
            "the body contains a lone surrogate escape (e.g. \\ud800): not Unicode text",
        ) from None


async def read_body(request: Request, limit: int) -> bytes:
    return await read_limited(request.headers.get("content-length"), request.stream(), limit)


async def read_limited(declared: str | None, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The body ``stream`` gives, 413 past ``limit`` bytes (declared or streamed)."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "BadRequest", "Content-Length is not a number") from None
        if size > limit:
            raise ApiError(
                413, "PayloadTooLarge", f"the body has {size} bytes; the limit is {limit}"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PayloadTooLarge", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def edit_properties(body: Any) -> dict[str, Any]:
    """The properties of a PATCH body ``{"properties": {name: value, ...}}``."""
    if not isinstance(body, dict) or set(body) != {"properties"}:
        raise ApiError(400, "InvalidEdit", 'the body must be {"properties": {name: value, ...}}')
    props = body["properties"]
    if not isinstance(props, dict) or not props:
        raise ApiError(400, "InvalidEdit", '"properties" must be a non-empty object')
    check_unicode(props)
    return props


def include_timestamps(value: str | None) -> bool:
    if value is None or value == "0":
        return False
    if value == "1":
        return True
    raise ApiError(400, "BadRequest", "include_timestamps must be 0 or 1")
