"""The read policies of sites, actions and their details come in two: the scoped roles' (as
before) and the nationwide roles' (sql/005_row_security.sql).

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-03

Each policy applied to every role (PUBLIC) and began with `(SELECT scope_is_nation(…)) OR`,
so a national reader never ran the rest; but PostgreSQL still set up its sub-plans (an action's
départements, a detail's action) in every statement. The scoped policy now applies to
`resorption_scoped` only, and a policy `nationwide` to `resorption_nationwide`: whether the
scope is the nation, asked once per statement. `resorption.privileges` makes each transaction
role a member of one of the two (the roles exist: `resorption.migrate.upgrade` creates them).

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import read_policy

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

# (file, table, name of its scoped read policy)
POLICIES = (
    ("030_sites.sql", "sites", "sites_read"),
    ("030_sites.sql", "site_counts", "read"),
    ("035_site_details.sql", "site_closing_solutions", "read"),
    ("035_site_details.sql", "site_reinstallation_origins", "read"),
    ("040_actions.sql", "actions", "actions_read"),
    ("040_actions.sql", "action_departements", "read"),
    ("040_actions.sql", "action_organisations", "read"),
    ("040_actions.sql", "action_finances", "read"),
    ("040_actions.sql", "action_indicators", "read"),
    ("040_actions.sql", "action_sites", "read"),
    ("080_history.sql", "sites_history", "sites_history_read"),
    ("080_history.sql", "actions_history", "actions_history_read"),
    ("160_actors.sql", "site_actors", "read"),
    ("160_actors.sql", "site_followers", "read"),
)


def upgrade() -> None:
    for file, table, scoped in POLICIES:
        run_sql(read_policy(SQL_DIR / file, table, scoped))
        run_sql(read_policy(SQL_DIR / file, table, "nationwide"))


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
