"""A département's journals read its own rows: the changelog of sites by its département's index,
the results of actions and the details of actions under the scope's départements of actions, the
finances skipped at once by who may not read them.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-03

The first page of `site_changes`, `action_changes` and `activity` cost a département's readers
40 to 160 ms of PostgreSQL at 100,000 sites (against 2 to 13 ms for a national reader,
bench/ANALYSIS.md):
- `site_changes` walked the versions in id order and discarded the other départements'
  (63,270 before the Gironde's first). The page now names the caller's départements as a plain
  condition (query/features.py, SCOPE_COLUMNS) and reads the index (departement_code, version_id).
- `action_changes` walked every version of every action and probed each one's départements.
  The page names the caller's actions (those in scope, and those with a version in one of its
  départements: actions_history (departement_code, id)), whose versions each history reads by
  its index on the action.
- the policies of the results' histories asked `EXISTS (SELECT … FROM actions …)`: PostgreSQL
  hashed every readable action by reading the whole actions table under its policy. They ask
  `actions_in_scope` (the scope's départements of actions, one narrow table), which says the
  same: an action is read where one of its départements, its main one included, is in the scope.
  `OFFSET 0` keeps it one lookup by action id for each row: a national first page of the
  journal at 1,000,000 sites hashed 147,422 actions before its first row (260 ms).
- the details of an action (its départements, organisations, finances, indicators, sites)
  asked the same of the actions' policy, one lookup of the action and of its départements for
  each detail row; `actions_in_scope` asks it in one (one action of a département by id:
  0.92 → 0.75 ms of PostgreSQL).
- a role that does not read the finances walked every version of every finance line to find
  none. The finance branch of `activity` and `action_changes` is `shown` only where the caller
  reads the finances: a condition on no row, tested once before the branch is read.

On a new database the baseline made all this already: every statement here leaves it as it is.
"""

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import read_policy, replace_view

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None

# The details of an action, read where `actions_in_scope` shows their action
DETAILS = (
    "action_departements",
    "action_organisations",
    "action_finances",
    "action_indicators",
    "action_sites",
)


def upgrade() -> None:
    run_sql(
        "CREATE INDEX IF NOT EXISTS sites_history_departement_version_idx "
        "ON resorption.sites_history (departement_code, version_id)"
    )
    run_sql(
        "CREATE INDEX IF NOT EXISTS actions_history_departement_id_idx "
        "ON resorption.actions_history (departement_code, id)"
    )
    for table in ("action_indicators_history", "action_finances_history"):
        run_sql(read_policy(SQL_DIR / "170_action_results.sql", table, f"{table}_read"))
    for table in DETAILS:
        run_sql(read_policy(SQL_DIR / "040_actions.sql", table))
    replace_view(SQL_DIR / "170_action_results.sql", "resorption.action_changes")
    replace_view(SQL_DIR / "190_activity.sql", "resorption.activity")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
