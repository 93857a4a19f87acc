"""The face of the QGIS project: `GET /qgis/projet.qgz`, one click for a signed-in user.

The project holds the collections the caller may read (`qgis_project`), pointing at this
server's public URL; QGIS then asks for credentials per layer (an authentication
configuration the user attaches: username and API token).
"""

from __future__ import annotations

from flask import Blueprint, Response

from resorption import settings as app_settings
from resorption.catalog import load_catalog
from resorption.database import transaction
from resorption.errors import Unauthorized
from resorption.identity import current_principal
from resorption.policy import current_policy
from resorption.qgis_project import area_extent, project_for, project_srid

QGZ = "application/zip"

blueprint = Blueprint("qgis", __name__)


@blueprint.get("/qgis/projet.qgz")
def qgis_project() -> Response:
    """The caller's QGIS project, as a download."""
    principal = current_principal()
    if principal.is_anonymous:
        raise Unauthorized(
            "Identifiez-vous pour télécharger votre projet QGIS : il ne contient que les couches "
            "que vous pouvez lire."
        )
    settings = app_settings.current()
    policy = current_policy()
    with transaction(settings, context=policy.db_settings(principal), role=policy.db_role(principal)) as conn:
        extent = area_extent(conn, principal, project_srid(principal))
    catalog = load_catalog(settings.collections_dir)
    content = project_for(settings.public_url, principal, policy, catalog, extent, settings.bulk_threshold)
    return Response(
        content,
        mimetype=QGZ,
        headers={
            "Content-Disposition": 'attachment; filename="projet.qgz"',
            "Cache-Control": "private, no-store",
        },
    )
