"""The purger: what the service must forget, and when (README « Exploitation », for the CNIL).

`resorption purger` runs it (daily, from cron or a systemd timer); each part's retention is a
setting (settings.Retention). It runs as the owner of the schema (DATABASE_URL), each part
in its own transaction, through the functions of sql/220_operations.sql:

- expired web sessions, and sign-in counters whose failures are forgotten (the throttle);
- finished jobs of the processes, with their results (a JSON result in the row, a file in
  parts beside it: sql/105_job_files.sql deletes them with their job);
- the audit log's rows older than its retention;
- the owner name of private sites closed for longer than its retention, erased from the site
  and from every past version of it (the history forgets it too);
- the changes of the sites' counts per département, folded into one row each (no retention:
  what the triggers appended since the last run).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from resorption import statements
from resorption.settings import Retention

SQL = statements.load("purge")


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows each part removed (or, for owners, anonymised)."""

    web_sessions: int
    sign_in_counters: int
    jobs: int
    audit: int
    owners: int
    site_counts: int
    collection_changes: int


def purge(database_url: str, retention: Retention) -> Purged:
    """Run every part, each committed on its own (a failure leaves the parts before it done)."""
    counts = {}
    parts = (
        ("web_sessions", SQL.web_sessions, retention.sessions_days),
        ("sign_in_counters", SQL.sign_in_counters, retention.sessions_days),
        ("jobs", SQL.jobs, retention.jobs_days),
        ("audit", SQL.audit, retention.audit_days),
        ("owners", SQL.owners, retention.owner_months),
    )
    with psycopg.connect(database_url, application_name="resorption-purger") as conn:
        for name, statement, value in parts:
            with conn.transaction():
                counts[name] = conn.execute(statement, (value,)).fetchone()[0]
        for name, statement in (
            ("site_counts", SQL.site_counts),
            ("collection_changes", SQL.collection_changes),
        ):
            with conn.transaction():
                counts[name] = conn.execute(statement).fetchone()[0]
    return Purged(**counts)
