"""The one JSON parser for untrusted input: NaN/Infinity refused and nesting capped at MAX_DEPTH.

Every path that parses JSON from outside (tracking bodies, PATCH bodies, the page's JSON edit,
``propsync track`` and ``set``, mapping files) uses ``loads``, so the same text is accepted or
refused the same way everywhere. Deep nesting is refused before parsing: the code that walks
parsed values (canonical JSON, Unicode checks) recurses, and a few hundred levels would end in
``RecursionError``. Duplicate object keys: the last one wins (as ``JSON.parse`` and ``json.loads``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

MAX_DEPTH = 64
"""Most nested arrays/objects in one JSON text or value; the outermost counts as level 1."""

_QUOTE_ESCAPES = re.compile(rb'\\[\\"]')
# Digits to "0", everything else to " ": a run of 19 digits is then a plain substring search
# (a regex for it scanned a 5 KB body in 70 us, this in 3).
_DIGIT_RUNS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGITS = b"0" * 19
_DROP = bytes(b for b in range(256) if b not in b'"[]{}')
_ONE_KIND = bytes.maketrans(b"{}", b"[]")  # mixed kinds (not JSON) are the parser's to refuse


class JsonTooDeep(ValueError):
    """JSON nests arrays/objects more than ``MAX_DEPTH`` levels deep."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested more than {limit} levels deep (the limit is {limit})")
        self.limit = limit

    def describe(self, what: str) -> str:
        """The error for the user, naming the input: "the body nests arrays/objects more ..."."""
        return (
            f"{what} nests arrays/objects more than {self.limit} levels deep "
            f"(the limit is {self.limit})"
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for all calls: json.loads with any keyword builds a new one each time, which costs
# more than the depth check (35% of a 50-command body). Its C scanner holds the GIL throughout.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _structural(text: bytes) -> bytes:
    """The brackets of UTF-8 JSON text outside its strings, all as ``[``/``]`` (exact if valid)."""
    # Escapes pair left to right; only \\ and \" can hide or fake a quote (a regex search is
    # 5x cheaper than the replaces when, as usual, there are none: \uXXXX alone is harmless).
    if _QUOTE_ESCAPES.search(text):
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Quotes and brackets only. Two adjacent quotes (an empty string, or the end of one string
    # and the start of the next) enclose no bracket: dropping them keeps every other quote's
    # parity, and leaves quotes only around strings that hold brackets (rare): split those off.
    outside = text.translate(None, _DROP).replace(b'""', b"")
    if b'"' in outside:
        outside = b"".join(outside.split(b'"')[::2])
    return outside.translate(_ONE_KIND)


def _depth(brackets: bytes, limit: int) -> int:
    """Depth of a bracket sequence; ``limit + 1`` as soon as it is known to be deeper."""
    # Each round removes exactly the innermost level, at C speed (no Python loop per byte).
    for level in range(limit + 1):
        if not brackets:
            return level
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            # Unbalanced, so not JSON. What is left has no "[]": it is "]]..[[..", and its
            # openers, unclosed, may enclose all removed levels: a bound on any parse's depth.
            return min(limit + 1, level + brackets.count(b"["))
        brackets = shorter
    return limit + 1


def text_depth(text: str | bytes, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of the JSON text ``text`` (``limit + 1`` for anything deeper)."""
    if isinstance(text, str):
        data = text.encode("utf-8", "surrogatepass")
    else:
        encoding = json.detect_encoding(text)  # as json.loads does: UTF-8, -16 or -32
        data = bytes(text)
        if encoding not in ("utf-8", "utf-8-sig"):
            data = data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    return _depth(_structural(data), limit)


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ``JsonTooDeep`` when the parsed JSON value ``value`` nests deeper than ``limit``."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, (dict, list, tuple))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return
    if any(isinstance(item, (dict, list, tuple)) for item in level):
        raise JsonTooDeep(limit)


def loads(text: str | bytes) -> Any:
    """Parse untrusted JSON text. Raises ``JsonTooDeep`` (a ValueError) when it nests more than
    ``MAX_DEPTH`` levels, ``ValueError`` (incl. ``UnicodeDecodeError``) when it is not JSON."""
    if text_depth(text) > MAX_DEPTH:
        raise JsonTooDeep()
    return parse(text)


def parse(text: str | bytes) -> Any:
    """``json.loads`` of ``text`` (NaN and Infinity refused), through orjson where that gives the
    same value: ``loads`` without the depth check, for JSON this program wrote itself."""
    # orjson parses the usual body in 40% of the standard library's time. What it refuses and
    # the standard library takes (an escaped lone surrogate, which fails only its command;
    # UTF-16/32 text; a byte order mark), and every error message, come from the latter; so do
    # texts with 19 or more digits in a row, which may hold an integer orjson would read as a
    # float (beyond 64 bits), where the standard library keeps it exact.
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if _LONG_DIGITS not in data.translate(_DIGIT_RUNS):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    if not isinstance(text, str):  # as json.loads does: UTF-8, -16 or -32, surrogates kept
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
    try:
        return _DECODER.decode(text)
    except RecursionError:  # not reachable below MAX_DEPTH; kept so no caller ever sees one
        raise JsonTooDeep() from None
