"""The read policies of a site's and an action's details call a PL/pgSQL function instead of
holding a sub-select of the sites or actions (sql/030_sites.sql, 035, 040, 160).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-03

`EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id)` in a policy is a sub-plan
that PostgreSQL sets up (opening the table and its index) in every statement that reads the
detail, even for a national reader whose `true OR …` never runs it. One site read with its
details paid it ten times: 0.58 → 0.43 ms of PostgreSQL CPU for one site by id, national, at
100,000 sites. `resorption.site_readable(id)` and `resorption.action_readable(id)` ask the
same question under the same policies (as invoker), as a plain call. Who reads what is
unchanged.

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import read_policy, readable_functions

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
    ("040_actions.sql", "action_departements"),
    ("040_actions.sql", "action_organisations"),
    ("040_actions.sql", "action_finances"),
    ("040_actions.sql", "action_indicators"),
    ("040_actions.sql", "action_sites"),
)


def upgrade() -> None:
    readable_functions()
    for file, table in POLICIES:
        run_sql(read_policy(SQL_DIR / file, table))


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
