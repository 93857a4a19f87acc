"""Editing: row-level security for writes, write guards (who wrote, who may close).

The write roles and their column privileges depend on the catalog and the access policy:
`resorption.privileges.sync_privileges` grants them after every migration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["090_editing.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
