"""Access control: users, tokens, audit log, row-level security.

Column privileges and database roles depend on the catalog and the access policy
(configuration, not schema): `resorption.privileges.sync_privileges` applies them
after every migration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from resorption.migrate import run_sql_files

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["050_identity.sql", "060_row_security.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
