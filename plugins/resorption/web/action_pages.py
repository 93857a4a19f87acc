"""The actions for people who do not use GIS: `/actions` (the list), `/actions/<id>` (the
sheet, with its journal), `/actions/nouvelle` and `/actions/<id>/modifier` (the form).

Every read goes through the one reader as the signed-in caller (an action outside their
scope is a 404, a field they may not read is absent: the finances only with the `finances`
group); every write through the one write path (`writing.Writer`), exactly as the API's
Part 4: the same checks, the same French messages by field, `If-Match` on update (the form
carries the version it was filled from). The footprint is drawn on a Leaflet map or read
from a GeoJSON file by `static/js/actions.js`, which fills a hidden field with the GeoJSON
geometry. Forms posted from a browser session carry the page's anti-CSRF token.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from flask import Blueprint, Response, redirect, request

from resorption.caller import Caller
from resorption.catalog import Collection, Field
from resorption.cql import parse_filter
from resorption.editing import Mode, version_sql
from resorption.errors import Conflict, Forbidden, PreconditionFailed, ValidationFailed
from resorption.query import FeatureQuery
from resorption.reader import FeatureReader
from resorption.web import display
from resorption.web.dashboard import base_url, render, signed_in
from resorption.web.journal import journal
from resorption.web.sessions import CSRF_FIELD, current_session
from resorption.writing import Writer

PAGE_SIZE = 50
# What the list offers to filter on, by state: a CQL2 condition on the dates (today given).
STATES = {
    "en_cours": ("En cours", "started_at <= DATE('{0}') AND (ended_at IS NULL OR ended_at >= DATE('{0}'))"),
    "a_venir": ("À venir", "started_at > DATE('{0}')"),
    "terminee": ("Terminées", "ended_at < DATE('{0}')"),
}
DEPARTEMENT = re.compile(r"^(?:[0-9]{2}|2[AB]|97[1-6])$")
# The fields of the form, in the order of the catalog; arrays and aggregates other than the
# topics are written elsewhere (sites linked, partners, results).
FORM_TYPES = ("string", "integer", "number", "boolean")
FOOTPRINT = "footprint"
# At most this many outlines of départements on the form's map.
OUTLINES = 5
SAVED = {
    "creee": "L'action est créée.",
    "modifiee": "L'action est enregistrée.",
    "message": "Message publié dans le journal.",
}
STALE = (
    "L'action a été modifiée par quelqu'un d'autre depuis l'ouverture du formulaire : "
    "rien n'a été enregistré. Rechargez la page pour repartir de sa dernière version."
)


def _actions(caller: Caller) -> Collection:
    return caller.catalog["actions"]


def _page(api: Any, template: str, data: dict[str, Any], status: int = HTTPStatus.OK) -> Response:
    session = current_session()
    data = {
        "root": base_url(api),
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf_token if session else "",
        "links": [],
        **data,
    }
    return Response(
        render(api, template, data),
        status=status,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "private, no-store"},
    )


def _writable(collection: Collection, readable: set[str]) -> list[Field]:
    """The fields a person fills in: not computed, not the id, readable by them."""
    return [
        f
        for f in collection.fields.values()
        if f.name in readable
        and not f.read_only
        and not f.sql_text
        and f.name != collection.id_field
        and (f.type in FORM_TYPES or (f.type == "array" and f.enum))
    ]


def _groups(collection: Collection, fields: list[Field]) -> list[tuple[str, list[Field]]]:
    by_group: dict[str, list[Field]] = {}
    for f in fields:
        by_group.setdefault(f.group.name, []).append(f)
    return [(collection.groups[g].label.fr, fs) for g, fs in by_group.items()]


# -- the list ---------------------------------------------------------------------------


def _filter(collection: Collection, args: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """The CQL2 text of the list's filters (values checked first), and the filters kept."""
    kept: dict[str, str] = {}
    parts: list[str] = []
    territory = (args.get("territoire") or "").strip().upper()
    if DEPARTEMENT.match(territory):
        kept["territoire"] = territory
        parts.append(f"A_CONTAINS(departement_codes, ('{territory}'))")
    topic = args.get("thematique") or ""
    if topic in (collection.fields["topics"].enum or {}):
        kept["thematique"] = topic
        parts.append(f"A_CONTAINS(topics, ('{topic}'))")
    state = args.get("etat") or ""
    if state in STATES:
        kept["etat"] = state
        parts.append(f"({STATES[state][1].format(dt.date.today().isoformat())})")
    return (" AND ".join(parts) or None), kept


def _state(properties: Mapping[str, Any], today: dt.date) -> str:
    """« En cours », « À venir » or « Terminée », from the dates as the list reads them."""
    started, ended = properties.get("started_at"), properties.get("ended_at")
    if started and started > today.isoformat():
        return "À venir"
    if ended and ended < today.isoformat():
        return "Terminée"
    return "En cours"


def _offset(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 9 else 0


def list_page(api: Any) -> Response:
    caller = signed_in(csv=False)
    if isinstance(caller, Response):
        return caller
    actions = _actions(caller)
    reader = FeatureReader(caller, actions)
    text, kept = _filter(actions, request.args)
    offset = _offset(request.args.get("debut"))
    by_name = {f.name: f for f in reader.readable}
    wanted = ("name", "topics", "started_at", "ended_at", "departement_codes", "operators", "people_followed")
    page = reader.features(
        FeatureQuery(
            collection=actions,
            readable=reader.readable,
            select=tuple(by_name[n] for n in wanted if n in by_name),
            skip_geometry=True,
            filter_tree=parse_filter(text, None, "cql2-text", caller.settings.limits) if text else None,
            sortby=((by_name["started_at"], True), (by_name["id"], True)),
            limit=PAGE_SIZE,
            offset=offset,
        )
    )
    base = base_url(api)
    rows = []
    today = dt.date.today()
    for feature in page.get("features", []):
        p = feature["properties"]
        cells = {n: display.display_value(actions.fields[n], p.get(n), "fr") for n in wanted[1:]}
        rows.append(
            {
                "href": f"{base}/actions/{feature['id']}",
                "title": display.item_title(actions, feature, "fr"),
                "cells": {**cells, "etat": _state(p, today)},
            }
        )
    matched = int(page.get("numberMatched") or 0)

    def at(start: int) -> str:
        return f"{base}/actions?{urllib.parse.urlencode({**kept, 'debut': start})}"

    write_scope = caller.scope("actions", "write")
    readable = caller.scope("actions")
    return _page(
        api,
        "actions/liste.html",
        {
            "rows": rows,
            "columns": [(n, actions.fields[n].label.fr) for n in wanted[1:2]]
            + [("etat", "État")]
            + [(n, actions.fields[n].label.fr) for n in wanted[2:]],
            "matched": matched,
            "first": offset + 1 if rows else 0,
            "last": offset + len(rows),
            "previous": at(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
            "next": at(offset + PAGE_SIZE) if offset + len(rows) < matched else None,
            "filters": kept,
            "topics": list((actions.fields["topics"].enum or {}).items()),
            "states": [(k, label) for k, (label, _) in STATES.items()],
            "departements": None if readable.nation else sorted(readable.departements),
            "may_create": not write_scope.is_empty,
            "page_url": f"{base}/actions",
        },
    )


# -- the sheet --------------------------------------------------------------------------


def _read(caller: Caller, action_id: int) -> tuple[dict[str, Any], str]:
    """The action as the caller reads it, with its version (404 outside their scope)."""
    actions = _actions(caller)
    reader = FeatureReader(caller, actions)
    raw, version = reader.feature_json(
        FeatureQuery(collection=actions, readable=reader.readable), str(action_id), version_sql(actions)
    )
    return orjson.loads(raw), version


def _may_write(caller: Caller, properties: Mapping[str, Any]) -> bool:
    """Whether the caller writes the action: where it lies is its main département, as for
    the write path's lock."""
    return caller.scope("actions", "write").contains(properties.get("departement_code"))


def _write_message(caller: Caller, action_id: int, form: Any) -> None:
    """A message in the action's journal, through the write path like the API's POST."""
    users = [u.strip() for u in (form.get("audience_users") or "").split(",") if u.strip()]
    properties: dict[str, Any] = {
        "action_id": action_id,
        "message": (form.get("message") or "").strip(),
        "tags": form.getlist("tags"),
        "visibility": form.get("visibility") or "everyone",
    }
    if users:
        properties["audience_users"] = users
    Writer(caller, caller.catalog["action_comments"]).create(
        {"type": "Feature", "geometry": None, "properties": properties}
    )


def sheet_page(api: Any, action_id: int) -> Response:
    caller = signed_in(csv=False)
    if isinstance(caller, Response):
        return caller
    base = base_url(api)
    problems: list[tuple[str, str]] = []
    status = HTTPStatus.OK
    if request.method == "POST":
        _read(caller, action_id)  # 404 first: the action must be readable
        try:
            _write_message(caller, action_id, request.form)
        except ValidationFailed as exc:
            labels = caller.catalog["action_comments"].fields
            problems = [
                (labels[e["property"]].label.fr if e["property"] in labels else e["property"], e["message"])
                for e in exc.errors
            ]
            status = HTTPStatus.BAD_REQUEST
        else:
            return redirect(f"{base}/actions/{action_id}?enregistre=message#journal", HTTPStatus.SEE_OTHER)
    feature, _ = _read(caller, action_id)
    actions = _actions(caller)
    properties = feature.get("properties") or {}
    may_write = _may_write(caller, properties)
    shown = {k: v for k, v in properties.items() if k not in ("site_ids",)}
    return _page(
        api,
        "actions/fiche.html",
        {
            "action_id": action_id,
            "title": display.item_title(actions, feature, "fr"),
            "sections": display.sections(actions, shown, "fr"),
            "site_ids": properties.get("site_ids") or [],
            "map": {"mode": "view", "geometry": feature.get("geometry")},
            "may_write": may_write,
            "journal": journal(caller, "action_comments", "action_id", action_id),
            "problems": problems,
            "form": request.form.to_dict() if problems else {},
            "form_tags": request.form.getlist("tags") if problems else [],
            "saved": SAVED.get(request.args.get("enregistre", "")),
            "page_url": f"{base}/actions/{action_id}",
            "list_url": f"{base}/actions",
            "edit_url": f"{base}/actions/{action_id}/modifier",
            "results_url": f"{base}/actions/{action_id}/resultats",
            "changes_url": f"{base}/collections/action_changes/items?action_id={action_id}&f=html",
            "comments_url": f"{base}/collections/action_comments/items?action_id={action_id}&f=html",
            "api_url": f"{base}/collections/actions/items/{action_id}",
            "sites_url": f"{base}/collections/sites/items",
        },
        status,
    )


# -- the form ---------------------------------------------------------------------------


def _body(fields: list[Field], form: Any, creating: bool) -> tuple[dict[str, Any], str | None]:
    """The GeoJSON feature of the form (an empty field: absent on creation, removed on update),
    and what is wrong with the footprint field before the write path sees it."""
    properties: dict[str, Any] = {}
    for f in fields:
        if f.type == "array":
            values = form.getlist(f.name)
            if values or not creating:
                properties[f.name] = values
            continue
        text = (form.get(f.name) or "").strip()
        if not text:
            if not creating:
                properties[f.name] = None
            continue
        if f.type == "integer":
            properties[f.name] = int(text) if text.lstrip("-").isdigit() else text
        elif f.type == "boolean":
            properties[f.name] = text == "true"
        else:
            properties[f.name] = text
    body: dict[str, Any] = {"type": "Feature", "properties": properties}
    raw = (form.get(FOOTPRINT) or "").strip()
    problem = None
    if raw:
        try:
            body["geometry"] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            problem = "l'emprise dessinée ou importée n'est pas du GeoJSON lisible."
    else:
        body["geometry"] = None
    return body, problem


def form_page(api: Any, action_id: int | None) -> Response:
    caller = signed_in(csv=False)
    if isinstance(caller, Response):
        return caller
    actions = _actions(caller)
    base = base_url(api)
    write_scope = caller.scope("actions", "write")
    feature: dict[str, Any] = {"type": "Feature", "geometry": None, "properties": {}}
    version = ""
    if action_id is not None:
        feature, version = _read(caller, action_id)
        if not _may_write(caller, feature.get("properties") or {}):
            raise Forbidden("Vous n'avez pas le droit de modifier cette action.")
    elif write_scope.is_empty:
        raise Forbidden("Vous n'avez pas le droit de créer une action.")
    writer = Writer(caller, actions)
    fields = _writable(actions, {f.name for f in writer.readable})
    errors: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    status = HTTPStatus.OK
    values: Mapping[str, Any] = feature.get("properties") or {}
    geometry = feature.get("geometry")
    if request.method == "POST":
        body, problem = _body(fields, request.form, action_id is None)
        arrays = {f.name: request.form.getlist(f.name) for f in fields if f.type == "array"}
        values = {**body["properties"], **arrays}
        geometry = body.get("geometry") if problem is None else None
        try:
            if problem is not None:
                raise ValidationFailed([{"property": "geometry", "message": problem}])
            if action_id is None:
                written = writer.create(body)
                return redirect(f"{base}/actions/{written.key}?enregistre=creee", HTTPStatus.SEE_OTHER)
            writer.update(action_id, body, Mode.PATCH, if_match=request.form.get("version") or None)
            return redirect(f"{base}/actions/{action_id}?enregistre=modifiee", HTTPStatus.SEE_OTHER)
        except ValidationFailed as exc:
            errors = {e["property"]: e["message"] for e in exc.errors}
            labels = {f.name: f.label.fr for f in actions.fields.values()} | {"geometry": "Emprise"}
            problems = [(labels.get(e["property"], e["property"]), e["message"]) for e in exc.errors]
            status = HTTPStatus.BAD_REQUEST
        except PreconditionFailed:
            problems = [("Version", STALE)]
            status = HTTPStatus.PRECONDITION_FAILED
        except Conflict as exc:
            problems = [("Action", exc.message)]
            status = HTTPStatus.CONFLICT
        version = request.form.get("version") or version
    title = display.item_title(actions, feature, "fr") if action_id is not None else "Nouvelle action"
    return _page(
        api,
        "actions/formulaire.html",
        {
            "action_id": action_id,
            "title": title,
            "groups": _groups(actions, fields),
            "values": values,
            "version": version,
            "map": {
                "mode": "edit",
                "geometry": geometry,
                "field": FOOTPRINT,
                "root": base,
                # Only a few outlines: a national writer starts on France.
                "departements": [] if write_scope.nation else sorted(write_scope.departements)[:OUTLINES],
            },
            "footprint": orjson.dumps(geometry).decode() if geometry else "",
            "errors": errors,
            "problems": problems,
            "departements": None if write_scope.nation else sorted(write_scope.departements),
            "page_url": f"{base}/actions/{action_id}/modifier" if action_id else f"{base}/actions/nouvelle",
            "cancel_url": f"{base}/actions/{action_id}" if action_id is not None else f"{base}/actions",
            "list_url": f"{base}/actions",
        },
        status,
    )


def blueprint(api: Any) -> Blueprint:
    """The action pages, rendered with pygeoapi's templates of `api`."""
    bp = Blueprint("action_pages", __name__)

    @bp.get("/actions")
    def listing() -> Response:
        return list_page(api)

    @bp.route("/actions/nouvelle", methods=["GET", "POST"])
    def create() -> Response:
        return form_page(api, None)

    @bp.route("/actions/<int:action_id>", methods=["GET", "POST"])
    def sheet(action_id: int) -> Response:
        return sheet_page(api, action_id)

    @bp.route("/actions/<int:action_id>/modifier", methods=["GET", "POST"])
    def edit(action_id: int) -> Response:
        return form_page(api, action_id)

    return bp
