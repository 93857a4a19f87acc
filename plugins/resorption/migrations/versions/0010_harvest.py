"""Federation: harvest sources and the provenance of harvested features.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["140_harvest.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
