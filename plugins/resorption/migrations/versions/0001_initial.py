"""Initial data model: territories, organisations, sites and actions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from resorption.migrate import run_sql_files

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(
        [
            "001_schema.sql",
            "010_territories.sql",
            "020_organisations.sql",
            "030_sites.sql",
            "040_actions.sql",
        ]
    )


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
