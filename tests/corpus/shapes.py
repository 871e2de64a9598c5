"""What the case corpora share: nested JSON of a given depth, and the stored state by customer."""

from __future__ import annotations

from typing import Any

from propsync.store.warehouse import Warehouse
from tests.helpers import published_state

# Customers by their registered id: {property: (value, update time in whole seconds)}.
State = dict[str, dict[str, tuple[Any, int]]]


def deep(depth: int, leaf: str = "1") -> str:
    """A JSON array text nested ``depth`` levels: deep(2) == "[[1]]"."""
    return "[" * depth + leaf + "]" * depth


def nested(depth: int) -> Any:
    """The Python value of ``deep(depth)``."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def stored(warehouse: Warehouse) -> State:
    """Customers by their registered id: {property: (value, update time in whole seconds)}."""
    state: State = {}
    for ids, props in published_state(warehouse).items():
        (registered,) = [v for t, v in ids if t == "registered"]
        state[registered] = {p: (v, ts // 1_000_000) for p, (v, ts) in props.items()}
    return state
