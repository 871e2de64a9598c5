"""FastAPI dependencies of the routes: the service, and HTTP Basic API keys as a security scheme
(declared in the OpenAPI document; checked by ``Service.check_credentials``, the same check the
ASGI read path makes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic

from propsync.api.service import Service


async def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


class ApiKeyAuth(HTTPBasic):
    """HTTP Basic with a configured API key (``key_id:secret``): the key's ``(id, secret)``.
    ``html``: errors as pages (the profile page) instead of JSON."""

    def __init__(self, *, html: bool = False) -> None:
        super().__init__(scheme_name="apiKey", realm="propsync", auto_error=False)
        self.html = html

    async def __call__(self, request: Request) -> tuple[str, str]:  # type: ignore[override]
        return (await service_of(request)).authenticate(request, html=self.html)


ServiceDep = Annotated[Service, Depends(service_of)]
ApiKey = Annotated[tuple[str, str], Depends(ApiKeyAuth())]
PageKey = Annotated[tuple[str, str], Depends(ApiKeyAuth(html=True))]
