"""Open data served from a daily snapshot of its figures (sql/070_opendata.sql).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-03

The published layers computed their figures from every site at each request: about 8 s of
database time at 1,000,000 sites, which anyone could ask for without signing in. The figures
are now stored once a day (`resorption.refresh_opendata`, run by the owner) in
`opendata_snapshot`, which the layers read; this revision computes the first snapshot.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import definition, replace_view

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

FILE = SQL_DIR / "070_opendata.sql"


def upgrade() -> None:
    exists = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.opendata_snapshot')").scalar()
    if exists is None:  # a new database: the baseline made it
        run_sql(definition(FILE, "CREATE TABLE resorption.opendata_snapshot "))
    function = definition(FILE, "CREATE FUNCTION resorption.refresh_opendata()")
    run_sql(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    run_sql(definition(FILE, "REVOKE ALL ON FUNCTION resorption.refresh_opendata()"))
    replace_view(FILE, "resorption.opendata_departements")
    replace_view(FILE, "resorption.opendata_regions")
    run_sql("SELECT resorption.refresh_opendata()")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
