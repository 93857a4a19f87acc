"""Bounding-box searches use the spatial index under row-level security.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["170_spatial_index_under_rls.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
