"""The editing face (OGC API Features Part 4): create, replace, patch and delete items.

Each request is parsed here (the body and its type, `Content-Crs`, `If-Match`, the item's
id: 404 for one that cannot exist) and written through `writing.Writer`, the one write
path: the policy says where the caller may write, close and delete (403 outside; 404 when
the item cannot even be read); `editing` checks the body against the catalog and collects
every problem into one 400; the write runs as the caller's write role with its scopes, so
PostgreSQL refuses what Python let through by mistake; `If-Match` is compared with the
item's version under a row lock (412 when stale).
"""

from __future__ import annotations

import urllib.parse
from http import HTTPStatus
from typing import Any

from flask import Request, Response

from resorption import editing, writing
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.editing import Mode
from resorption.writing import Writer

# sites and actions, and their journals (writing.PARENTS)
WRITABLE = ("sites", "actions", "site_comments", "action_comments")


def key_of(writer: Writer, identifier: str) -> int:
    """The item's id; 404 for one that cannot be an id."""
    if not identifier.isdigit() or len(identifier) > 18:
        raise writer.not_found(identifier)
    return int(identifier)


def create(request: Request, collection: Collection, caller: Caller, base_url: str) -> Response:
    """POST /collections/{id}/items: 201 with the new item's Location and ETag."""
    writer = Writer(caller, collection)
    writer.require("write")  # before reading the body: 403 comes first
    body = editing.parse_body(request.get_data(), request.mimetype)
    crs = editing.parse_content_crs(request.headers.get("Content-Crs"))
    written = writer.create(body, crs)
    headers = {"Location": location_of(base_url, collection, written.key), "ETag": written.version}
    return Response(status=HTTPStatus.CREATED, headers=headers)


def update(request: Request, collection: Collection, caller: Caller, identifier: str, mode: Mode) -> Response:
    """PUT (replace) or PATCH (merge patch) of one item: 204 with the new ETag."""
    writer = Writer(caller, collection)
    key = key_of(writer, identifier)
    writer.require("write")
    body = editing.parse_body(request.get_data(), request.mimetype)
    crs = editing.parse_content_crs(request.headers.get("Content-Crs"))
    written = writer.update(key, body, mode, crs, if_match=request.headers.get("If-Match"))
    return Response(status=HTTPStatus.NO_CONTENT, headers={"ETag": written.version})


def delete(request: Request, collection: Collection, caller: Caller, identifier: str) -> Response:
    """DELETE one item: 204."""
    writer = Writer(caller, collection)
    key = key_of(writer, identifier)
    writer.delete(key, if_match=request.headers.get("If-Match"))
    return Response(status=HTTPStatus.NO_CONTENT)


def allowed_methods(collection: Collection, caller: Caller, identifier: str | None) -> list[str]:
    """The verbs this caller may use on the items (or on one item, given where it lies)."""
    methods = ["GET", "HEAD", "OPTIONS"]
    if collection.id not in WRITABLE:
        return methods
    if identifier is None:
        return [*methods, "POST"] if not caller.scope(collection.id, "write").is_empty else methods
    writer = Writer(caller, collection)
    key = key_of(writer, identifier)
    with caller.reading() as conn:
        head = writing.peek(conn, collection, key)
    if head is None:
        raise writer.not_found(identifier)
    if caller.scope(collection.id, "write").contains(head.departement):
        methods += ["PUT", "PATCH"]
    if caller.scope(collection.id, "delete").contains(head.departement):
        methods.append("DELETE")
    return methods


def location_of(base_url: str, collection: Collection, identifier: Any) -> str:
    """The URL of one item."""
    return f"{base_url}/collections/{collection.id}/items/{urllib.parse.quote(str(identifier), safe='')}"
