"""The editing face (OGC API Features Part 4): create, replace, patch and delete items.

Each request goes parse → authorize → validate → write → audit:
- the policy says where the caller may write, close and delete (403 outside; 404 when the
  item cannot even be read);
- `editing` checks the body against the catalog and collects every problem into one 400;
- the write runs in a read-write transaction as the caller's write role, with the
  scopes set for row-level security, so PostgreSQL refuses what Python let through by
  mistake; `If-Match` is compared with the item's version under a row lock (412 when
  stale), so two editors never overwrite each other silently.
"""

from __future__ import annotations

import urllib.parse
from http import HTTPStatus
from typing import Any

import orjson
import psycopg
from flask import Request, Response

from resorption import editing
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.editing import Change, Mode
from resorption.errors import Forbidden, NotFound
from resorption.query import FeatureQuery, item_statement

WRITABLE = ("sites", "actions")


class _Writer:
    """One write request: the caller, what they may do, and the database session."""

    def __init__(self, collection: Collection, caller: Caller) -> None:
        self.collection = collection
        self.caller = caller
        self.readable = caller.readable_fields(collection)

    def scope(self, action: str) -> Any:
        return self.caller.scope(self.collection.id, action)

    def require(self, action: str) -> None:
        """403 when the caller may not do `action` anywhere."""
        self.caller.require(action, self.collection.id)

    def transaction(self) -> Any:
        return self.caller.writing()

    def key(self, identifier: str) -> int:
        if not identifier.isdigit() or len(identifier) > 18:
            raise NotFound(self.not_found(identifier))
        return int(identifier)

    def not_found(self, identifier: str) -> str:
        return f"L'élément « {identifier} » n'existe pas dans la collection « {self.collection.id} »."

    def check_place(self, departement: str | None, action: str = "write") -> None:
        """403 when `departement` is outside the caller's scope for `action`."""
        self.caller.check_place(departement, action, self.collection.id)

    def audit(self, action: str, identifier: Any, change: Change | None) -> None:
        groups = change.groups(self.collection) if change else frozenset()
        self.caller.audit(action, self.collection.id, identifier, groups)


def _departement(conn: psycopg.Connection, w: _Writer, change: Change, current_dep: str | None) -> str | None:
    """Where the written item will lie; derives a site's commune (or an action's département)."""
    place = editing.locate(conn, w.collection, change)
    values = change.values
    if w.collection.id == "sites":
        commune = values.get("commune_code")
        if commune is editing.REMOVED or (commune is None and change.geometry is not None):
            # Not given: the commune of the location.
            if place.commune is None:
                if change.geometry is not None and not change.errors:
                    change.error("geometry", "l'emplacement n'est dans aucune commune française.")
                values.pop("commune_code", None)
            else:
                values["commune_code"] = place.commune
                commune = place.commune
        if isinstance(commune, str):
            departement = editing.commune_departement(conn, commune)
            if departement is None:
                change.error("commune_code", f"commune « {commune} » inconnue.")
            return departement
        return current_dep
    departement = values.get("departement_code")
    if departement is editing.REMOVED or (departement is None and current_dep is None):
        if place.departement is None:
            if change.geometry is None:
                change.error("departement_code", "valeur obligatoire (ou donnez une emprise en France).")
            values.pop("departement_code", None)
            return None
        values["departement_code"] = place.departement
        return place.departement
    if isinstance(departement, str):
        if not editing.departement_exists(conn, departement):
            change.error("departement_code", f"département « {departement} » inconnu.")
        return departement
    return current_dep


def _check_close(w: _Writer, change: Change, departement: str | None, old_status: str | None) -> None:
    status = change.values.get("status")
    if w.collection.id != "sites" or not isinstance(status, str) or status == "open":
        return
    if old_status in (None, "open"):
        w.check_place(departement, "close")


def create(request: Request, collection: Collection, caller: Caller, base_url: str) -> Response:
    """POST /collections/{id}/items: 201 with the new item's Location and ETag."""
    w = _Writer(collection, caller)
    w.require("write")
    body = editing.parse_body(request.get_data(), request.mimetype)
    crs = editing.parse_content_crs(request.headers.get("Content-Crs"))
    with w.transaction() as conn:
        columns = editing.table_columns(conn, collection.table)
        change = editing.validate(collection, w.readable, columns, body, Mode.CREATE, crs)
        departement = _departement(conn, w, change, None)
        change.fail_if_invalid()
        w.check_place(departement)
        _check_close(w, change, departement, None)
        statement, params = editing.insert_statement(collection, columns, change)
        with editing.write_errors(collection):
            identifier, version = conn.execute(statement, params).fetchone()
    w.audit("create", identifier, change)
    headers = {"Location": location_of(base_url, collection, identifier), "ETag": version}
    return Response(status=HTTPStatus.CREATED, headers=headers)


def update(request: Request, collection: Collection, caller: Caller, identifier: str, mode: Mode) -> Response:
    """PUT (replace) or PATCH (merge patch) of one item: 204 with the new ETag."""
    w = _Writer(collection, caller)
    key = w.key(identifier)
    w.require("write")
    body = editing.parse_body(request.get_data(), request.mimetype)
    crs = editing.parse_content_crs(request.headers.get("Content-Crs"))
    with w.transaction() as conn:
        head = conn.execute(editing.head_statement(collection, lock=False), (key,)).fetchone()
        if head is None:
            raise NotFound(w.not_found(identifier))
        w.check_place(head[0])
        current_dep, old_status, version = conn.execute(
            editing.head_statement(collection, lock=True), (key,)
        ).fetchone()
        editing.if_match(request.headers.get("If-Match"), version)
        columns = editing.table_columns(conn, collection.table)
        statement, params = item_statement(FeatureQuery(collection=collection, readable=w.readable), key)
        current = orjson.loads(conn.execute(statement, params).fetchone()[0])
        change = editing.validate(collection, w.readable, columns, body, mode, crs, current)
        departement = _departement(conn, w, change, current_dep)
        change.fail_if_invalid()
        w.check_place(departement)
        _check_close(w, change, departement, old_status)
        statement, params = editing.update_statement(collection, columns, change, key)
        with editing.write_errors(collection):
            (new_version,) = conn.execute(statement, params).fetchone()
    w.audit("update", key, change)
    return Response(status=HTTPStatus.NO_CONTENT, headers={"ETag": new_version})


def delete(request: Request, collection: Collection, caller: Caller, identifier: str) -> Response:
    """DELETE one item: 204."""
    w = _Writer(collection, caller)
    key = w.key(identifier)
    w.require("delete")
    with w.transaction() as conn:
        head = conn.execute(editing.head_statement(collection, lock=False), (key,)).fetchone()
        if head is None:
            raise NotFound(w.not_found(identifier))
        w.check_place(head[0], "delete")
        (_, _, version) = conn.execute(editing.head_statement(collection, lock=True), (key,)).fetchone()
        editing.if_match(request.headers.get("If-Match"), version)
        with editing.write_errors(collection):
            deleted = conn.execute(editing.delete_statement(collection), (key,)).fetchone()
        if deleted is None:  # row-level security said no
            w.check_place(None)
            raise Forbidden("Vous n'avez pas le droit de supprimer cet élément.")
    w.audit("delete", key, None)
    return Response(status=HTTPStatus.NO_CONTENT)


def allowed_methods(collection: Collection, caller: Caller, identifier: str | None) -> list[str]:
    """The verbs this caller may use on the items (or on one item, given where it lies)."""
    methods = ["GET", "HEAD", "OPTIONS"]
    if collection.id not in WRITABLE:
        return methods
    w = _Writer(collection, caller)
    if identifier is None:
        return [*methods, "POST"] if not w.scope("write").is_empty else methods
    key = w.key(identifier)
    with caller.reading() as conn:
        head = conn.execute(editing.head_statement(collection, lock=False), (key,)).fetchone()
    if head is None:
        raise NotFound(w.not_found(identifier))
    if w.scope("write").contains(head[0]):
        methods += ["PUT", "PATCH"]
    if w.scope("delete").contains(head[0]):
        methods.append("DELETE")
    return methods


def location_of(base_url: str, collection: Collection, identifier: Any) -> str:
    """The URL of one item."""
    return f"{base_url}/collections/{collection.id}/items/{urllib.parse.quote(str(identifier), safe='')}"
