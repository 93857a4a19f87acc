"""The audit log: who read sensitive fields or wrote data, when, what and from where.

Rows are written by the database function `resorption.audit` (`write`), in a transaction
of their own that `Caller.audit` opens with the caller's settings, so that the database
records who acted; the app notes where each request came from (`set_request`).
"""

from __future__ import annotations

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


def write(
    conn: psycopg.Connection,
    action: str,
    collection: str,
    item_id: str | None,
    groups: frozenset[str] | set[str],
    detail: dict[str, Any] | None,
) -> None:
    """Write one audit row in the open transaction (whose settings name the user)."""
    info = _request.get()
    conn.execute(
        SQL.write,
        (
            action,
            collection,
            item_id,
            sorted(groups),
            info.method if info else None,
            info.path if info else None,
            info.client if info else None,
            Jsonb(detail) if detail else None,
        ),
    )
