"""What the routes share: configuration, warehouse, journal writer, read model, and the
service-level steps of each request (credentials, backlog, journaling, edits)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import Request

from propsync import frames, sql
from propsync.api.bodies import check_unicode
from propsync.api.config import ServiceConfig
from propsync.api.errors import ApiError
from propsync.api.reader import PublishedReader
from propsync.config import Settings
from propsync.errors import PropsyncError, WarehouseLocked
from propsync.journal import JournalUnavailable, JournalWriter, Record, journal_status, record_of
from propsync.operations.edit import EditError, apply_edit, prepare_edit, write_ids
from propsync.store import compaction
from propsync.store.read import Customer, CustomerRef, render_customer
from propsync.store.warehouse import Warehouse
from propsync.timestamps import now_us
from propsync.tracking import (
    Receipt,
    new_batch_id,
    parse_commands,
    plain_request,
    validate_commands,
)

log = logging.getLogger("propsync.api")

WARM_UP_JOIN_SECONDS = 30.0
WARM_UP_EDIT = {"customer_ids": {"registered": "warm-up"}, "properties": {"warm_up": True}}
AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="propsync", charset="UTF-8"'}
# An edit's refusal (operations.edit.EditError.stage) -> HTTP status and error name.
EDIT_ERRORS = {
    "invalid": (400, "InvalidEdit"),
    "rejected": (409, "EditRejected"),
    "no_ids": (409, "NoIds"),
}


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
        self.warm_up: threading.Thread | None = None  # of the edit path, started by open()
        self.fast_answers = 0  # GETs answered 200 by the ASGI read path (api/fastpath.py)
        self.fast_tracks = 0  # tracking batches answered by the ASGI layer (api/fastpath.py)
        # No key id leaks through timing: unknown ids are compared against this.
        self._dummy_secret = os.urandom(16).hex()

    @property
    def open_journal(self) -> JournalWriter | None:
        """The journal writer, None while the server starts or stops."""
        return self._journal

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
        if self.warehouse.published_outdated():  # the read model builds from keyed files
            from propsync.store.migrations import migrate

            log.info("publishing %s in this release's layout first", self.warehouse.root)
            migrate(self.warehouse, self.settings)
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
                {"commands": [{"name": "customers", "data": WARM_UP_EDIT}]},
                receive_us=now_us(),
                max_future_skew_us=self.settings.max_future_skew_us,
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
        if self.warm_up is not None:  # it uses the writer instance closed below (about a second)
            self.warm_up.join(WARM_UP_JOIN_SECONDS)
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
            raise ApiError(401, "Unauthorized", message, headers=AUTHENTICATE, html=html)
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

    async def track_plain(self, body: bytes) -> Receipt | None:
        """``track`` for a request body of plainly valid ``customers`` commands, decoded by type
        (``tracking.plain_request``); None, with nothing journaled, for any other body."""
        receive_us = now_us()
        plain = plain_request(
            body,
            receive_us=receive_us,
            max_future_skew_us=self.settings.max_future_skew_us,
            max_commands=self.config.max_commands,
        )
        if plain is None:
            return None
        checked = plain.checked
        if checked.ids:
            record = Record(
                new_batch_id("trk"),
                receive_us,
                checked.ids,
                checked.cells,
                plain.command_ids,
                plain.commands,
            )
            await self.journal.append(record.encode())
        return Receipt(checked.results, receive_us)

    async def track(self, body: dict[str, Any]) -> Receipt:
        """Validate a request's commands and journal the valid ``customers`` ones (plain Python:
        no frames until the applier builds its batch of many requests)."""
        receive_us = now_us()
        try:
            checked = validate_commands(
                body["commands"],
                receive_us=receive_us,
                max_future_skew_us=self.settings.max_future_skew_us,
            )
            record = record_of(new_batch_id("trk"), receive_us, checked, body["commands"])
            line = None if record is None else record.encode()
        except Exception:
            # Text JSON can carry but Unicode cannot (a lone surrogate) fails deep inside; say so.
            check_unicode(body)
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
            status, name = EDIT_ERRORS[exc.stage]
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
