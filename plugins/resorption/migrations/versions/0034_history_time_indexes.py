"""The changelogs' previous versions: indexed in time order, looked up only for the rows
shown (sql/080_history.sql, sql/170_action_results.sql).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-02

The changelogs (site_changes, action_changes) look up the previous version of each change:
with the time in the index, that is one index read, with no sort; without it, a plan that
may not sort (a national first page in id order) walked the whole history for each change
(a first page of site_changes timed out at 100,000 sites). Each new index replaces the one
that held the same columns without the time.

The views site_changes and action_changes look the previous version up inside their
`changes` column instead of a lateral join: the ids of a page, which a page chooses first
(`page_ids_first`), and a count no longer pay for it.
"""

from alembic import op

from resorption.migrate import SQL_DIR
from resorption.migrations.views import replace_view

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

INDEXES = (
    # (new index, its definition, the one it replaces)
    ("sites_history_id_valid_idx", "resorption.sites_history (id, lower(valid))", "sites_history_id_idx"),
    (
        "actions_history_id_valid_idx",
        "resorption.actions_history (id, lower(valid))",
        "actions_history_id_idx",
    ),
    (
        "action_indicators_history_action_valid_idx",
        "resorption.action_indicators_history (action_id, measured_at, lower(valid))",
        "action_indicators_history_action_idx",
    ),
    (
        "action_finances_history_action_valid_idx",
        "resorption.action_finances_history (action_id, year, funding_type, lower(valid))",
        "action_finances_history_action_idx",
    ),
)


def upgrade() -> None:
    for name, definition, replaced in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")
        op.execute(f"DROP INDEX IF EXISTS resorption.{replaced}")
    replace_view(SQL_DIR / "080_history.sql", "resorption.site_changes")
    replace_view(SQL_DIR / "170_action_results.sql", "resorption.action_changes")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
