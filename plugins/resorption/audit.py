"""The audit log: who read sensitive fields or wrote data, when, what and from where.

Rows are written by the database function `resorption.audit`, in a transaction of
their own (reads run in read-only transactions), with the principal's settings so
that the database records who acted.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from psycopg.types.json import Jsonb

from resorption import settings as app_settings
from resorption.database import transaction
from resorption.identity import Principal
from resorption.policy import current_policy


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


def record(
    principal: Principal,
    action: str,
    collection: str,
    item_id: str | None = None,
    groups: frozenset[str] | set[str] = frozenset(),
    detail: dict | None = None,
) -> None:
    """Write one audit row for `principal`."""
    info = _request.get()
    policy = current_policy()
    settings = app_settings.current()
    with transaction(settings, context=policy.db_settings(principal), read_only=False) as conn:
        conn.execute(
            "SELECT resorption.audit(%s, %s, %s, %s, %s, %s, %s, %s)",
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
