"""CLI commands of the HTTP service. Module level imports stdlib and propsync core only, and not
multiprocessing: every ``propsync`` command builds this parser (``propsync get`` starts faster)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from propsync.errors import UsageError

if TYPE_CHECKING:
    import multiprocessing.process

    from propsync.api.config import ServiceConfig
    from propsync.config import Settings

log = logging.getLogger("propsync.api")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from propsync.api.config import load_config
    from propsync.store.warehouse import Warehouse

    config, settings = load_config(
        args.config,
        warehouse=args.warehouse,
        apply_interval_seconds=args.apply_interval,
        publish_interval_seconds=args.publish_interval,
        apply_enabled=False if args.no_apply else None,
    )
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    configure_logging(args.log_level)
    if not config.project_tokens:
        log.warning("no project tokens configured: every tracking call is refused (403)")
    if not config.api_keys:
        log.warning("no API keys configured: the data routes and the page answer 503")
    Warehouse(settings.warehouse).root.mkdir(parents=True, exist_ok=True)
    applier = _start_applier(config, settings, args.log_level)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal; with these
    # handlers that ends up here, so the applier finishes its batch and the exit status is 0.
    previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _run_server(args, config, settings)
    except _Stopped as stopped:
        log.info("stopped by signal %d", stopped.signum)
    finally:
        if applier is not None:
            _stop_applier(applier)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _start_applier(
    config: ServiceConfig, settings: Settings, log_level: str
) -> multiprocessing.process.BaseProcess | None:
    """The background applier, unless ``--no-apply``: a child process at a lower CPU priority, so
    that applying (DuckDB, Polars, Python) competes neither for the server's GIL nor, when the
    machine is busy, for its CPU."""
    import multiprocessing

    if not config.apply_enabled:
        log.info(
            "--no-apply: the journal is applied by `propsync apply` or the tracking_ingest DAG"
        )
        return None
    applier = multiprocessing.get_context("spawn").Process(
        target=_applier_main,
        args=(
            settings.model_dump_json(),
            config.apply_interval_seconds,
            os.getpid(),
            log_level,
            config.publish_interval_seconds,
        ),
        name="propsync-applier",
    )
    applier.start()
    log.info(
        "applying the journal every %g s, publishing %s (applier process %s)",
        config.apply_interval_seconds,
        "with an apply once as long as the last publish took has passed (automatic)"
        if config.publish_interval_seconds is None
        else f"at most every {config.publish_interval_seconds:g} s",
        applier.pid,
    )
    return applier


def _run_server(args: argparse.Namespace, config: ServiceConfig, settings: Settings) -> None:
    """uvicorn until it is stopped: the app in this process, or ``--workers`` processes that each
    build it from the resolved configuration (each journals to its own segment)."""
    import uvicorn

    from propsync.api.app import STATE_ENV, app_from_environment, create_app, environment_state

    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "access_log": args.access_log,
        "log_level": args.log_level,
        "timeout_graceful_shutdown": 10,
    }
    if args.workers == 1:
        uvicorn.run(create_app(config, settings), **common)
        return
    os.environ[STATE_ENV] = environment_state(config, settings, args.log_level)
    uvicorn.run(
        f"{app_from_environment.__module__}:{app_from_environment.__name__}",
        factory=True,
        workers=args.workers,
        **common,
    )


def _stop_applier(applier: multiprocessing.process.BaseProcess) -> None:
    applier.terminate()  # SIGTERM: it finishes the batch it is applying, then exits
    applier.join(timeout=120)
    if applier.is_alive():
        log.error("the applier did not stop in 120 s; killing it (the journal is safe)")
        applier.kill()
        applier.join()


APPLIER_NICENESS = 10


def _applier_main(
    settings_json: str,
    interval: float,
    parent: int,
    log_level: str,
    publish_interval: float | None = None,
) -> None:
    """The background applier: ``apply_forever`` until SIGTERM or until the server is gone."""
    import multiprocessing

    from propsync.config import Settings
    from propsync.journal import apply_forever
    from propsync.store.warehouse import Warehouse

    configure_logging(log_level)
    with contextlib.suppress(OSError):
        os.nice(APPLIER_NICENESS)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    _watch_parent(parent, stop)
    settings = Settings.model_validate_json(settings_json)
    warehouse = Warehouse(settings.warehouse)
    # One DuckDB instance for every apply and publish (attached under the write lock only): a new
    # instance per batch cost a start and a close each (about 15% of the applier's time at 1M x 10
    # under 20,000 commands/s).
    warehouse.keep_writer_instance(settings.duckdb_memory_limit)
    # Each version published goes into the read model at once, by a process of its own (at the
    # same niceness): the next apply runs meanwhile, and neither waits for the other's GIL (at 1M
    # customers a follow of 40k rows takes about as long as their apply; in a thread beside it
    # both were 20-35% slower).
    ctx = multiprocessing.get_context("spawn")
    published, follower_stop = ctx.Event(), ctx.Event()
    follower = ctx.Process(
        target=_follower_main,
        args=(settings_json, os.getpid(), log_level, published, follower_stop),
        name="propsync-follower",
    )
    follower.start()
    try:
        apply_forever(
            warehouse,
            settings,
            interval,
            stop,
            publish_interval=publish_interval,
            after_publish=published.set,
        )
    finally:
        follower_stop.set()
        published.set()
        follower.join(60)
        if follower.is_alive():
            follower.kill()
        warehouse.close_writer_instance()


def _follower_main(
    settings_json: str, parent: int, log_level: str, published: Any, stop_event: Any
) -> None:
    """The applier's read-model follower: follows each version the applier publishes at once,
    and every half second the versions others publish (imports, edits); between follows it
    maintains the model's segments, a step at a time (``ReadModel.follow(maintain=True)``).
    While it runs the server workers leave the runs to it (``ReadModel.follower_present``).
    Never a build (the server builds: a run it needs was pruned, the warehouse was recreated),
    never a wait for a follower elsewhere (a PATCH's read-your-writes follow in a worker)."""
    from propsync.config import Settings
    from propsync.store.read_model import ReadModel
    from propsync.store.warehouse import Warehouse

    configure_logging(log_level)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_event.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    _watch_parent(parent, stop)
    settings = Settings.model_validate_json(settings_json)
    warehouse = Warehouse(settings.warehouse)
    model = ReadModel(warehouse, memory_limit=settings.duckdb_memory_limit)
    followed = 0  # the version the last follow reached
    maintaining = False  # the last follow took a maintenance step: another may be due
    with model.follower_presence():
        while not stop.is_set() and not stop_event.is_set():
            if published.wait(0.0 if maintaining else 0.5):
                published.clear()
            elif not maintaining and warehouse.published_version() <= followed:
                continue
            if stop_event.is_set() or not model.exists():  # being built by the server
                continue
            try:
                result = model.follow(lock_timeout=0.0, build=False, maintain=True)
            except Exception:
                log.exception("following the read model failed; trying again in 0.5 s")
                maintaining = False
                continue
            maintaining = result is not None and bool(result.maintenance)
            if result is not None and not result.reason:
                followed = result.version


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Set ``stop`` once this process is orphaned (a parent killed with -9 cannot stop it)."""

    def watch() -> None:
        while not stop.wait(0.5):
            if os.getppid() != parent:
                log.warning("the parent process %d is gone: %s stops", parent, _process_name())
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _process_name() -> str:
    import multiprocessing

    return multiprocessing.current_process().name


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_requested(signum: int, frame: Any) -> None:
    raise _Stopped(signum)


def cmd_apply(args: argparse.Namespace) -> int:
    from propsync.api.config import load_config
    from propsync.journal import apply_journal, journal_status
    from propsync.store.warehouse import Warehouse

    configure_logging(args.log_level)
    _, settings = load_config(args.config, warehouse=args.warehouse)
    warehouse = Warehouse(settings.warehouse)
    applied = apply_journal(warehouse, settings, publish=not args.no_publish)
    status = journal_status(warehouse.root)
    summary = {
        "commands_applied": applied,
        "published_version": warehouse.published_version(),
        "journal_segments": status.segments,
        "unapplied_bytes": status.unapplied_bytes,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"applied {applied:,} journaled commands; published version "
            f"{summary['published_version']}; {status.segments} journal segment(s) left"
        )
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``serve`` and ``apply``."""
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the HTTP service (tracking API, customer API, profile page)",
        description="Run the HTTP service. Tracking calls are journaled durably before they are "
        "answered; the journal is applied in the background every few seconds (--no-apply leaves "
        "that to `propsync apply` or the tracking_ingest DAG). OpenAPI docs at /docs.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--config", help="TOML config file (default: $PROPSYNC_CONFIG)")
    p.add_argument(
        "--no-apply", action="store_true", help="only journal; do not apply in the background"
    )
    p.add_argument(
        "--apply-interval",
        type=float,
        help="seconds between the starts of background applies (default 0.25)",
    )
    p.add_argument(
        "--publish-interval",
        type=float,
        help="minimum seconds between background publishes (default: as long as the last "
        "publish took; 0: after every apply)",
    )
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "apply",
        parents=[common],
        help="apply the tracking journal once (what `serve` does in the background)",
    )
    p.add_argument("--config", help="TOML config file (default: $PROPSYNC_CONFIG)")
    p.add_argument(
        "--no-publish", action="store_true", help="commit only; `propsync publish` later"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log level",
    )
    p.set_defaults(func=cmd_apply)
