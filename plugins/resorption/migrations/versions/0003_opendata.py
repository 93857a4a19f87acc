"""Open data: public aggregates per département and region, under statistical secrecy.

The views read every site (they belong to the owner, so row-level security does not
apply to them) and publish only figures that stand for at least 5 sites and 10 people;
`sql/070_opendata.sql` states the suppression rules. Being in the catalog and not
protected, they are readable by the anonymous role once `sync_privileges` has run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from resorption.migrate import run_sql_files

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(["070_opendata.sql"])


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
