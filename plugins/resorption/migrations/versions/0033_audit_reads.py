"""Audit rows of reads written in batches (sql/230_audit_reads.sql).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-02

A new database has the function from the baseline already (it applies every file of `sql/`),
and this revision then leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql_files

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    found = op.get_bind().exec_driver_sql("SELECT to_regprocedure('resorption.audit_reads(jsonb)')").scalar()
    if found is None:
        run_sql_files([SQL_DIR / "230_audit_reads.sql"])


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
