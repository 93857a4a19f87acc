"""The outbox of events (issue 14): the tables `outbox` and `outbox_cursors`, the triggers that
write an event in the same transaction as every change of sites, actions, journal messages,
actors, indicators and finances (and of accounts, for the broker's access lists), and the
functions readers use (`outbox_horizon`, `outbox_page`), as in sql/210_outbox.sql.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02

An existing database gets the file, once. A new database has it from the baseline already (it
applies every file of `sql/`), and this revision then leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql_files

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.outbox')").scalar() is None:
        run_sql_files([SQL_DIR / "210_outbox.sql"])


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
