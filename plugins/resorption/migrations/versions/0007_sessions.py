"""Web map sign-in: browser sessions (HttpOnly cookie, CSRF).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from resorption.migrate import run_sql_files

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["110_web_sessions.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
