"""The open data's figures: computed once a day, not at each request (sql/070_opendata.sql).

The collections `stats_departements` and `stats_regions` read a stored snapshot of the figures,
which anyone may ask for without signing in; computing them reads every site (about 8 s of
database time at 1,000,000 sites). The snapshot is refreshed, as the owner of the tables
(DATABASE_URL: nobody else may run `resorption.refresh_opendata`):

- by `resorption donnees-ouvertes rafraichir`, by hand or from cron;
- by `resorption db setup` (and `db demo`), after the demonstration data, so that a fresh
  demonstration shows its figures;
- by the publisher's loop (`resorption publish`, already running for the real-time changes),
  which looks every minute whether the snapshot is older than today in Paris.

Until a refresh, a change to a site does not show in the open data; the figures say the day
they describe (`as_of`), so yesterday's snapshot is served, honestly dated, until today's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import psycopg

from resorption import statements

SQL = statements.load("open_figures")
LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a refresh stored: its day, and per level its rows and those with a hidden figure."""

    as_of: dt.date
    rows: dict[str, int]
    hidden: dict[str, int]


def refresh(conn: psycopg.Connection[Any]) -> dt.date:
    """Compute the figures again and store them (in the connection's transaction); their day."""
    row = conn.execute(SQL.refresh).fetchone()
    assert row is not None
    return row[0]


def refresh_database(database_url: str) -> Snapshot:
    """Refresh in a transaction of its own, then describe the stored snapshot."""
    with psycopg.connect(database_url, application_name="resorption-opendata") as conn:
        with conn.transaction():
            day = refresh(conn)
        rows = conn.execute(SQL.counts).fetchall()
    return Snapshot(day, {r[0]: r[2] for r in rows}, {r[0]: r[3] for r in rows})


def refresh_if_stale(conn: psycopg.Connection[Any]) -> dt.date | None:
    """Refresh when the snapshot is missing or older than today in Paris (the daily check of a
    long-running worker, on its autocommit connection); the new day, or None when it was
    fresh. A failure is logged, not raised: the open data stays on its last day meanwhile."""
    try:
        stale = conn.execute(SQL.stale).fetchone()
        if not stale or not stale[0]:
            return None
        day = refresh(conn)
    except psycopg.Error as exc:
        LOG.warning("données ouvertes : chiffres non recalculés (%s)", exc)
        return None
    LOG.info("données ouvertes : chiffres recalculés au %s", day.isoformat())
    return day
