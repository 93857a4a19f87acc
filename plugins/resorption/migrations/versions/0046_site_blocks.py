"""How many sites each block of 4,096 ids holds, by département and for the nation, kept by the
triggers of the sites' counts (sql/030_sites.sql): a page after `offset=` sites starts in its
block instead of skipping every site before it.

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-04

`offset=50000&limit=10` read 50,000 entries of an index before its page (~4 ms of PostgreSQL,
2 to 3 times the same page by `after=`, bench/ANALYSIS.md). The blocks before the page add up
the sites before its block, and the page skips the rest inside it (query/features.py). The
tables are filled from the sites as they are, in the revision's transaction; `count_sites()`
now appends to them too, and `fold_site_counts()` folds them.

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import definition, replace_function

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None

FILE = SQL_DIR / "030_sites.sql"
STATEMENTS = (
    "CREATE TABLE resorption.site_blocks ",
    "CREATE INDEX site_blocks_departement_idx ",
    "ALTER TABLE resorption.site_blocks ",
    "CREATE POLICY read ON resorption.site_blocks ",
    "CREATE POLICY nationwide ON resorption.site_blocks ",
    "CREATE TABLE resorption.site_blocks_nation ",
    "ALTER TABLE resorption.site_blocks_nation ",
    "CREATE POLICY read ON resorption.site_blocks_nation ",
    "CREATE POLICY nationwide ON resorption.site_blocks_nation ",
)


def upgrade() -> None:
    done = op.get_bind().exec_driver_sql("SELECT to_regclass('resorption.site_blocks')").scalar()
    if done is not None:
        return
    run_sql("\n".join(definition(FILE, head) for head in STATEMENTS))
    replace_function(FILE, "resorption.count_sites")
    replace_function(FILE, "resorption.fold_site_counts")
    op.execute(
        "INSERT INTO resorption.site_blocks (departement_code, first_id, sites) "
        "SELECT departement_code, id & ~4095::bigint, count(*) FROM resorption.sites GROUP BY 1, 2"
    )
    op.execute(
        "INSERT INTO resorption.site_blocks_nation (first_id, sites) "
        "SELECT id & ~4095::bigint, count(*) FROM resorption.sites GROUP BY 1"
    )


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
