"""The FastAPI application: tracking intake, customer reads and edits, the profile page.

Tracking calls are validated on receipt (``propsync.tracking.validate_commands``), their valid
``customers`` commands journaled and fsync'd (group commit) before the 200 goes out; the journal
is applied to the warehouse later (``propsync.journal.apply_journal``). Reads come from the
SQLite read model that follows the published versions' runs (``propsync.api.reader``,
``propsync.store.read_model``). Edits (PATCH, the page's form) apply synchronously through
``apply_batch``, apply the run they published to the read model at once (bounded by
``edit_visible_timeout_seconds``) and answer with the new state; when the warehouse is busy (an
import holds the write lock) they are journaled instead and answered with 202.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import hashlib
import hmac
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Receive, Scope

from propsync import __version__, frames, jsonlimits, sql
from propsync.api import fastpath, schemas
from propsync.api.config import ServiceConfig
from propsync.api.page import (
    CONTENT_SECURITY_POLICY,
    PROFILE_JS,
    csrf_token,
    customer_path,
    render_error,
    render_profile,
)
from propsync.api.reader import PublishedReader
from propsync.config import Settings
from propsync.errors import NotPublished, PropsyncError, UnknownCustomer, WarehouseLocked
from propsync.journal import (
    JournalUnavailable,
    JournalWriter,
    journal_status,
    record_of,
)
from propsync.operations.edit import EditError, apply_edit, prepare_edit, write_ids
from propsync.store import compaction
from propsync.store.read import Customer, CustomerRef, render_customer
from propsync.store.warehouse import Warehouse
from propsync.timestamps import now_us
from propsync.tracking import (
    BatchShapeError,
    Receipt,
    check_batch,
    new_batch_id,
    parse_commands,
    response,
    validate_commands,
)

log = logging.getLogger("propsync.api")

_NO_STORE = {"Cache-Control": "no-store"}
_WARM_UP_EDIT = {"customer_ids": {"registered": "warm-up"}, "properties": {"warm_up": True}}
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="propsync", charset="UTF-8"'}


# An edit's refusal (operations.edit.EditError.stage) -> HTTP status and error name.
_EDIT_ERRORS = {
    "invalid": (400, "InvalidEdit"),
    "rejected": (409, "EditRejected"),
    "no_ids": (409, "NoIds"),
}


class ApiError(Exception):
    """An HTTP error with a JSON body ``{"error", "message"[, "errors"]}`` (or an HTML page)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
        html: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.errors, self.headers, self.html = errors, headers or {}, html

    def response(self) -> Response:
        if self.html:
            return HTMLResponse(
                render_error(self.status, self.error, self.message),
                self.status,
                headers={**_PAGE_HEADERS, **self.headers},
            )
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(self.status, body, {**_NO_STORE, **self.headers})


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, str):
        data = body.encode("utf-8")
    else:
        try:  # a 50-command tracking response: 8x faster than json.dumps
            data = orjson.dumps(body)
        except orjson.JSONEncodeError:  # an echoed command_id beyond 64 bits
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(data, status, headers=headers, media_type="application/json")


def _loads(body: bytes | str, what: str = "the body", *, html: bool = False) -> Any:
    """Parse JSON from a client (``jsonlimits``): 400 ``JsonTooDeep`` or ``InvalidJson``."""
    try:
        return jsonlimits.loads(body)
    except jsonlimits.JsonTooDeep as exc:
        error, message = "JsonTooDeep", exc.describe(what)
    except ValueError as exc:  # incl. UnicodeDecodeError, NaN/Infinity
        error, message = "InvalidJson", f"{what} is not valid JSON: {exc}"
    raise ApiError(400, "Bad request" if html else error, message, html=html)


def _form(raw: bytes) -> dict[str, list[str]]:
    """The fields of an urlencoded form; bytes that are not UTF-8 (raw or percent-encoded) are
    refused: decoding them with replacement would store U+FFFD in place of the user's text."""
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            "Bad request",
            f"the form is not UTF-8 text ({exc.reason} at byte {exc.start}): nothing was saved; "
            "submit it from a page served by propsync (UTF-8)",
            html=True,
        ) from None


def _check_unicode(value: Any) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400,
            "InvalidText",
            "the body contains a lone surrogate escape (e.g. \\ud800): not Unicode text",
        ) from None


async def _read_body(request: Request, limit: int) -> bytes:
    return await _read_limited(request.headers.get("content-length"), request.stream(), limit)


async def _read_limited(declared: str | None, stream: AsyncIterator[bytes], limit: int) -> bytes:
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


class Backlog:
    """The journal's bytes not applied yet, looked at (a directory listing and a few stats) at
    most every ``interval`` seconds rather than on every request."""

    interval = 0.25

    def __init__(self, root: Path, bound: int) -> None:
        self.root, self.bound = root, bound
        self.bytes = 0
        self._checked = -float("inf")

    def over(self) -> bool:
        if not self.bound:
            return False
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            self.bytes = journal_status(self.root).unapplied_bytes
        return self.bytes > self.bound


class Service:
    """Everything the routes share: configuration, warehouse, journal writer, reader."""

    def __init__(
        self, config: ServiceConfig, settings: Settings, journal: JournalWriter | None
    ) -> None:
        self.config = config
        self.settings = settings
        self.warehouse = Warehouse(settings.warehouse)
        # Edits write through one DuckDB instance of this process, work.duckdb attached only
        # while the write lock is held (store/warehouse.py WriterInstance).
        self.warehouse.keep_writer_instance(settings.duckdb_memory_limit)
        # The read model is built under the writer's memory limit.
        self.reader = PublishedReader(
            self.warehouse,
            memory_limit=settings.duckdb_memory_limit,
            poll_seconds=config.read_model_poll_seconds,
        )
        self._journal = journal
        self.backlog = Backlog(self.warehouse.root, config.max_unapplied_bytes)
        self.max_future_skew_us = round(settings.max_future_skew_seconds * 1_000_000)
        self.warm_up: threading.Thread | None = None  # of the edit path, started by open()
        self.fast_answers = 0  # GETs answered 200 by the ASGI read path (api/fastpath.py)
        self.fast_tracks = 0  # tracking batches answered by the ASGI layer (api/fastpath.py)
        # No key id leaks through timing: unknown ids are compared against this.
        self._dummy_secret = os.urandom(16).hex()

    @property
    def journal(self) -> JournalWriter:
        if self._journal is None:
            raise JournalUnavailable("the journal is not open (server starting or stopping)")
        return self._journal

    def open(self) -> None:
        if self._journal is None:
            self._journal = JournalWriter(
                self.warehouse.root, segment_bytes=self.config.journal_segment_bytes
            ).start()
        self.reader.start()  # builds the read model in the background, or catches up on runs
        self.warm_up = threading.Thread(target=self.warm_up_edits, name="edit-warm-up", daemon=True)
        self.warm_up.start()

    def warm_up_edits(self) -> None:
        """Pay at start what the first edit of a process paid on top of the next ones (at 1M x
        10 the first PATCH took a median 384 ms against ~210 for the next, docs/benchmarks.md):
        the writer's DuckDB instance, the SQL files, the first Polars -> Arrow -> DuckDB
        hand-over and Parquet write, the first attach of work.duckdb and its statements. Skipped while another writer holds the
        lock (timeout 0) and on a warehouse without a working database (nothing is created)."""
        started = time.monotonic()
        try:
            sql.load_all()
            tb = parse_commands(  # the edit's Python path: validation, frames (nothing is written)
                {"commands": [{"name": "customers", "data": _WARM_UP_EDIT}]},
                receive_us=now_us(),
                max_future_skew_us=self.max_future_skew_us,
                batch_id="warm-up",
                source="warm-up",
            )
            if self.warehouse.writer is not None:
                # Handing frames to DuckDB (the first one imports and sets up Arrow: about 90 ms
                # of the first edit) and writing Parquet, on the instance's own memory database.
                con = self.warehouse.writer.scratch()
                try:
                    frames.register(con, "warm_up_ids", tb.batch.ids)
                    frames.register(con, "warm_up_cells", tb.batch.cells)
                    with tempfile.TemporaryDirectory() as tmp:
                        con.execute(
                            f"COPY (SELECT * FROM warm_up_ids, warm_up_cells) TO "
                            f"'{tmp}/warm-up.parquet' (FORMAT parquet)"
                        )
                finally:
                    con.close()
            if not self.warehouse.work_path.is_file():
                return
            with self.warehouse.write_lock(0.0):
                con = self.warehouse.connect_work(self.settings.duckdb_memory_limit)
                try:
                    Warehouse.work_version(con)
                finally:
                    con.close()
        except PropsyncError as exc:
            log.info("edit warm-up skipped: %s", exc.message)
            return
        except Exception:
            log.exception("edit warm-up failed (edits are not affected)")
            return
        log.info("edit path warmed up in %.3f s", time.monotonic() - started)

    def close(self) -> None:
        compaction.stop_threads()  # the edits' compactions: a process exiting inside one aborts
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()
        self.reader.close()
        self.warehouse.close_writer_instance()

    # -- auth

    def check_project(self, token: str) -> None:
        if token not in self.config.project_tokens:
            raise ApiError(
                403, "UnknownProject", "this project token is not accepted by the server"
            )

    def authenticate(self, request: Request, *, html: bool = False) -> tuple[str, str]:
        """The API key ``(id, secret)`` of a request with valid HTTP Basic credentials."""
        return self.check_credentials(request.headers.get("authorization", ""), html=html)

    def check_credentials(self, header: str, *, html: bool = False) -> tuple[str, str]:
        """The API key ``(id, secret)`` of an ``Authorization`` header with valid HTTP Basic
        credentials; 401 (503 without configured keys) otherwise."""
        keys = self.config.api_keys
        if not keys:
            raise ApiError(
                503,
                "NoApiKeys",
                "no API keys are configured (PROPSYNC_API_KEYS or api_keys in the config file): "
                "the data routes refuse to serve without authentication",
                html=html,
            )
        scheme, _, encoded = header.partition(" ")
        key_id = secret = ""
        if scheme.lower() == "basic":
            try:
                key_id, _, secret = (
                    base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                key_id = secret = ""
        expected = keys.get(key_id)
        # Digests of equal length: the comparison time reveals neither content nor length.
        match = hmac.compare_digest(
            hashlib.sha256(secret.encode()).digest(),
            hashlib.sha256(
                (self._dummy_secret if expected is None else expected).encode()
            ).digest(),
        )
        if expected is None or not match:
            message = (
                "missing API key: use HTTP Basic auth with key_id:secret"
                if not header
                else "wrong API key"
            )
            raise ApiError(401, "Unauthorized", message, headers=_AUTHENTICATE, html=html)
        return key_id, expected

    # -- tracking

    def check_backlog(self) -> None:
        """429 with Retry-After while the journal's backlog is over its bound: an SDK retries
        later, and nothing is acknowledged that the applier could not catch up with."""
        if self.backlog.over():
            raise ApiError(
                429,
                "TooManyRequests",
                f"the journal holds {self.backlog.bytes:,} bytes not applied yet, more than "
                f"PROPSYNC_MAX_UNAPPLIED_BYTES={self.backlog.bound:,}: nothing was stored; "
                f"retry after {self.config.retry_after_seconds} s",
                headers={"Retry-After": str(self.config.retry_after_seconds)},
            )

    async def track(self, body: dict[str, Any]) -> Receipt:
        """Validate a request's commands and journal the valid ``customers`` ones (plain Python:
        no frames until the applier builds its batch of many requests)."""
        receive_us = now_us()
        try:
            checked = validate_commands(
                body["commands"], receive_us=receive_us, max_future_skew_us=self.max_future_skew_us
            )
            record = record_of(new_batch_id("trk"), receive_us, checked, body["commands"])
            line = None if record is None else record.encode()
        except Exception:
            # Text JSON can carry but Unicode cannot (a lone surrogate) fails deep inside; say so.
            _check_unicode(body)
            raise
        if line is not None:
            await self.journal.append(line)
        return Receipt(checked.results, receive_us)

    # -- edits

    def edit(self, ref_text: str, properties: dict[str, Any], key_id: str) -> tuple[int, Any]:
        """Apply an edit synchronously (or journal it when the warehouse is busy).

        Returns ``(200, rendered customer with timestamps)`` or ``(202, queued notice)``.
        """
        ref = CustomerRef.parse(ref_text)
        customer, _ = self.reader.customer(ref)
        try:
            edit = prepare_edit(
                write_ids(ref, customer, self.settings.hard_id_types),
                properties,
                self.settings,
                stamp_us=now_us(),
                source=f"api edit by key {key_id}",
            )
            edit_settings = self.settings.model_copy(
                update={"lock_timeout_seconds": self.config.edit_lock_timeout_seconds}
            )
            applied = apply_edit(self.warehouse, edit, edit_settings)
        except EditError as exc:
            status, name = _EDIT_ERRORS[exc.stage]
            raise ApiError(status, name, exc.message, errors=exc.errors) from None
        except WarehouseLocked:
            self.journal.append_sync(edit.record().encode())
            return 202, {
                "status": "queued",
                "batch_id": edit.batch_id,
                "update_timestamp": edit.stamp_us / 1_000_000,
                "message": "the warehouse is busy (an import or apply is running): the edit is "
                "journaled and becomes visible after the next apply",
            }
        if self.settings.auto_compact:  # edits add files too, with or without the applier
            # With the applier running, a new base waits for it to be idle (compaction.plan).
            compaction.start_thread(self.warehouse, self.settings, busy=self.config.apply_enabled)
        published = applied.published_version or self.warehouse.published_version()
        return 200, render_customer(self._read_own_write(ref, published), True)

    def _read_own_write(self, ref: CustomerRef, published: int) -> Customer:
        """The customer as of ``published`` (or newer), once this server serves that version, so
        that the following reads show the edit too: the read model applies the edit's run now.
        Waits up to ``edit_visible_timeout_seconds`` (another process may hold the follower's
        lock, or the model is being built); then answers from the published file (logged)."""
        timeout = self.config.edit_visible_timeout_seconds
        if self.reader.wait_for(published, timeout):
            updated, _ = self.reader.customer(ref)
            return updated
        log.warning(
            "edit published as version %d, but this server still serves version %d after "
            "%g s (its read model is being built or followed elsewhere): answering from the "
            "published file; reads show the edit once the read model has it",
            published,
            self.reader.version,
            timeout,
        )
        return self.reader.read_published(ref)


def _edit_properties(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) != {"properties"}:
        raise ApiError(400, "InvalidEdit", 'the body must be {"properties": {name: value, ...}}')
    props = body["properties"]
    if not isinstance(props, dict) or not props:
        raise ApiError(400, "InvalidEdit", '"properties" must be a non-empty object')
    _check_unicode(props)
    return props


def _include_timestamps(value: str | None) -> bool:
    if value is None or value == "0":
        return False
    if value == "1":
        return True
    raise ApiError(400, "BadRequest", "include_timestamps must be 0 or 1")


_PROJECT_TOKEN = {
    "name": "project_token",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "a configured project token",
}
_CUSTOMER = {
    "name": "customer",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "an internal id or ID_TYPE:ID_VALUE (percent-encode / ? # and spaces)",
}
_INCLUDE_TIMESTAMPS = {
    "name": "include_timestamps",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["0", "1"], "default": "0"},
    "description": "1: every property as {value, last_update}",
}


def _component_schemas() -> dict[str, Any]:
    schemas_out: dict[str, Any] = {}
    for model in (schemas.TrackingBatchBody, schemas.CustomersData, schemas.CustomerEdit):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas_out.update(schema.pop("$defs", {}))
        schemas_out[model.__name__] = schema
    return schemas_out


def _body(model: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


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

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(UnknownCustomer)
    async def _unknown(request: Request, exc: UnknownCustomer) -> Response:
        return json_response(404, exc.to_dict(), _NO_STORE)

    @app.exception_handler(NotPublished)
    async def _not_published(request: Request, exc: NotPublished) -> Response:
        return json_response(404, exc.to_dict(), _NO_STORE)

    def propsync_error_response(method: str, path: str, exc: PropsyncError) -> Response:
        status = 503 if exc.retryable else 500
        if status == 500:
            log.error("%s %s failed: %s", method, path, exc.message)
        headers = _NO_STORE
        if exc.retryable:
            headers = {**_NO_STORE, "Retry-After": str(config.retry_after_seconds)}
        return json_response(status, exc.to_dict(), headers)

    @app.exception_handler(PropsyncError)
    async def _propsync_error(request: Request, exc: PropsyncError) -> Response:
        return propsync_error_response(request.method, request.url.path, exc)

    def disconnected_response(method: str, path: str) -> Response:
        # A phone losing its network mid-request is routine, not a server error: nothing of the
        # request was journaled, and the answer has nobody to go to.
        log.info("%s %s: the client disconnected before its body was read", method, path)
        return json_response(
            400, {"error": "ClientDisconnect", "message": "the body was not received"}
        )

    @app.exception_handler(ClientDisconnect)
    async def _disconnected(request: Request, exc: ClientDisconnect) -> Response:
        return disconnected_response(request.method, request.url.path)

    async def track_batch_answer(
        project_token: str, declared: str | None, chunks: AsyncIterator[bytes]
    ) -> Response:
        """What ``POST .../batch`` answers (a 200, or ApiError / PropsyncError raised)."""
        service.check_project(project_token)
        service.check_backlog()
        body = _loads(await _read_limited(declared, chunks, config.max_body_bytes))
        try:
            check_batch(body, config.max_commands)
        except BatchShapeError as exc:
            raise ApiError(400, exc.name, str(exc)) from None
        receipt = await service.track(body)
        return json_response(200, response(receipt, now_us()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        name = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        headers = dict(exc.headers) if exc.headers else None
        return json_response(exc.status_code, {"error": name, "message": str(exc.detail)}, headers)

    # -- tracking -------------------------------------------------------------------------------

    @app.post(
        "/track/v2/projects/{project_token}/batch",
        tags=["tracking"],
        summary="Track a batch of commands",
        response_model=schemas.TrackingResponse,
        responses={
            400: {
                "model": schemas.ErrorBody,
                "description": "not JSON, nested more than 64 levels, not a batch, too many commands",
            },
            403: {"model": schemas.ErrorBody, "description": "unknown project token"},
            413: {"model": schemas.ErrorBody, "description": "body too large"},
            429: {
                "model": schemas.ErrorBody,
                "description": "the journal's backlog is over its bound: retry after Retry-After",
            },
            503: {"model": schemas.ErrorBody, "description": "journal unavailable: retry"},
        },
        openapi_extra={**_body("TrackingBatchBody"), "parameters": [_PROJECT_TOKEN]},
    )
    async def track_batch(request: Request) -> Response:
        """One result per command, in order. A 200 means the valid commands are durably journaled;
        they are applied (newer timestamp wins per property) within seconds. Hard-id conflicts are
        found only when applied: they land in the warehouse's ``rejections`` table."""
        # Parameters are read from the request directly (no FastAPI parameter solving); the
        # OpenAPI documentation declares them. With fast_paths this route is answered by the
        # ASGI layer (answer_track) and the route only documents it.
        return await track_batch_answer(
            request.path_params["project_token"],
            request.headers.get("content-length"),
            request.stream(),
        )

    @app.post(
        "/track/v2/projects/{project_token}/customers",
        tags=["tracking"],
        summary="Track one customers command",
        response_model=schemas.CommandResult,
        responses={
            400: {"model": schemas.CommandResult, "description": "invalid command"},
            403: {"model": schemas.ErrorBody, "description": "unknown project token"},
            413: {"model": schemas.ErrorBody, "description": "body too large"},
            429: {
                "model": schemas.ErrorBody,
                "description": "the journal's backlog is over its bound: retry after Retry-After",
            },
        },
        openapi_extra=_body("CustomersData"),
    )
    async def track_customer(project_token: str, request: Request) -> Response:
        """The body is the ``data`` of one ``customers`` command."""
        service.check_project(project_token)
        service.check_backlog()
        data = _loads(await _read_body(request, config.max_body_bytes))
        receipt = await service.track({"commands": [{"name": "customers", "data": data}]})
        result = receipt.results[0]
        return json_response(200 if result["success"] else 400, result)

    # -- data -----------------------------------------------------------------------------------

    @app.get(
        "/api/customers/{customer:path}",
        tags=["customers"],
        summary="A customer's properties",
        responses={
            200: {
                "description": "the customer, from the latest published version "
                "(header X-Propsync-Version)",
                "content": {
                    "application/json": {
                        "examples": {
                            "plain": {"value": schemas.CUSTOMER_EXAMPLE_PLAIN},
                            "include_timestamps=1": {"value": schemas.CUSTOMER_EXAMPLE_TIMESTAMPS},
                        }
                    }
                },
            },
            401: {"model": schemas.ErrorBody},
            404: {"model": schemas.ErrorBody, "description": "unknown customer"},
            503: {"model": schemas.ErrorBody, "description": "no API keys configured"},
        },
        openapi_extra={"parameters": [_CUSTOMER, _INCLUDE_TIMESTAMPS]},
    )
    def get_customer_route(request: Request) -> Response:
        """``customer`` is an internal id or ``ID_TYPE:ID_VALUE``. With ``include_timestamps=1``
        every property is ``{"value", "last_update"}`` (UNIX seconds, -1 when never tracked)."""
        service.authenticate(request)
        include = _include_timestamps(request.query_params.get("include_timestamps"))
        ref = CustomerRef.parse(request.path_params["customer"])
        found, version = service.reader.customer(ref)
        return json_response(
            200, render_customer(found, include), {**_NO_STORE, "X-Propsync-Version": str(version)}
        )

    @app.patch(
        "/api/customers/{customer:path}",
        tags=["customers"],
        summary="Edit properties as the UI does",
        responses={
            200: {"description": "applied; the customer with timestamps"},
            202: {"description": "warehouse busy: journaled, visible after the next apply"},
            400: {"model": schemas.ErrorBody},
            401: {"model": schemas.ErrorBody},
            404: {"model": schemas.ErrorBody},
        },
        openapi_extra=_body("CustomerEdit"),
    )
    async def patch_customer(customer: str, request: Request) -> Response:
        """Stamped with the server's current time and applied at once (newer wins)."""
        key_id, _ = service.authenticate(request)
        props = _edit_properties(_loads(await _read_body(request, config.max_body_bytes)))
        status, body = await run_in_threadpool(service.edit, customer, props, key_id)
        return json_response(status, body, _NO_STORE)

    # -- the page -------------------------------------------------------------------------------

    @app.get("/customers/{customer:path}", tags=["page"], response_class=HTMLResponse)
    def profile_page(
        customer: str, request: Request, saved: str | None = None, queued: str | None = None
    ) -> Response:
        """The customer's profile: ids, properties with their last update, an edit form."""
        key_id, secret = service.authenticate(request, html=True)
        try:
            found, version = service.reader.customer(CustomerRef.parse(customer))
        except (UnknownCustomer, NotPublished) as exc:
            raise ApiError(404, "Unknown customer", exc.message, html=True) from None
        notice = None
        if saved:
            notice = f"Saved {saved}."
        elif queued:
            notice = f"The warehouse is busy: {queued} is queued and appears after the next apply."
        html = render_profile(
            customer,
            found,
            version=version,
            csrf=csrf_token(secret, key_id, customer),
            notice=notice,
        )
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    @app.post("/customers/{customer:path}/edit", tags=["page"], include_in_schema=False)
    async def profile_edit(customer: str, request: Request) -> Response:
        """The edit form without JavaScript: apply, then back to the page (303)."""
        key_id, secret = service.authenticate(request, html=True)
        form = _form(await _read_body(request, config.max_body_bytes))

        def field(name: str, default: str = "") -> str:
            return form.get(name, [default])[0]

        if not hmac.compare_digest(field("csrf"), csrf_token(secret, key_id, customer)):
            raise ApiError(
                403, "Forbidden", "the form is stale or foreign: reload the page", html=True
            )
        name, text = field("name").strip(), field("value")
        if not name:
            raise ApiError(400, "Bad request", "the property name is empty", html=True)
        value: Any = text
        if field("type", "text") == "json":
            value = _loads(text, "the value", html=True)
        try:
            _check_unicode(value)
            status, _ = await run_in_threadpool(service.edit, customer, {name: value}, key_id)
        except ApiError as exc:
            exc.html = True
            raise
        except (UnknownCustomer, NotPublished) as exc:
            raise ApiError(404, "Unknown customer", exc.message, html=True) from None
        flag = "saved" if status == 200 else "queued"
        return RedirectResponse(
            f"/customers/{customer_path(customer)}?{flag}={customer_path(name)}", status_code=303
        )

    @app.get("/static/profile.js", include_in_schema=False)
    def profile_js() -> Response:
        return Response(
            PROFILE_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    # -- operations -----------------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"], summary="Liveness and journal state")
    def healthz() -> Response:
        journal = service._journal
        ok = journal is not None and journal.healthy
        status = journal_status(service.warehouse.root)
        body = {
            "status": "ok" if ok else "unavailable",
            "published_version": service.warehouse.published_version(),
            # What this server process reads from: the read model (indexed) or, until it is
            # built, the plain published file.
            "serving": {"version": service.reader.version, "indexed": service.reader.indexed},
            "journal": {
                "segments": status.segments,
                "live_segments": status.live_segments,
                "unapplied_bytes": status.unapplied_bytes,
                "records_written": journal.stats.records if journal else 0,
                "fsyncs": journal.stats.syncs if journal else 0,
                "write_errors": journal.stats.errors if journal else 0,
            },
        }
        return json_response(200 if ok else 503, body, _NO_STORE)

    if config.fast_paths:
        route = next(
            r for r in app.routes if isinstance(r, APIRoute) and r.endpoint is get_customer_route
        )

        async def answer_get(
            scope: Scope, receive: Receive, path_params: dict[str, Any]
        ) -> Response | None:
            """``get_customer_route``'s answer, in the event loop (``api/fastpath.py``); None when
            only the route can give it (the read model cannot answer now, or anything
            unexpected: the route then answers as it always does)."""
            try:
                service.check_credentials(fastpath.header(scope, b"authorization") or "")
                query = scope["query_string"]
                include = _include_timestamps(
                    QueryParams(query).get("include_timestamps") if query else None
                )
                found = service.reader.model_customer(CustomerRef.parse(path_params["customer"]))
            except ApiError as exc:
                return exc.response()
            except (UnknownCustomer, NotPublished) as exc:
                return json_response(404, exc.to_dict(), _NO_STORE)
            except Exception:
                return None
            if found is None:
                return None
            customer, version = found
            service.fast_answers += 1
            return json_response(
                200,
                render_customer(customer, include),
                {**_NO_STORE, "X-Propsync-Version": str(version)},
            )

        app.add_middleware(
            fastpath.FastRoute, route=route, prefix="/api/customers/", answer=answer_get
        )

        batch_route = next(
            r for r in app.routes if isinstance(r, APIRoute) and r.endpoint is track_batch
        )

        async def answer_track(
            scope: Scope, receive: Receive, path_params: dict[str, Any]
        ) -> Response:
            """``track_batch``'s answer without FastAPI's routing; the errors the app's handlers
            would turn into answers, turned the same way here."""
            service.fast_tracks += 1
            try:
                return await track_batch_answer(
                    path_params["project_token"],
                    fastpath.header(scope, b"content-length"),
                    fastpath.body_chunks(receive),
                )
            except ApiError as exc:
                return exc.response()
            except PropsyncError as exc:
                return propsync_error_response(scope["method"], scope["path"], exc)
            except ClientDisconnect:
                return disconnected_response(scope["method"], scope["path"])

        app.add_middleware(
            fastpath.FastRoute,
            route=batch_route,
            prefix="/track/v2/projects/",
            answer=answer_track,
            method="POST",
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                _component_schemas()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


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
