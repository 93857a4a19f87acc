"""Imports: external references of sites imported from spreadsheets.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["150_imports.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
