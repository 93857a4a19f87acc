"""Forms for people who do not use GIS: declare a site, and the sheet's daily actions.

- `/carte/sites/nouveau`: declaring a site. The page places the point on a map (or by its
  coordinates), offers the commune search of `/collections/communes/items?q=` to find the
  place (no address geocoder is reachable from the platform), shows the catalog's fields the
  user may write, grouped as on the sheet, lists the sites already known within 200 m
  (`S_DWITHIN` through the API) and asks for a confirmation; then it POSTs the feature to
  `/collections/sites/items`, the one write path, which derives the commune and the
  département, checks every field and answers the problems per field in French.
- « Toujours d'actualité » on the site sheet: `PATCH /carte/sites/<id>/confirmation`
  (`Writer.confirm`); the sheet's forms themselves are described in `sheet_forms.py`.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from resorption.caller import Caller
from resorption.catalog import Collection, Field
from resorption.errors import Forbidden, Unauthorized
from resorption.web.sessions import current_session, root_path, wants_html
from resorption.web.webmap import EDITABLE_TYPES, me
from resorption.writing import Writer

blueprint = Blueprint("site_forms", __name__)

# The distance under which an existing site is shown before a declaration (metres).
NEARBY_METRES = 200
# Groups of a declaration shown unfolded: what is known on the first visit.
UNFOLDED = ("identity", "life_cycle", "population")
# Derived by the write path from the point: not asked.
DERIVED = ("commune_code",)


def editable(field: Field, collection: Collection) -> bool:
    """A field a form offers: stored, not computed, not the id, of a simple type."""
    return (
        not field.read_only
        and not field.sql_text
        and field.name != collection.id_field
        and field.type in EDITABLE_TYPES
    )


def edit_groups(
    collection: Collection, readable: AbstractSet[str], required: AbstractSet[str] = frozenset()
) -> list[tuple[str, list[tuple[Field, bool]], bool]]:
    """The fields the user may write, by catalog group in catalog order, with `required`; and
    whether the group starts unfolded (the first steps, or a required field)."""
    by_group: dict[str, list[tuple[Field, bool]]] = {}
    for f in collection.fields.values():
        if f.name in readable and f.name not in DERIVED and editable(f, collection):
            by_group.setdefault(f.group.name, []).append((f, f.name in required))
    return [
        (collection.groups[g].label.fr, fs, g in UNFOLDED or any(r for _, r in fs))
        for g, fs in by_group.items()
    ]


@blueprint.get("/carte/sites/nouveau")
def new_site() -> Response | Any:
    """The declaration page; 403 for a user who may declare a site nowhere."""
    caller = Caller.of_request()
    if caller.principal.is_anonymous:
        return redirect(f"{root_path()}/connexion?suivant=/carte/sites/nouveau", code=HTTPStatus.SEE_OTHER)
    writer = Writer(caller, caller.sites)
    profile = me(caller.principal, caller.policy)
    try:
        writer.require("write")
    except Forbidden as exc:
        if not wants_html(request):
            raise
        # A person gets a page that says why, in the site's frame, with the way back.
        html = render_template("carte/refus.html", me=profile, message=exc.message)
        return Response(html, status=HTTPStatus.FORBIDDEN, content_type="text/html; charset=utf-8")
    with caller.reading() as conn:
        columns = writer.columns(conn)
    required = {name for name, c in columns.items() if c.required}
    readable = {f.name for f in writer.readable}
    session = current_session()
    config = {"root": root_path(), "nearbyMetres": NEARBY_METRES, "me": profile}
    html = render_template(
        "carte/nouveau.html",
        csrf_token=session.csrf_token if session else "",
        config=config,
        me=profile,
        groups=edit_groups(caller.sites, readable, required),
        nearby_metres=NEARBY_METRES,
    )
    return Response(html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


@blueprint.patch("/carte/sites/<site_id>/confirmation")
def confirm(site_id: str) -> Response:
    """« Toujours d'actualité »: 204 with the site's new ETag (404 unreadable, 403 outside the
    write scope, 412 with a stale `If-Match`)."""
    caller = Caller.of_request()
    if caller.principal.is_anonymous:
        # No Basic challenge: the page's script asks, and a browser would keep the credentials.
        raise Unauthorized("Connectez-vous pour confirmer un site : /connexion.", challenge=False)
    writer = Writer(caller, caller.sites)
    if not site_id.isdigit() or len(site_id) > 18:
        raise writer.not_found(site_id)
    version = writer.confirm(int(site_id), if_match=request.headers.get("If-Match"))
    return Response(status=HTTPStatus.NO_CONTENT, headers={"ETag": version})
