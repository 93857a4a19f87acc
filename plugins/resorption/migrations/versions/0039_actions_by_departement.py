"""A département's actions read in id order from an index; a national reader's details read
without looking their action up again (sql/040_actions.sql).

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-03

- The index `action_departements (departement_code, action_id)` replaces the one on
  `departement_code` alone: the actions of a département come in id order, so that a page of
  them stops after its rows.
- The view `actions_in_scope` also shows the département of each row (one of the caller's),
  which the page of a département's actions names (query/features.py, SCOPE_VIEWS): before,
  PostgreSQL hashed the whole view and walked every action in id order, discarding those of
  other départements (0.24× tipg for the observer of the 93 at 1,000,000 sites).
- The read policies of an action's details (départements, partners, sites, indicators,
  finances) let a reader of the nation's actions through without looking the action up for
  each detail: that reader sees every action, hence every detail. Elsewhere unchanged.

On a new database the baseline made all this already: every statement here leaves it as it is.
(Revision 0025 now defines the view from its file too: its former inline definition, without
the new column, failed on a new database, where it would have dropped that column.)
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import read_policy, replace_view

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

DETAILS = (
    "action_departements",
    "action_organisations",
    "action_finances",
    "action_indicators",
    "action_sites",
)


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS action_departements_departement_action_idx "
        "ON resorption.action_departements (departement_code, action_id)"
    )
    op.execute("DROP INDEX IF EXISTS resorption.action_departements_departement_code_idx")
    replace_view(SQL_DIR / "040_actions.sql", "resorption.actions_in_scope")
    for table in DETAILS:
        run_sql(read_policy(SQL_DIR / "040_actions.sql", table))


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
