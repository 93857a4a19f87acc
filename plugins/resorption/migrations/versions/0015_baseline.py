"""Baseline: the whole schema, from the files of `sql/` applied in order.

Revision ID: 0015
Revises:
Create Date: 2026-12-03

Why 0015, the id of the former head: revisions 0001 to 0015 used to build the schema step by
step, a file of `sql/` redefining what earlier ones had made. `sql/` now shows each object
once, in its final form, and a database migrated to 0015 by the former revisions has exactly
the schema these files build, apart from what later revisions change (each says what): so it
stays at 0015, and alembic runs only the revisions after it. A database at an older revision,
or at one we do not know, is refused by `resorption.migrate.upgrade` with a French message
saying what to do, instead of alembic's stack trace.

A new database runs the later revisions too, after this one: they find their change already
made, and must leave it so (`resorption.migrate` says how to write one).
"""

from resorption.migrate import run_sql_files, sql_files

revision = "0015"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_files(sql_files())


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
