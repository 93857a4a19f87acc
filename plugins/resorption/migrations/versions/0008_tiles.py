"""Vector tiles: what invalidates a collection's tiles.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["120_tiles.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
