"""The versions of the vector tiles folded by the purger: each row of `collection_changes` stands
for `changes` writes, and a version is their sum (sql/120_tiles.sql).

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-04

A tile's version counted one row per write ever made in the caller's scope, under a read policy
that read the scope settings for each row: a tile of the Gironde after 14,000 writes spent 3 ms
of its 4 on its version, and that grew with every write. Existing rows stand for one write each:
every version, hence every ETag, stays the same. The policy reads the scopes once per statement.

On a new database the baseline made all this already: every statement here leaves it as it was
(the function is defined again from the same file).
"""

from alembic import op

from resorption.migrate import SQL_DIR, run_sql
from resorption.migrations.views import definition, read_policy, replace_function

revision = "0048"
down_revision = "0047"
branch_labels = None
depends_on = None

FILE = SQL_DIR / "120_tiles.sql"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE resorption.collection_changes ADD COLUMN IF NOT EXISTS changes bigint NOT NULL DEFAULT 1"
    )
    run_sql(read_policy(FILE, "collection_changes"))
    replace_function(FILE, "resorption.fold_collection_changes")
    run_sql(definition(FILE, "REVOKE ALL ON FUNCTION resorption.fold_collection_changes "))


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
