"""Processes: the job table of OGC API Processes, and who may write closing solutions.

The grants (the application's login role on the job table, the write roles on the
closing solutions) are `resorption.privileges.sync_privileges`' business, after every
migration.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from resorption.migrate import run_sql_files

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["100_processes.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
