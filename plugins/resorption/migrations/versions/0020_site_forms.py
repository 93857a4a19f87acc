"""Site forms: no schema change.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02

The forms (web/site_forms.py, web/sheet_forms.py) write through the existing write path and
processes. Their one new need, the write roles' UPDATE of `sites.confirmed_at` (« Toujours
d'actualité », `writing.Writer.confirm`), is a privilege: `privileges.py` grants it and
`resorption db migrate` applies it after the revisions, to new and existing databases alike.
The revision stays, empty, to keep the chain linear.
"""

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("no downgrade: restore a backup instead")
