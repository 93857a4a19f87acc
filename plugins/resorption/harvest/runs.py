"""One harvest run of one source, and the record of every run.

`harvest()` pages through the source, applies each feature (`apply.Applier`), writes
the row-level report as it goes and the counts at the end into `resorption.harvest_runs`.
It runs as the database owner (the command line's DATABASE_URL): harvested sites are
written by the system, their audit columns and history naming `moissonnage:<source>`.
An advisory lock keeps two harvests of one source (the scheduler and a manual run)
from interleaving.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.console import Console

from resorption import statements
from resorption.catalog import Collection
from resorption.errors import Conflict, ResorptionError
from resorption.harvest.apply import Applier, Outcome
from resorption.harvest.remote import pages
from resorption.harvest.sources import Source
from resorption.progress import progress_bars

SQL = statements.load("harvest_runs")

# Outcome → column of harvest_runs (finish_run in sql/statements/harvest_runs.sql names each).
COUNTS = {
    "created": "created",
    "updated": "updated",
    "unchanged": "unchanged",
    "conflict": "conflicts",
    "rejected": "rejected",
    "outside": "outside",
    "missing": "missing",
    "deleted_locally": "deleted_locally",
}
OUTCOME_LABELS = {
    "created": "créé",
    "updated": "mis à jour",
    "unchanged": "inchangé",
    "conflict": "conflit",
    "rejected": "rejeté",
    "outside": "hors département",
    "missing": "absent de la source",
    "deleted_locally": "supprimé ici",
}
STATUS_LABELS = {"running": "en cours", "succeeded": "réussi", "failed": "échec"}


@dataclass(slots=True)
class RunReport:
    """What one run did."""

    id: int
    source: str
    simulation: bool
    since: datetime | None
    status: str = "running"
    message: str | None = None
    pages: int = 0
    fetched: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """The counts in French, e.g. « 3 créés, 1 conflit »."""
        parts = [f"{self.counts[o]} {OUTCOME_LABELS[o]}" for o in COUNTS if self.counts[o]]
        return ", ".join(parts) or "aucun élément"


def _lock_key(source: Source) -> str:
    return f"resorption.harvest:{source.name}"


def last_success(conn: psycopg.Connection, source: str) -> datetime | None:
    """When the last successful real (not simulated) run of `source` started."""
    row = conn.execute(SQL.last_success, (source,)).fetchone()
    return row[0]


def harvest(
    database_url: str,
    source: Source,
    sites: Collection,
    simulation: bool = False,
    console: Console | None = None,
    full: bool = False,
    overwrite: bool = False,
) -> RunReport:
    """Harvest `source` into the sites (as the owner of `database_url`).

    `full` reads everything even for an incremental source; `overwrite` applies the source's
    version of the sites in conflict.
    """
    with psycopg.connect(database_url, autocommit=True, application_name="resorption-moissonnage") as conn:
        if not conn.execute(SQL.try_lock_source, (_lock_key(source),)).fetchone()[0]:
            raise Conflict(
                f"Un moissonnage de la source « {source.name} » est déjà en cours : attendez sa fin "
                "(resorption moissonnages)."
            )
        try:
            return _run(conn, source, sites, simulation, console, full, overwrite)
        finally:
            conn.execute(SQL.unlock_source, (_lock_key(source),))


def _run(
    conn: psycopg.Connection,
    source: Source,
    sites: Collection,
    simulation: bool,
    console: Console | None,
    full: bool,
    overwrite: bool,
) -> RunReport:
    since = None
    if source.incremental is not None and not full:
        last = last_success(conn, source.name)
        since = last - source.incremental.margin if last else None
    # We hold the source's lock: a run still "running" was killed before its end.
    conn.execute(SQL.fail_interrupted_runs, (source.name,))
    (run_id,) = conn.execute(SQL.start_run, (source.name, simulation, since)).fetchone()
    report = RunReport(run_id, source.name, simulation, since)
    applier = Applier(conn, source, sites, simulation, overwrite)
    seen: set[str] = set()
    try:
        with progress_bars(console) as progress:
            task = progress.add_task(f"Moissonnage « {source.name} »", total=None)
            for page in pages(source, since):
                report.pages = page.number
                if page.number == 1 and page.matched is not None:
                    progress.update(task, total=page.matched)
                outcomes = []
                for feature in page.features:
                    outcome = applier.apply(feature)
                    outcomes.append(outcome)
                    if outcome.remote_id is not None:
                        seen.add(outcome.remote_id)
                    progress.advance(task)
                report.fetched += len(page.features)
                _record(conn, report, outcomes)
        # Only a complete, unfiltered-by-date reading tells what the source no longer has.
        if since is None:
            _record(conn, report, applier.mark_missing(seen))
        report.status = "succeeded"
    except ResorptionError as exc:
        report.status, report.message = "failed", exc.message
    except BaseException:
        report.status, report.message = "failed", "Moissonnage interrompu (erreur interne ou arrêt demandé)."
        _finish(conn, report)
        raise
    _finish(conn, report)
    return report


def _record(conn: psycopg.Connection, report: RunReport, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        report.counts[outcome.outcome] += 1
    with conn.cursor() as cur:
        cur.executemany(
            SQL.record_row,
            [(report.id, o.remote_id, o.site_id, o.outcome, o.reason) for o in outcomes],
        )


def _finish(conn: psycopg.Connection, report: RunReport) -> None:
    counts = {column: report.counts[outcome] for outcome, column in COUNTS.items()}
    conn.execute(
        SQL.finish_run,
        {
            **counts,
            "status": report.status,
            "message": report.message,
            "pages": report.pages,
            "fetched": report.fetched,
            "id": report.id,
        },
    )


def recent_runs(database_url: str, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs, newest first, as dicts of their columns."""
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            SQL.recent_runs,
            {"source": source, "limit": limit},
        ).fetchall()


def run_rows(database_url: str, run_id: int, include_unchanged: bool = False) -> list[dict[str, Any]]:
    """The row-level report of one run (without the unchanged features unless asked)."""
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            SQL.run_rows,
            (run_id, include_unchanged),
        ).fetchall()


def last_starts(database_url: str) -> Mapping[str, datetime]:
    """When each source's last real run started (whatever its result), for the scheduler."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(SQL.last_starts).fetchall()
    return dict(rows)
