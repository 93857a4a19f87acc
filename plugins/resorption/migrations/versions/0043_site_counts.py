"""How many sites each département has, kept by triggers (sql/030_sites.sql): the count of
the sites a caller reads with no other condition adds up at most 101 rows.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-03

A national `resulttype=hits` tested each of the sites against the read policy (an index-only
scan of 1,000,000 rows, at tipg's speed); now it sums `site_counts` under the same rule. The
table is filled from the sites as they are, in the revision's transaction; the triggers append
changes to it, the purger folds them (`resorption purger`).

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import definition

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

FILE = SQL_DIR / "030_sites.sql"
STATEMENTS = (
    "CREATE TABLE resorption.site_counts ",
    "ALTER TABLE resorption.site_counts ",
    "CREATE POLICY read ON resorption.site_counts ",
    "CREATE FUNCTION resorption.count_sites(",
    "CREATE TRIGGER sites_count_insert ",
    "CREATE TRIGGER sites_count_update ",
    "CREATE TRIGGER sites_count_delete ",
    "CREATE FUNCTION resorption.fold_site_counts(",
    "REVOKE ALL ON FUNCTION resorption.count_sites, ",
)


def upgrade() -> None:
    done = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.site_counts')").scalar()
    if done is not None:
        return
    run_sql("\n".join(definition(FILE, head) for head in STATEMENTS))
    op.execute(
        "INSERT INTO resorption.site_counts (departement_code, sites) "
        "SELECT departement_code, count(*) FROM resorption.sites GROUP BY departement_code"
    )


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
