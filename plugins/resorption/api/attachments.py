"""Attachments over HTTP: upload, list, download and delete the files of sites and messages.

Routes (registered before pygeoapi's, so that ours win the URL match):

- `POST /collections/{sites|site_comments|action_comments}/items/{id}/attachments`: the body
  is the file itself, its name in `Content-Disposition: attachment; filename*=UTF-8''…` (or
  `filename="…"`). The body's `Content-Type` is the client's word and is not trusted (the type
  is detected from the content), but it must not be one a form of another site can send
  (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`) nor be missing:
  send `application/octet-stream` or the file's type (forgery.FILE_ENDPOINTS). 201 with the
  file's description and `Location`.
- `GET …/attachments`: the files of the parent (JSON: id, name, detected type, size, who
  uploaded it and when, the download link); 404 when the caller does not read the parent.
- `GET /attachments/{id}`: the file, as an attachment (`Content-Disposition: attachment;
  filename*=UTF-8''…`), with its detected type, `nosniff` and `private, no-store`; every
  download is audited; 404 for whoever does not read its parent, as for a missing id.
- `DELETE /attachments/{id}`: its uploader within the journal's edit delay, or a moderator.

The size limit is checked by the app before the body is read, from its `Content-Length`
(`check_upload_size`); a chunked body is read up to the limit of all bodies, then refused.
"""

from __future__ import annotations

import urllib.parse
from http import HTTPStatus

import orjson
from flask import Blueprint, Request, Response, request
from werkzeug.http import parse_options_header

from resorption import attachments
from resorption.caller import Caller, current_settings
from resorption.errors import NotFound
from resorption.settings import Limits

blueprint = Blueprint("attachments", __name__)
# The endpoints whose body is a file (the app and forgery.py treat them apart).
UPLOAD_ENDPOINT = "attachments.upload"
PARENTS_PATH = "/collections/<path:collection_id>/items/<path:item_id>/attachments"


def _base() -> str:
    return current_settings().public_url.rstrip("/")


def _parent(collection_id: str, item_id: str) -> int:
    """The parent's id; any collection without attachments, or an id that is no number, is absent."""
    if collection_id not in attachments.PARENTS or not item_id.isdigit() or len(item_id) > 18:
        raise NotFound("Cette adresse n'existe pas.")
    return int(item_id)


def _json(body: object, status: int = HTTPStatus.OK, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def check_upload_size(req: Request, limits: Limits) -> None:
    """413 before reading a file announced larger than the attachments' limit."""
    length = req.content_length
    if length is not None and length > limits.attachment_max_bytes:
        raise attachments.too_large(limits)


def _filename(req: Request) -> str | None:
    """The file's name from `Content-Disposition` (RFC 6266 / 5987: `filename*` wins)."""
    raw = req.headers.get("Content-Disposition")
    if not raw:
        return None
    _, options = parse_options_header(raw)
    name = options.get("filename")
    # werkzeug leaves an empty `filename*=UTF-8''` undecoded
    return None if name is None or name.upper() == "UTF-8''" else name


@blueprint.post(PARENTS_PATH, endpoint="upload")
def upload(collection_id: str, item_id: str) -> Response:
    """Keep the body as a file of the parent."""
    parent = _parent(collection_id, item_id)
    # Read by the app already, up to the bodies' limit (a chunked one has no length to check
    # first); past the attachments' own limit, the core refuses it.
    data = request.get_data(cache=True)
    item = attachments.upload(Caller.of_request(), collection_id, parent, _filename(request), data, _base())
    return _json(item, HTTPStatus.CREATED, {"Location": item["href"]})


@blueprint.get(PARENTS_PATH, endpoint="listing")
def listing(collection_id: str, item_id: str) -> Response:
    """The files of a parent the caller reads."""
    parent = _parent(collection_id, item_id)
    items = attachments.listing(Caller.of_request(), collection_id, parent, _base())
    self_href = f"{_base()}/collections/{collection_id}/items/{parent}/attachments"
    return _json(
        {
            "attachments": items,
            "links": [
                {"rel": "self", "href": self_href, "type": "application/json"},
                {"rel": "up", "href": f"{_base()}/collections/{collection_id}/items/{parent}"},
            ],
        }
    )


def content_disposition(filename: str) -> str:
    """`attachment`, an ASCII fallback name and the real name in UTF-8 (RFC 6266, RFC 8187)."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


@blueprint.get("/attachments/<attachment_id>", endpoint="download")
def download(attachment_id: str) -> Response:
    """The file, to save (never to display), with the type detected when it was kept."""
    if not attachment_id.isdigit() or len(attachment_id) > 18:
        raise NotFound(f"La pièce jointe « {attachment_id[:40]} » n'existe pas.")
    found = attachments.download(Caller.of_request(), int(attachment_id))
    media_type = "text/plain; charset=utf-8" if found.media_type == "text/plain" else found.media_type
    response = Response(found.content, content_type=media_type)
    response.headers["Content-Disposition"] = content_disposition(found.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Download-Options"] = "noopen"
    return response


@blueprint.delete("/attachments/<attachment_id>", endpoint="delete")
def delete(attachment_id: str) -> Response:
    """Delete a file (its uploader within the delay, or a moderator)."""
    if not attachment_id.isdigit() or len(attachment_id) > 18:
        raise NotFound(f"La pièce jointe « {attachment_id[:40]} » n'existe pas.")
    attachments.delete(Caller.of_request(), int(attachment_id))
    return Response(status=HTTPStatus.NO_CONTENT)
