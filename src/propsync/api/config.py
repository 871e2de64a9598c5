"""Typed configuration of the HTTP service.

Sources, strongest first: command-line options, ``PROPSYNC_*`` environment variables, the TOML
config file (``--config`` or ``$PROPSYNC_CONFIG``), defaults. A config file looks like::

    warehouse = "/var/lib/propsync"
    project_tokens = ["00000000-0000-0000-0000-000000000000"]
    api_keys = ["ui:correct-horse-battery-staple"]   # or a table: [api_keys] ui = "..."
    max_commands = 50
    max_body_bytes = 1048576
    apply_interval_seconds = 0.25
    publish_interval_seconds = 30.0   # optional; default: automatic (see ServiceConfig)
    duckdb_memory_limit = "1GB"       # and every core setting of propsync.config.Settings

Environment variables: ``PROPSYNC_PROJECT_TOKENS`` (comma-separated), ``PROPSYNC_API_KEYS``
(comma-separated ``id:secret`` pairs), ``PROPSYNC_MAX_COMMANDS``, ``PROPSYNC_MAX_BODY_BYTES``,
``PROPSYNC_APPLY_INTERVAL``, ``PROPSYNC_PUBLISH_INTERVAL`` (a number or ``auto``),
``PROPSYNC_EDIT_LOCK_TIMEOUT``, ``PROPSYNC_EDIT_VISIBLE_TIMEOUT``, ``PROPSYNC_READ_MODEL_POLL``,
``PROPSYNC_MAX_UNAPPLIED_BYTES``, ``PROPSYNC_RETRY_AFTER``;
``PROPSYNC_WAREHOUSE`` and the other core variables are read by
:class:`propsync.config.Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator

from propsync.config import Settings, SettingsModel, read_config_file
from propsync.tracking import MAX_COMMANDS

DEFAULT_MAX_COMMANDS = MAX_COMMANDS  # the one default for HTTP and `propsync track`
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

_ENV = {
    "project_tokens": "PROPSYNC_PROJECT_TOKENS",
    "api_keys": "PROPSYNC_API_KEYS",
    "max_commands": "PROPSYNC_MAX_COMMANDS",
    "max_body_bytes": "PROPSYNC_MAX_BODY_BYTES",
    "apply_interval_seconds": "PROPSYNC_APPLY_INTERVAL",
    "publish_interval_seconds": "PROPSYNC_PUBLISH_INTERVAL",
    "edit_lock_timeout_seconds": "PROPSYNC_EDIT_LOCK_TIMEOUT",
    "edit_visible_timeout_seconds": "PROPSYNC_EDIT_VISIBLE_TIMEOUT",
    "read_model_poll_seconds": "PROPSYNC_READ_MODEL_POLL",
    "max_unapplied_bytes": "PROPSYNC_MAX_UNAPPLIED_BYTES",
    "retry_after_seconds": "PROPSYNC_RETRY_AFTER",
    "fast_paths": "PROPSYNC_FAST_PATHS",
}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class ServiceConfig(SettingsModel):
    """What the HTTP service needs beyond the core settings."""

    ENV: ClassVar[Mapping[str, str]] = _ENV
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "apply_interval_seconds": "--apply-interval",
        "publish_interval_seconds": "--publish-interval",
    }
    SECRET: ClassVar[frozenset[str]] = frozenset({"api_keys", "project_tokens"})

    project_tokens: frozenset[str] = frozenset()
    # key id -> secret; HTTP Basic ``key_id:secret`` on the data routes and the profile page.
    api_keys: dict[str, str] = Field(default_factory=dict)
    max_commands: int = Field(default=DEFAULT_MAX_COMMANDS, ge=1, le=10_000)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, description="bytes")
    # Seconds between background applies of the journal (``propsync serve`` without --no-apply).
    apply_interval_seconds: float = Field(default=0.25, gt=0, description="seconds")
    # Minimum seconds between two publishes of the background applier (a publish copies the
    # warehouse). None ("auto"): as long as its previous publish took
    # (propsync.journal.apply_forever); 0: publish after every apply.
    publish_interval_seconds: float | None = Field(default=None, ge=0, description="seconds")
    apply_enabled: bool = True
    # How long a PATCH waits for the warehouse write lock before journaling the edit instead.
    edit_lock_timeout_seconds: float = Field(default=2.0, ge=0, description="seconds")
    # How long an applied edit waits for this server to serve the version it published (its run
    # applied to the read model; longer only while the model is built or another process holds
    # the follower's lock) before it answers anyway (logged): read-your-writes.
    edit_visible_timeout_seconds: float = Field(default=60.0, ge=0, description="seconds")
    # Seconds between two looks of the read model's follower at the published version (besides
    # the look every read takes, and the follow of an edit made in this process).
    read_model_poll_seconds: float = Field(default=1.0, gt=0, description="seconds")
    # GET /api/customers/... and POST /track/v2/projects/.../batch answered by small ASGI layers
    # in front of FastAPI's routing (propsync.api.fastpath); false: by the FastAPI routes (the
    # same answers, slower).
    fast_paths: bool = True
    # Journal segments are rolled at this size; rolled and fully applied segments are removed.
    journal_segment_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    # Backpressure: while the journal holds more than this many bytes not applied yet (the
    # applier fell behind, or is off), tracking calls are answered 429 with Retry-After instead
    # of being journaled; 0 turns the bound off. 1 GiB is about 8M commands of 3 properties: at
    # 50,000 commands/s applied, under three minutes of backlog (docs/api.md).
    max_unapplied_bytes: int = Field(default=1024**3, ge=0, description="bytes")
    # The Retry-After of those answers.
    retry_after_seconds: int = Field(default=2, ge=1, le=3600, description="seconds")

    @field_validator("project_tokens", mode="before")
    @classmethod
    def _tokens(cls, v: object) -> object:
        if isinstance(v, str):
            return frozenset(_split(v))
        return v

    @field_validator("publish_interval_seconds", mode="before")
    @classmethod
    def _auto(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() in ("", "auto"):
            return None
        return v

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, v: object) -> object:
        if isinstance(v, str):
            v = _split(v)
        if isinstance(v, (list, tuple)):
            keys: dict[str, str] = {}
            for pair in v:
                if not isinstance(pair, str):
                    raise ValueError("api_keys entries must be 'id:secret' strings")
                key_id, sep, secret = pair.partition(":")
                if not sep or not key_id or not secret:
                    raise ValueError(f"api key {key_id or pair[:4]!r}... must be 'id:secret'")
                if key_id in keys:
                    raise ValueError(f"api key id {key_id!r} is given twice")
                keys[key_id] = secret
            return keys
        return v

    @field_validator("api_keys")
    @classmethod
    def _key_ids(cls, v: dict[str, str]) -> dict[str, str]:
        for key_id, secret in v.items():
            if not key_id or ":" in key_id or not secret:
                raise ValueError("api key ids must be non-empty without ':' and secrets non-empty")
        return v

    def public_summary(self) -> dict[str, Any]:
        """What is safe to log: never the secrets."""
        return {
            "project_tokens": len(self.project_tokens),
            "api_keys": sorted(self.api_keys),
            "max_commands": self.max_commands,
            "max_body_bytes": self.max_body_bytes,
            "apply_enabled": self.apply_enabled,
            "apply_interval_seconds": self.apply_interval_seconds,
            "publish_interval_seconds": self.publish_interval_seconds,
            "max_unapplied_bytes": self.max_unapplied_bytes,
            "fast_paths": self.fast_paths,
        }


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    **overrides: object,
) -> tuple[ServiceConfig, Settings]:
    """Resolve the service config and the core settings: command line, then ``env`` (the
    process's), then the config file (``config_file`` or ``$PROPSYNC_CONFIG``; its keys are the
    fields of both models), then defaults. Raises UsageError naming each invalid value by its
    source (option, variable or config file key)."""
    env = os.environ if env is None else env
    path = config_file if config_file is not None else env.get("PROPSYNC_CONFIG") or None
    file_values = read_config_file(path)
    core = {k: file_values.pop(k) for k in list(file_values) if k in Settings.model_fields}
    name = str(path)
    service = ServiceConfig.resolve(env=env, file=file_values, file_name=name, options=overrides)
    settings = Settings.resolve(
        env=env, file=core, file_name=name, options={"warehouse": warehouse}
    )
    return service, settings


def max_commands(env: Mapping[str, str] | None = None) -> int:
    """The per-batch command limit ``propsync track`` shares with the HTTP service:
    ``PROPSYNC_MAX_COMMANDS`` (validated the same way), else the default 50."""
    env = os.environ if env is None else env
    var = _ENV["max_commands"]
    return ServiceConfig.resolve(env={var: env.get(var, "")}).max_commands
