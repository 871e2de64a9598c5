"""Reading customers from the latest published version (never the writer's database).

Every statement (``sql/read/``) filters one table by one equality; published versions carry no
indexes, so each scans (the CLI, analysts). The HTTP service reads point lookups from its SQLite
read model instead (``store/read_model.py``, ``sql/read_model/``), which returns the same
``Customer`` (tested against ``get_customer``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from propsync import sql
from propsync.errors import UnknownCustomer
from propsync.instants import format_timestamp


@dataclass(frozen=True)
class CustomerRef:
    """``ID_TYPE:ID_VALUE`` (split at the first colon) or an internal id (which has no colon)."""

    id_type: str | None
    value: str

    @classmethod
    def parse(cls, text: str) -> CustomerRef:
        id_type, sep, id_value = text.partition(":")
        if sep:
            return cls(id_type, id_value)
        return cls(None, text)

    def __str__(self) -> str:
        return self.value if self.id_type is None else f"{self.id_type}:{self.value}"


@dataclass(frozen=True)
class Property:
    name: str
    value: str  # canonical JSON text
    update_ts: int | None  # microseconds; None for legacy


@dataclass(frozen=True)
class Customer:
    customer_id: str
    ids: dict[str, list[str]]
    properties: list[Property]


def resolve(con: duckdb.DuckDBPyConnection, ref: CustomerRef) -> str | None:
    if ref.id_type is None:
        rows = con.execute(sql.load("read/resolve_internal_id"), {"ref": ref.value}).fetchall()
    else:
        rows = con.execute(
            sql.load("read/resolve_external_id"), {"id_type": ref.id_type, "id_value": ref.value}
        ).fetchall()
    return str(rows[0][0]) if rows else None


def get_customer(con: duckdb.DuckDBPyConnection, ref: CustomerRef) -> Customer:
    customer_id = resolve(con, ref)
    if customer_id is None:
        raise UnknownCustomer(f"no customer {str(ref)!r}", customer=str(ref))
    ids: dict[str, list[str]] = {}
    for id_type, id_value in con.execute(
        sql.load("read/customer_ids"), {"customer_id": customer_id}
    ).fetchall():
        ids.setdefault(id_type, []).append(id_value)
    props = [
        Property(name, value, ts)
        for name, value, ts in con.execute(
            sql.load("read/customer_properties"), {"customer_id": customer_id}
        ).fetchall()
    ]
    return Customer(customer_id, ids, props)


def render_customer(customer: Customer, include_timestamps: bool) -> str:
    """The specification's GET body, exactly; ``ids`` and ``customer_id`` follow ``properties``.

    Stored values are embedded as their canonical JSON text and timestamps as exact decimals, so
    nothing passes through a float.
    """
    items = []
    for p in customer.properties:
        key = json.dumps(p.name, ensure_ascii=False)
        if include_timestamps:
            last = "-1" if p.update_ts is None else format_timestamp(p.update_ts)
            items.append(f'{key}: {{"value": {p.value}, "last_update": {last}}}')
        else:
            items.append(f"{key}: {p.value}")
    ids = json.dumps(customer.ids, ensure_ascii=False, sort_keys=True)
    customer_id = json.dumps(customer.customer_id)
    return f'{{"properties": {{{", ".join(items)}}}, "ids": {ids}, "customer_id": {customer_id}}}'
