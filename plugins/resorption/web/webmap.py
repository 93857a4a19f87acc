"""The web map `/carte`: sites by status and population, filters, and a site sheet.

The page itself holds no data: its script reads the OGC API as the signed-in user (the
session cookie, CSRF token on writes), so the map shows exactly what the API gives that
user. This module serves the page, the shared styles (`styles.py`), what the user may do
(`/carte/moi`, computed by the policy; the API still refuses what it must) and the site
sheet, rendered from the API's feature with the catalog's groups and labels.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template

from resorption import actors, attachments, file_types, styles
from resorption.caller import Caller
from resorption.catalog import Collection, Field, load_catalog
from resorption.editing import version_sql
from resorption.errors import Unauthorized
from resorption.identity import Principal, current_principal
from resorption.policy import Policy, Scope
from resorption.processes.close_site import CLOSING_STATUSES
from resorption.query import FeatureQuery
from resorption.reader import FeatureReader
from resorption.settings import Settings, french_size
from resorption.tile_layers import LAYERS
from resorption.web import display, journal, sheet_forms
from resorption.web.sessions import current_session, root_path

blueprint = Blueprint("webmap", __name__)

AREA_LEVELS = {
    "nation": "France entière",
    "region": "Région",
    "departement": "Département",
    "epci": "EPCI",
    "commune": "Commune",
}
# The catalog's rolled-up living conditions: one filter each.
LIVING_CONDITIONS = (
    "water_rating",
    "sanitation_rating",
    "electricity_rating",
    "waste_rating",
    "pests_rating",
    "fire_prevention_rating",
)
# Field types the sheet's edit form offers (arrays and aggregates are edited elsewhere).
EDITABLE_TYPES = ("string", "integer", "number", "boolean")
# Collections whose vector tiles the map uses when the server publishes them.
TILED = ("departements", "regions", "actions", "communes")
# Without tiles, territories and footprints come as GeoJSON in the view, at most this many.
GEOJSON_LIMIT = 500


def _settings() -> Settings:
    return current_app.config["RESORPTION_SETTINGS"]


def _sites() -> Collection:
    return load_catalog(_settings().collections_dir)["sites"]


def _signed_in() -> Principal:
    principal = current_principal()
    if principal.is_anonymous:
        raise Unauthorized("Connectez-vous pour consulter la carte : /connexion.", challenge=False)
    return principal


def _scope_json(scope: Scope) -> str | list[str]:
    """'*' for the nation, else the sorted codes of the départements (empty: nowhere)."""
    return "*" if scope.nation else sorted(scope.departements)


def _tiled() -> dict[str, bool]:
    """Which of TILED the server publishes as vector tiles (the layer of a tile is its collection id)."""
    return {cid: cid in LAYERS for cid in TILED}


def me(principal: Principal, policy: Policy) -> dict[str, Any]:
    """Who the user is and what the policy lets them do (the map shows buttons accordingly)."""
    role = policy.roles.get(principal.role or "")
    level = principal.area_level or "nation"
    area = AREA_LEVELS.get(level, level) + (f" {principal.area_code}" if principal.area_code else "")
    departements = principal.area_departements
    return {
        "username": principal.username,
        "role": principal.role,
        "roleLabel": role.label.fr if role else "",
        "area": area,
        "areaDepartements": None if departements is None else sorted(departements),
        "sensitiveGroups": sorted(policy.readable_groups(principal)),
        "may": {
            "readSites": _scope_json(policy.scope(principal, "sites")),
            "readActions": _scope_json(policy.scope(principal, "actions")),
            "write": _scope_json(policy.write_scope(principal, "sites", "write")),
            "close": _scope_json(policy.write_scope(principal, "sites", "close")),
        },
    }


@blueprint.get("/carte")
def page() -> Response | Any:
    """The map page; anonymous visitors are sent to the sign-in form first."""
    caller = Caller.of_request()
    if caller.principal.is_anonymous:
        return redirect(f"{root_path()}/connexion?suivant=/carte", code=HTTPStatus.SEE_OTHER)
    session = current_session()
    config = {
        "root": root_path(),
        "styles": styles.as_json(caller.sites),
        "me": me(caller.principal, caller.policy),
        "tiles": _tiled(),
        "geojsonLimit": GEOJSON_LIMIT,
        "livingConditions": list(LIVING_CONDITIONS),
    }
    html = render_template(
        "carte/page.html",
        csrf_token=session.csrf_token if session else "",
        config=config,
        me=config["me"],
        signed_by_session=session is not None,
    )
    return Response(html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


@blueprint.get("/carte/styles.json")
def styles_json() -> Response:
    """Status colours and population classes (no data: public, like the stylesheets)."""
    return jsonify(styles.as_json(_sites()))


@blueprint.get("/carte/moi")
def whoami() -> Response:
    """The signed-in user and their capabilities, as JSON."""
    _signed_in()
    caller = Caller.of_request()
    return jsonify(me(caller.principal, caller.policy))


def _editable(field: Field, collection: Collection) -> bool:
    return (
        not field.read_only
        and not field.sql_text
        and field.name != collection.id_field
        and field.type in EDITABLE_TYPES
    )


@blueprint.get("/carte/sites/<site_id>/fiche")
def sheet(site_id: str) -> Response:
    """The site sheet as an HTML fragment: the fields the user may read, by catalog group.

    The feature is read by the same reader as `/collections/sites/items/{id}`, as the
    user: a site outside their scope is a 404, a field they may not read is absent.
    """
    _signed_in()
    caller = Caller.of_request()
    sites = caller.sites
    reader = FeatureReader(caller, sites)
    # The item and its version (ETag) in one statement, as the items route reads them.
    raw, version = reader.feature_json(
        FeatureQuery(collection=sites, readable=reader.readable), site_id, version_sql(sites)
    )
    feature = orjson.loads(raw)
    properties = feature.get("properties") or {}
    departement = properties.get("departement_code")
    may_write = caller.scope("sites", "write").contains(departement)
    may_close = caller.scope("sites", "close").contains(departement) and properties.get("status") == "open"
    readable = {f.name for f in reader.readable}
    edit_groups: list[tuple[str, list[Field]]] = []
    if may_write:
        by_group: dict[str, list[Field]] = {}
        for field in sites.fields.values():
            if field.name in readable and _editable(field, sites):
                by_group.setdefault(field.group.name, []).append(field)
        edit_groups = [(sites.groups[g].label.fr, fs) for g, fs in by_group.items()]
    status_labels = sites.fields["status"].enum or {}
    # Who works on the site, and whether the user follows it (sql/160_actors.sql).
    site_actors, followed = actors.sheet(caller, int(feature["id"]))
    may_act = caller.policy.actor_scope(caller.principal).contains(departement) and (
        properties.get("status") == "open"
    )
    journal = _journal(caller, int(feature["id"]))
    # The site's files, and those of the messages shown (each read as its parent is).
    site_files = _files(attachments.listing(caller, "sites", int(feature["id"]), root_path()))
    by_message = attachments.of_messages(
        caller, "site_comments", [m["id"] for m in journal["messages"]], root_path()
    )
    for m in journal["messages"]:
        m["files"] = _files(by_message.get(m["id"], []))
    html = render_template(
        "carte/fiche.html",
        site_id=feature.get("id"),
        title=display.item_title(sites, feature, "fr"),
        # The actors are listed in a section of their own, with their buttons.
        sections=display.sections(sites, {k: v for k, v in properties.items() if k != "actors"}, "fr"),
        properties=properties,
        version=version if may_write else None,
        may_write=may_write,
        may_close=may_close,
        edit_groups=edit_groups,
        closing_statuses=[(s, status_labels.get(s, s)) for s in CLOSING_STATUSES],
        actors=site_actors,
        followed=followed,
        may_act=may_act,
        themes=actors.THEMES,
        username=caller.principal.username,
        journal=journal,
        forms=sheet_forms.sheet_forms(sites, properties, may_write),
        files=site_files,
        file_types=file_types.ACCEPTED_SAID,
        file_accept=",".join(e for kind in file_types.ACCEPTED for e in kind.extensions),
        file_max=french_size(caller.settings.limits.attachment_max_bytes),
    )
    return Response(html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


def _journal(caller: Caller, site_id: int) -> dict[str, Any]:
    """The messages on the site the user may read (shared with the action sheet)."""
    return journal.journal(caller, "site_comments", "site_id", site_id)


def _files(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attachments as the sheet shows them: with their type's French name and their size."""
    return [
        {
            **a,
            "type_label": getattr(file_types.BY_MEDIA_TYPE.get(a["media_type"]), "label", a["media_type"]),
            "size_label": french_size(a["size"]),
        }
        for a in items
    ]
