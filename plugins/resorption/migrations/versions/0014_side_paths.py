"""Side paths read as the caller: changelog under RLS, tile versions per scope, references per département.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from resorption.migrate import run_sql_files

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["180_side_paths.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
