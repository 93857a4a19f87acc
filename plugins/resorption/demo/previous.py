"""The previous demonstration data, removed before a run; any other row stays."""

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from resorption import statements
from resorption.demo.words import PREFIX

SQL = statements.load("demo_previous")


def delete_previous(conn: psycopg.Connection) -> None:
    """Remove earlier demonstration sites and actions; any other row stays."""
    like = PREFIX + "%"
    others = conn.execute(SQL.count_other_rows, {"p": like}).fetchone()
    if others and others[0] == 0:
        # Only demonstration data: truncating is much faster than deleting a
        # million rows, and restarting the identities gives the same ids again.
        # A table of someone else's referencing these refuses the truncation.
        try:
            with conn.transaction():
                conn.execute(SQL.truncate_demo_tables)
            return
        except pg_errors.FeatureNotSupported:
            pass
    conn.execute(SQL.delete_demo_actions, (like,))
    conn.execute(SQL.delete_demo_sites, (like,))
    # Their versions too (the generator runs with the history triggers paused).
    conn.execute(SQL.delete_demo_action_versions, (like,))
    conn.execute(SQL.delete_demo_result_versions)
    conn.execute(SQL.delete_demo_site_versions, (like,))
    for table in ("sites", "actions"):
        # Emptied tables number from 1 again, as after a truncation.
        conn.execute(
            SQL.restart_identity_if_empty.format(sql.Identifier("resorption", table)),
            (f"resorption.{table}",),
        )
