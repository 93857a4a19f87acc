"""Journal of sites and actions: site_comments, action_comments and their history.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

Brings a database to the state of `sql/150_journal.sql` (new tables, type, functions,
triggers and policies, nothing changed elsewhere): on a database without the journal it runs
that file; on a new database, where the baseline already ran it, it does nothing.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    missing = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.site_comments') IS NULL").scalar()
    if missing:
        run_sql((SQL_DIR / "150_journal.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
