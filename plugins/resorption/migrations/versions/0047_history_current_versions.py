"""The current version of each site and of each action, indexed: the history trigger finds the
version it closes in one index entry, however many versions the row has (sql/080_history.sql).

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-04

`record_version()` looks the current version up by `id = $1 AND upper_inf(valid)`. Through the
index (id, lower(valid)) it read every version of the row and kept the last: a site changed
4,800 times (the bench's writes, one site edited again and again) took 6 ms to find it, on
each change. A partial index holds one entry per row: the current version.

On a new database the baseline made these already: `IF NOT EXISTS` leaves them as they are.
"""

from alembic import op

revision = "0047"
down_revision = "0046"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("sites", "actions"):
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_history_current_idx "
            f"ON resorption.{table}_history (id) WHERE upper_inf(valid)"
        )


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
