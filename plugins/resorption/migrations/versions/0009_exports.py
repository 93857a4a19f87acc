"""Exports: files produced by the export processes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["130_exports.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
