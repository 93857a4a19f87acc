"""The previous demonstration data, removed before a run; any other row stays."""

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from resorption.demo.words import PREFIX

DEMO_TABLES = (
    "actions_history",
    "sites_history",
    "action_indicators",
    "action_finances",
    "action_sites",
    "action_organisations",
    "action_departements",
    "actions",
    "site_reinstallation_origins",
    "site_closing_solutions",
    "sites",
)


def delete_previous(conn: psycopg.Connection) -> None:
    """Remove earlier demonstration sites and actions; any other row stays."""
    like = PREFIX + "%"
    others = conn.execute(
        "SELECT (SELECT count(*) FROM resorption.sites WHERE external_ref NOT LIKE %(p)s"
        "        OR external_ref IS NULL)"
        " + (SELECT count(*) FROM resorption.actions WHERE reference NOT LIKE %(p)s"
        "        OR reference IS NULL)"
        " + (SELECT count(*) FROM resorption.sites_history WHERE external_ref NOT LIKE %(p)s"
        "        OR external_ref IS NULL)"
        " + (SELECT count(*) FROM resorption.actions_history WHERE reference NOT LIKE %(p)s"
        "        OR reference IS NULL)",
        {"p": like},
    ).fetchone()
    if others and others[0] == 0:
        # Only demonstration data: truncating is much faster than deleting a
        # million rows, and restarting the identities gives the same ids again.
        # A table of someone else's referencing these refuses the truncation.
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
                        sql.SQL(", ").join(sql.Identifier("resorption", t) for t in DEMO_TABLES)
                    )
                )
            return
        except pg_errors.FeatureNotSupported:
            pass
    conn.execute("DELETE FROM resorption.actions WHERE reference LIKE %s", (like,))
    conn.execute("DELETE FROM resorption.sites WHERE external_ref LIKE %s", (like,))
    # Their versions too (the generator runs with the history triggers paused).
    conn.execute("DELETE FROM resorption.actions_history WHERE reference LIKE %s", (like,))
    conn.execute("DELETE FROM resorption.sites_history WHERE external_ref LIKE %s", (like,))
    for table in ("sites", "actions"):
        # Emptied tables number from 1 again, as after a truncation.
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({name}, 'id'), 1, false)"
                " WHERE NOT EXISTS (SELECT FROM {table})"
            ).format(name=sql.Literal(f"resorption.{table}"), table=sql.Identifier("resorption", table))
        )
