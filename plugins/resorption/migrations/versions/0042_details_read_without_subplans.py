"""The read policies of a site's details call a PL/pgSQL function instead of holding a
sub-select of the sites (sql/030_sites.sql, 035_site_details.sql, 160_actors.sql).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-03

`EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id)` in a policy is a sub-plan
that PostgreSQL sets up (opening the table and its index) in every statement that reads the
detail, even for a national reader whose `true OR …` never runs it. One site read with its
details paid it several times. `resorption.site_readable(id)` asks the same question under the
same policy (as invoker), as a plain call: one call per detail row it tests, and a site has
few. Who reads what is unchanged. (An action's details keep their sub-plans: every page of
actions reads many, and a call per row made a département's page three times slower.)

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import read_policy, replace_function

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

# (file, table) of each read policy defined again from its file
POLICIES = (
    ("035_site_details.sql", "site_closing_solutions"),
    ("035_site_details.sql", "site_reinstallation_origins"),
    ("160_actors.sql", "site_actors"),
    ("160_actors.sql", "site_followers"),
)


def upgrade() -> None:
    replace_function(SQL_DIR / "030_sites.sql", "resorption.site_readable")
    for file, table in POLICIES:
        run_sql(read_policy(SQL_DIR / file, table))


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
