"""The audit log: who read sensitive fields or wrote data, when, what and from where.

Rows are written by the database function `resorption.audit` (`write`), in a transaction
of their own that `Caller.audit` opens with the caller's settings, so that the database
records who acted; the app notes where each request came from (`set_request`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from resorption import statements

SQL = statements.load("audit")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Where an action came from."""

    method: str
    path: str
    client: str


# One row to write: action, collection, item id, sensitive groups, detail.
AuditRow = tuple[str, str, str | None, frozenset[str] | set[str], dict[str, Any] | None]

_request: ContextVar[RequestInfo | None] = ContextVar("resorption_request", default=None)


def set_request(info: RequestInfo) -> None:
    """Remember the running request for the audit log (set by the app)."""
    _request.set(info)


def current_request() -> RequestInfo | None:
    """The running request, if any."""
    return _request.get()


def write_reads(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    """Write audit rows of reads queued by a worker (read_audit.py), each naming its time and user."""
    conn.execute(SQL.write_reads, (Jsonb(rows),))


def _params(
    action: str,
    collection: str,
    item_id: str | None,
    groups: frozenset[str] | set[str],
    detail: dict[str, Any] | None,
) -> tuple[Any, ...]:
    info = _request.get()
    return (
        action,
        collection,
        item_id,
        sorted(groups),
        info.method if info else None,
        info.path if info else None,
        info.client if info else None,
        Jsonb(detail) if detail else None,
    )


def write_many(
    conn: psycopg.Connection,
    rows: Iterable[AuditRow],
) -> None:
    """Write audit rows (action, collection, item id, groups, detail) in the open transaction,
    pipelined."""
    with conn.cursor() as cursor:
        cursor.executemany(SQL.write, (_params(*row) for row in rows))


def write(
    conn: psycopg.Connection,
    action: str,
    collection: str,
    item_id: str | None,
    groups: frozenset[str] | set[str],
    detail: dict[str, Any] | None,
) -> None:
    """Write one audit row in the open transaction (whose settings name the user)."""
    conn.execute(SQL.write, _params(action, collection, item_id, groups, detail))
