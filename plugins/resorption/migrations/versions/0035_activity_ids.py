"""The versions keep their activity event id in a stored column (sql/190_activity.sql).

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-02

Under row-level security, a condition on an expression of the row is not leakproof, so
PostgreSQL never made the feed's id conditions (a `datetime` period, a keyset) index
conditions: a week of activity read every version of every site (7 s at 1,000,000 sites,
the weekly digests timed out). The id is now a column with its own index; the view reads it.
"""

from alembic import op

from resorption.migrate import SQL_DIR
from resorption.migrations.views import replace_view

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

SOURCES = {
    "sites_history": "s",
    "actions_history": "a",
    "action_indicators_history": "i",
    "action_finances_history": "f",
}


def upgrade() -> None:
    bind = op.get_bind()
    missing = [
        table
        for table in SOURCES
        if not bind.exec_driver_sql(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %(t)s::regclass AND attname = 'activity_id' "
            "AND NOT attisdropped",
            {"t": f"resorption.{table}"},
        ).scalar()
    ]
    if not missing:  # a new database: the baseline made them
        return
    for table in missing:
        letter = SOURCES[table]
        op.execute(
            f"ALTER TABLE resorption.{table} ADD COLUMN activity_id text GENERATED ALWAYS AS "
            f"(resorption.activity_key(lower(valid), '{letter}', version_id)) STORED"
        )
        op.execute(f"DROP INDEX IF EXISTS resorption.{table}_activity_idx")
        op.execute(f"CREATE INDEX {table}_activity_idx ON resorption.{table} (activity_id)")
    op.execute("DROP INDEX IF EXISTS resorption.sites_history_activity_kind_idx")
    op.execute(
        "CREATE INDEX sites_history_activity_kind_idx ON resorption.sites_history ("
        "resorption.site_event_kind(operation, changed_fields, status), activity_id)"
    )
    replace_view(SQL_DIR / "190_activity.sql", "resorption.activity")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
