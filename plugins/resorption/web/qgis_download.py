"""The face of the QGIS project: `GET /qgis/projet.qgz`, one click for a signed-in user.

The project holds the collections the caller may read (`qgis_project`), pointing at this
server's public URL; QGIS then asks for credentials per layer (an authentication
configuration the user attaches: username and API token).
"""

from __future__ import annotations

from flask import Blueprint, Response

from resorption.caller import Caller
from resorption.errors import Unauthorized
from resorption.qgis_project import area_extent, project_for, project_srid

QGZ = "application/zip"

blueprint = Blueprint("qgis", __name__)


@blueprint.get("/qgis/projet.qgz")
def qgis_project() -> Response:
    """The caller's QGIS project, as a download."""
    caller = Caller.of_request()
    if caller.principal.is_anonymous:
        raise Unauthorized(
            "Identifiez-vous pour télécharger votre projet QGIS : il ne contient que les couches "
            "que vous pouvez lire."
        )
    with caller.reading() as conn:
        extent = area_extent(conn, caller.principal, project_srid(caller.principal))
    content = project_for(caller, extent)
    return Response(
        content,
        mimetype=QGZ,
        headers={
            "Content-Disposition": 'attachment; filename="projet.qgz"',
            "Cache-Control": "private, no-store",
        },
    )
