"""The files of jobs outside their row, in parts (sql/105_job_files.sql).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02

An existing database gets the table once, and the files its finished jobs kept in their row
(`output` of a job whose media type is not JSON) move there as one part each: a job's file is
then read one way only. A new database has the table from the baseline already (it applies
every file of `sql/`), and this revision then leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql, run_sql_files

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

# Files kept in their job's row until now, moved as one part each.
MOVE_FILES = """
INSERT INTO resorption_jobs.job_files (job_id, part, data)
SELECT identifier, 0, output FROM resorption_jobs.jobs
WHERE output IS NOT NULL AND mimetype IS NOT NULL AND mimetype NOT LIKE 'application/json%';
UPDATE resorption_jobs.jobs SET output = NULL
WHERE output IS NOT NULL AND mimetype IS NOT NULL AND mimetype NOT LIKE 'application/json%';
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT to_regclass('resorption_jobs.job_files')").scalar() is None:
        run_sql_files([SQL_DIR / "105_job_files.sql"])
        run_sql(MOVE_FILES)


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
