"""Exceptions with structured fields; each says whether retrying can help."""

from __future__ import annotations

from typing import Any


class PropsyncError(Exception):
    """Base class. ``retryable`` tells schedulers whether running the same call again may succeed."""

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.fields}


class UsageError(PropsyncError):
    """Bad command-line usage or argument; nothing was read or written."""

    exit_code = 2


class MappingError(UsageError):
    """The mapping model is invalid. ``field`` and ``value`` name the offending part."""

    def __init__(self, message: str, *, field: str, value: Any = None) -> None:
        super().__init__(message, field=field, value=value)
        self.field = field
        self.value = value


class SourceError(UsageError):
    """The source file cannot be read or lacks a column the mapping needs."""


class PayloadInvalid(PropsyncError):
    """A task's input, an upstream task's XCom, does not fit its model: a DAG wired wrong, or a run
    begun by another version of the tasks. Retrying the same input fails again."""


class BatchRejected(PropsyncError):
    """The batch failed its checks: nothing was published. Retrying the same data fails again."""

    exit_code = 1


class AuditFailed(BatchRejected):
    """The merged result failed its post-merge audit; the transaction was rolled back."""


class WarehouseLocked(PropsyncError):
    """Another process holds the warehouse write lock. Retrying later can help."""

    retryable = True


class UnknownCustomer(PropsyncError):
    """No customer matches the given reference."""

    exit_code = 3


class NotPublished(PropsyncError):
    """The warehouse has no published version yet."""

    exit_code = 3


class DatabaseInUse(PropsyncError):
    """Another process holds DuckDB's lock on a warehouse file: it has a published version open
    read-write (e.g. a ``duckdb`` shell without ``-readonly``), or ``work.duckdb`` open at all.
    Retrying once it is closed can help."""

    retryable = True
