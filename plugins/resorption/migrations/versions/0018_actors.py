"""Site actors and followers: the tables, their row-level security, the directory lookup.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

Everything of `sql/160_actors.sql` is new: an existing database gets the whole file, once. A
new database has it from the baseline already (it applies every file of `sql/`), and this
revision then leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql_files
from resorption.migrations.views import replace_function

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    done = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.site_actors')").scalar()
    if done is None:
        # the file's read policies call it (revision 0042)
        replace_function(SQL_DIR / "030_sites.sql", "resorption.site_readable")
        run_sql_files([SQL_DIR / "160_actors.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
