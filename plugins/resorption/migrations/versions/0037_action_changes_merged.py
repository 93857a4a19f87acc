"""The actions' changelog merged from the primary keys of its three histories (sql/170_action_results.sql).

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-03

Its branches of results joined the action, and its branch of actions had a condition: PostgreSQL
could then not merge the branches in the order of their version ids, and a first page read
and sorted every version of every action (0.3 s at 100,000 sites). Each branch now reads one
table; the versions left out are filtered outside the union.
"""

from resorption.migrate import SQL_DIR
from resorption.migrations.views import replace_view

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view(SQL_DIR / "170_action_results.sql", "resorption.action_changes")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
