"""Attachments of sites and journal messages: reserved, nothing yet.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02

A placeholder that keeps the chain of revisions linear while this concern is built; it is
replaced by the revision that brings an existing database to the state of its `sql/` file.
"""

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
