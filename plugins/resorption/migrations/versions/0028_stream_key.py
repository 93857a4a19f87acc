"""The key that seals the positions of the Server-Sent Events (sql/215_stream_key.sql).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-02

A new database has it from the baseline already (it applies every file of `sql/`), and this
revision then leaves it, and its key, as they are.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql_files

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.stream_key')").scalar() is None:
        run_sql_files([SQL_DIR / "215_stream_key.sql"])


def downgrade() -> None:
    raise NotImplementedError("Pas de retour en arrière : restaurez une sauvegarde.")
