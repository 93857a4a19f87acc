"""Performance: one principal_of per sign-in, token and session use noted once a minute,
indexes for départemental and past pages, an inlinable row-level policy for actions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["160_performance.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
