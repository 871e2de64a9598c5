"""The GET customer route without FastAPI's routing: a small ASGI layer in front of the app.

``GET /api/customers/{customer}`` is the hot read. Through FastAPI it costs its routing, request
objects, parameter handling and a hop to the thread pool for a sync route, far more than the read
itself (a few SQLite B-tree probes). This layer matches that route's path with the route's own
matcher, checks the credentials, reads the read model in the event loop's thread (one SQLite
statement, ``read_model.read_customer``) and sends the same ``Response`` the route would. Anything
it does not answer goes to the app unchanged: other methods and paths, and a read the read model
cannot serve now (not built yet: the route reads the published file in the thread pool, which may
scan for half a second and must not block the loop).

The answer is the route's, byte for byte: the same functions build the body, the status and the
headers (``tests/api/test_fastpath.py`` compares both paths over HTTP).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

# (scope, path parameters) -> the response, or None: let the app answer.
Answer = Callable[[Scope, dict[str, Any]], Response | None]


class FastRoute:
    """ASGI middleware answering one GET route with ``answer`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, route: BaseRoute, prefix: str, answer: Answer) -> None:
        self.app = app
        self.route = route
        self.prefix = prefix  # every path the route matches starts with it: a cheap first test
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(self.prefix)
        ):
            match, child = self.route.matches(scope)
            if match is Match.FULL:
                response = self.answer(scope, child["path_params"])
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header (lower-case bytes) as Starlette's ``Headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
