"""Sign-in throttling per account and per address; a success no longer clears the failures.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from resorption.migrate import run_sql_files

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["185_sign_in_throttle.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
