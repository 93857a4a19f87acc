"""The activity feed's view as its file defines it, on every database (sql/190_activity.sql).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-03

Revision 0022 writes the feed's view inline, in its first form; 0035 defined it again from its
file only on a database it had to change, so that every database made new since kept the
first form: its events in no index's order, and a first page that read and sorted every
version of every site (7 s at 100,000 sites). tests/test_schema_files.py now compares every
view of a migrated database with its file.
"""

from resorption.migrate import SQL_DIR
from resorption.migrations.views import replace_view

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view(SQL_DIR / "190_activity.sql", "resorption.activity")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
