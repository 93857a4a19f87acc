"""Site actors and followers: reserved, nothing yet.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

A placeholder that keeps the chain of revisions linear while this concern is built; it is
replaced by the revision that brings an existing database to the state of its `sql/` file.
"""

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
