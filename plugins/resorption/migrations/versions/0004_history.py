"""History and time travel: every version of sites and actions, kept by triggers.

`sql/080_history.sql` creates `sites_history` and `actions_history` (every column of
their live table, plus the validity range, the operation, who and what changed), the
triggers that alone write them, their row-level security, and the `site_changes`
changelog view. Their column privileges follow the live tables' (`privileges.py`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from resorption.migrate import run_sql_files

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["080_history.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
