"""Action results: indicators and finances in history: reserved, nothing yet.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02

A placeholder that keeps the chain of revisions linear while this concern is built; it is
replaced by the revision that brings an existing database to the state of its `sql/` file.
"""

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
