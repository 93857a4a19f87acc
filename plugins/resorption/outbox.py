"""The outbox of events: reading it in order without ever skipping a committed event.

Triggers write one event per change in the same transaction (sql/210_outbox.sql). Readers go
through windows of transaction ids: a window [since, until) is opened when `until`, the oldest
transaction still running, has moved past the previous window's end; every transaction below
it has ended, so the window's events are all there and it never grows. Inside a window, events
go in id order. A reader's `Position` is its window and the last id it handled there: the
publisher stores it (`outbox_cursors`), an SSE client gets it back as Last-Event-ID.

Why not just "the last id seen": identity values are taken before commit, so a transaction in
flight may hold a smaller id than one already committed, and would be skipped when it commits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from resorption import statements

SQL = statements.load("outbox")
# The channel the triggers NOTIFY at commit (sql/210_outbox.sql).
CHANNEL = "resorption_outbox"
# The collections whose events subscribers see (`accounts` is the broker's business).
COLLECTIONS = ("sites", "actions", "site_comments", "action_comments")
# What a part of a site or an action is called in an event's fields (not columns).
PARTS = {"actors": "sites", "indicators": "actions", "finances": "actions"}
_TOKEN = re.compile(r"^(\d{1,20})-(\d{1,20})-(\d{1,20})$")


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader is: the window [since, until) of transaction ids and the last id handled."""

    since: int
    until: int
    last_id: int = 0

    @property
    def token(self) -> str:
        """The position as text (an SSE event's id, sent back as Last-Event-ID)."""
        return f"{self.since}-{self.until}-{self.last_id}"

    @classmethod
    def parse(cls, text: str | None) -> Position | None:
        """The position `token` wrote, or None for anything else."""
        found = _TOKEN.match((text or "").strip())
        if found is None:
            return None
        since, until, last_id = (int(g) for g in found.groups())
        return cls(since, until, last_id) if since <= until else None


@dataclass(frozen=True, slots=True)
class Event:
    """One change: ids and field names, never values."""

    id: int
    collection: str
    item_id: int
    operation: str
    fields: tuple[str, ...]
    departements: tuple[str, ...]
    open: bool
    parent_id: int | None
    version_id: int | None
    at: datetime
    position: Position  # the reader's position once this event is handled


def start(conn: psycopg.Connection[Any]) -> Position:
    """The position of a reader that wants the events committed from now on."""
    horizon = horizon_of(conn)
    return Position(horizon, horizon)


def horizon_of(conn: psycopg.Connection[Any]) -> int:
    """The oldest transaction still running: every one below it has ended."""
    row = conn.execute(SQL.horizon).fetchone()
    assert row is not None
    return int(row[0])


def read(
    conn: psycopg.Connection[Any], position: Position, limit: int = 500, *, accounts: bool = False
) -> tuple[list[Event], Position]:
    """The next events after `position` (at most `limit`) and the position after them.

    With `accounts` (the publisher, as the owner) the table is read directly, account events
    included; without (the web app, as its login role) through `outbox_page`.
    """
    events = _page(conn, position, limit, accounts)
    if events:
        return events, events[-1].position
    horizon = horizon_of(conn)
    if horizon <= position.until:
        return [], position
    opened = Position(position.until, horizon, 0)
    events = _page(conn, opened, limit, accounts)
    return events, (events[-1].position if events else opened)


def _page(conn: psycopg.Connection[Any], position: Position, limit: int, accounts: bool) -> list[Event]:
    statement = SQL.page_with_accounts if accounts else SQL.page
    rows = conn.execute(
        statement, (str(position.since), str(position.until), position.last_id, limit)
    ).fetchall()
    return [
        Event(
            id=r[0],
            collection=r[1],
            item_id=r[2],
            operation=r[3],
            fields=tuple(r[4]),
            departements=tuple(r[5]),
            open=r[6],
            parent_id=r[7],
            version_id=r[8],
            at=r[9],
            position=Position(position.since, position.until, r[0]),
        )
        for r in rows
    ]


# -- the owner's side: cursors and purge ---------------------------------------------------


@contextmanager
def owner_connection(database_url: str, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the owner of the tables (the publisher, the purge command)."""
    with psycopg.connect(database_url, autocommit=autocommit, application_name="resorption-outbox") as conn:
        yield conn


def load_cursor(conn: psycopg.Connection[Any], name: str) -> Position:
    """Where the reader `name` stopped; a new reader starts at the current horizon."""
    row = conn.execute(SQL.cursor, (name,)).fetchone()
    if row is not None:
        return Position(int(row[0]), int(row[1]), int(row[2]))
    return start(conn)


def save_cursor(conn: psycopg.Connection[Any], name: str, position: Position) -> None:
    """Record that `name` handled every event up to `position`."""
    conn.execute(SQL.save_cursor, (name, str(position.since), str(position.until), position.last_id))


@dataclass(frozen=True, slots=True)
class Purged:
    """What `purge` removed."""

    events: int
    kept_for: list[str]


def purge(database_url: str, older_than: timedelta) -> Purged:
    """Delete the events older than `older_than` that every known reader has handled."""
    with owner_connection(database_url) as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        readers = [r["name"] for r in conn.execute(SQL.cursors).fetchall()]
        row = conn.execute(SQL.purge, (older_than,)).fetchone()
    assert row is not None
    return Purged(events=row["deleted"], kept_for=readers)
