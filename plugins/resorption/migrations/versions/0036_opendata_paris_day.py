"""Open data dated by the day in Paris (sql/070_opendata.sql).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-02

`as_of` was the server's `current_date`: in UTC, the figures were dated of the day before
between midnight and one (two in summer) in France.
"""

from resorption.migrate import SQL_DIR
from resorption.migrations.views import replace_view

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view(SQL_DIR / "070_opendata.sql", "resorption.opendata_departements")
    replace_view(SQL_DIR / "070_opendata.sql", "resorption.opendata_regions")


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
