"""Accounts people get and manage themselves, and the e-mails that keep them informed.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02

Everything of `sql/200_mail_outbox.sql` (the mail outbox) and `sql/205_accounts_lifecycle.sql`
(access requests, one-time links, charter, subscriptions, and the SECURITY DEFINER functions of
the account pages) is new: an existing database gets both files, once. A new database has them
from the baseline already (it applies every file of `sql/`), and this revision then leaves it as
it is. The privileges follow from `resorption db migrate` (privileges.APP_FUNCTIONS).
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql, run_sql_files

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


COLUMNS = """
ALTER TABLE resorption.users
    ADD COLUMN IF NOT EXISTS charter_version text,
    ADD COLUMN IF NOT EXISTS charter_accepted_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_sign_in_at timestamptz,
    ADD COLUMN IF NOT EXISTS inactivity_warned_at timestamptz;
"""


def upgrade() -> None:
    run_sql(COLUMNS)  # the users' new columns (sql/050_identity.sql shows them in place)
    done = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.mail_outbox')").scalar()
    if done is None:
        run_sql_files([SQL_DIR / "200_mail_outbox.sql", SQL_DIR / "205_accounts_lifecycle.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
