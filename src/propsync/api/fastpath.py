"""The hot routes without FastAPI's routing: small ASGI layers in front of the app.

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

``POST /track/v2/projects/{project_token}/batch`` goes the same way (``FastRoute(method="POST")``):
its answer reads the body from ``receive`` itself and always answers (the body is consumed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

# (scope, receive, path parameters) -> the response, or None: let the app answer.
Answer = Callable[[Scope, Receive, dict[str, Any]], Awaitable[Response | None]]


class FastRoute:
    """ASGI middleware answering one route's ``method`` with ``answer`` (see the module
    docstring)."""

    def __init__(
        self, app: ASGIApp, route: BaseRoute, prefix: str, answer: Answer, method: str = "GET"
    ) -> None:
        self.app = app
        self.route = route
        self.prefix = prefix  # every path the route matches starts with it: a cheap first test
        self.answer = answer
        self.method = method

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == self.method
            and scope["path"].startswith(self.prefix)
        ):
            match, child = self.route.matches(scope)
            if match is Match.FULL:
                response = await self.answer(scope, receive, child["path_params"])
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives, as Starlette's ``Request.stream`` gives it."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header (lower-case bytes) as Starlette's ``Headers.get`` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
