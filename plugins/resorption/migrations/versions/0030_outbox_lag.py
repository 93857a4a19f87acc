"""The outbox's lag for the metrics (sql/225_outbox_lag.sql).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02

A new database has the function from the baseline already (it applies every file of `sql/`),
and this revision then leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql_files

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().exec_driver_sql("SELECT to_regprocedure('resorption.outbox_lag()')").scalar() is None:
        run_sql_files([SQL_DIR / "225_outbox_lag.sql"])


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
