"""The FastAPI application: tracking intake, customer reads and edits, the profile page.

Tracking calls are validated on receipt (``propsync.tracking.validate_commands``), their valid
``customers`` commands journaled and fsync'd (group commit) before the 200 goes out; the journal
is applied to the warehouse later (``propsync.journal.apply_journal``). Reads come from the
SQLite read model that follows the published versions' runs (``propsync.api.reader``,
``propsync.store.read_model``). Edits (PATCH, the page's form) apply synchronously through
``apply_batch``, apply the run they published to the read model at once (bounded by
``edit_visible_timeout_seconds``) and answer with the new state; when the warehouse is busy (an
import holds the write lock) they are journaled instead and answered with 202.

Wiring only: one router per resource (``api/routes/``), the shared ``Service``
(``api/service.py``) and its dependencies (``api/deps.py``), the error answers
(``api/errors.py``), the ASGI layers in front of the two hot routes (``api/fastpath.py``) and the
OpenAPI document (``api/openapi.py``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from propsync import __version__
from propsync.api import fastpath, openapi
from propsync.api.config import ServiceConfig
from propsync.api.errors import install_handlers
from propsync.api.routes import customers, health, page, tracking
from propsync.api.service import Service
from propsync.config import Settings
from propsync.journal import JournalWriter

log = logging.getLogger("propsync.api")


def create_app(
    config: ServiceConfig, settings: Settings, *, journal: JournalWriter | None = None
) -> FastAPI:
    service = Service(config, settings, journal)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.open()
        # Everything loaded so far lives as long as the process: keep it out of the cyclic GC's
        # full collections, which otherwise rescan it under load.
        gc.collect()
        gc.freeze()
        log.info(
            "propsync HTTP service on warehouse %s: %s",
            service.warehouse.root,
            config.public_summary(),
        )
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="propsync",
        version=__version__,
        description=(
            "Customer-properties synchronisation: tracking API, customer reads and edits. "
            "Tracking calls are durable when answered; their effect becomes visible to reads "
            "once the journal is applied and a new version is published (a few seconds)."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    install_handlers(app, config.retry_after_seconds)
    for module in (tracking, customers, page, health):
        app.include_router(module.router)
    if config.fast_paths:
        app.add_middleware(
            fastpath.FastRoute,
            route=_route(customers.router, customers.get_customer),
            prefix="/api/customers/",
            answer=customers.fast_answer(service),
        )
        app.add_middleware(
            fastpath.FastRoute,
            route=_route(tracking.router, tracking.track_batch),
            prefix="/track/v2/projects/",
            answer=tracking.fast_answer(service),
            method="POST",
        )
    openapi.install(app)
    return app


def _route(router: APIRouter, endpoint: Any) -> APIRoute:
    """``endpoint``'s route as its router declares it (included without a prefix, it matches the
    same paths in the app). Not looked up in ``app.routes``: FastAPI 0.16x includes routers
    lazily, so the app lists the router, not its routes."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


STATE_ENV = "PROPSYNC_SERVE_STATE"


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --workers N``: the serve command passes its resolved configuration."""
    data = json.loads(os.environ[STATE_ENV])
    if "log_level" in data:  # a worker process: propsync's own log lines, as the serve command's
        from propsync.api.commands import configure_logging

        configure_logging(data["log_level"])
    return create_app(
        ServiceConfig.model_validate(data["service"]), Settings.model_validate(data["settings"])
    )


def environment_state(
    config: ServiceConfig, settings: Settings, log_level: str | None = None
) -> str:
    state: dict[str, Any] = {
        "service": config.model_dump(mode="json"),
        "settings": settings.model_dump(mode="json"),
    }
    if log_level is not None:
        state["log_level"] = log_level
    return json.dumps(state)
