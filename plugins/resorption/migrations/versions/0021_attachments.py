"""Attachments of sites and journal messages: the table, its write guard, its row-level security.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02

Everything of `sql/180_attachments.sql` is new: an existing database gets the whole file,
once. A new database has it from the baseline already (it applies every file of `sql/`), and
this revision then leaves it as it is. The privileges follow from `resorption db migrate`
(privileges.py): readers read the table, writers insert and delete, row-level security decides.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql_files

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    done = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.attachments')").scalar()
    if done is None:
        run_sql_files([SQL_DIR / "180_attachments.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
