"""The FastAPI application (propsync.api.app): the routers and the ASGI read paths wired on one
service; a worker process builds the same app from the state its serve command passes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from propsync.api import fastpath
from propsync.api.app import STATE_ENV, app_from_environment, environment_state
from propsync.api.config import ServiceConfig
from propsync.config import Settings
from tests.api.conftest import AUTH, serve_in_process, service_app

ROUTES = {
    ("POST", "/track/v2/projects/{project_token}/batch"),
    ("POST", "/track/v2/projects/{project_token}/customers"),
    ("GET", "/api/customers/{customer:path}"),
    ("PATCH", "/api/customers/{customer:path}"),
    ("GET", "/customers/{customer:path}"),
    ("POST", "/customers/{customer:path}/edit"),
    ("GET", "/static/profile.js"),
    ("GET", "/healthz"),
}


def routes(app: object) -> set[tuple[str, str]]:
    return {(method, r.path) for r in api_routes(app.routes) for method in r.methods}  # type: ignore[attr-defined]


def api_routes(listed: list[Any]) -> list[APIRoute]:
    """The app's routes, through the routers FastAPI >= 0.16x lists unexpanded (included lazily;
    the routers here have no prefix)."""
    found: list[APIRoute] = []
    for r in listed:
        if isinstance(r, APIRoute):
            found.append(r)
        elif hasattr(r, "original_router"):
            found += api_routes(r.original_router.routes)
    return found


def fast_layers(app: object) -> list[str]:
    return [
        m.kwargs["prefix"]
        for m in app.user_middleware  # type: ignore[attr-defined]
        if m.cls is fastpath.FastRoute
    ]


def test_every_router_is_included_and_the_read_paths_are_layers_in_front(tmp_path: Path) -> None:
    app = service_app(tmp_path / "wh")
    assert routes(app) == ROUTES
    assert sorted(fast_layers(app)) == ["/api/customers/", "/track/v2/projects/"]
    assert fast_layers(service_app(tmp_path / "wh", fast_paths=False)) == []


def test_a_worker_builds_the_app_its_serve_command_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ServiceConfig(project_tokens=frozenset({"t"}), api_keys={"ui": "k"}, fast_paths=False)
    settings = Settings(warehouse=tmp_path / "wh", lock_timeout_seconds=7)
    state = environment_state(config, settings)
    assert "log_level" not in json.loads(state)
    monkeypatch.setenv(STATE_ENV, state)
    app = app_from_environment()
    assert app.state.service.config == config
    assert app.state.service.settings == settings
    assert fast_layers(app) == []
    with serve_in_process(app) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        r = httpx.get(f"{url}/api/customers/registered:a", auth=("ui", "k"))
        assert r.status_code == 404 and r.json()["error"] == "NotPublished"
        assert httpx.get(f"{url}/api/customers/registered:a", auth=AUTH).status_code == 401
