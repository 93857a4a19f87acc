"""The check of a remembered API token in PL/pgSQL (sql/050_identity.sql).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-03

`token_user_version()` runs before every request that carries a token. Written in SQL, with
its own search path, PostgreSQL planned its statements again at each call (89 µs); in
PL/pgSQL a session keeps their plans (11 µs). Same answers, same use noted once a minute.
"""

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import definition

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    function = definition(SQL_DIR / "050_identity.sql", "CREATE FUNCTION resorption.token_user_version(")
    run_sql(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
