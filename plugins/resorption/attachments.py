"""Attachments ("pièces jointes") of sites and journal messages: decrees, reports, photos.

A file is kept in PostgreSQL (sql/180_attachments.sql) beside its parent, a site or a message
of a journal, and read exactly by who reads that parent: row-level security, not Python,
decides (a message's visibility included). Before it is stored, a file is checked by its
content (`file_types`: the type is detected from its bytes, HTML, SVG, executables and
macros are refused) and by its size (`Limits.attachment_max_bytes`); an image is re-encoded
from its pixels alone (`images`: no EXIF, hence no GPS position). Its name is cleaned (a name,
not a path) and ends with an extension of its real type. Every upload, download and deletion
is a row of the audit log.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from resorption import file_types, images, statements
from resorption.caller import Caller
from resorption.errors import Forbidden, InvalidParameter, NotFound, PayloadTooLarge
from resorption.settings import Limits, french_size

SQL = statements.load("attachments")
# What a file hangs on: the collection of its parent, and the attachments' column naming it.
PARENTS: dict[str, str] = {
    "sites": "site_id",
    "site_comments": "site_comment_id",
    "action_comments": "action_comment_id",
}
FILENAME_MAX = 200
_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\\"]+")


@dataclass(frozen=True, slots=True)
class Download:
    """A file as served: its name, its detected type, its bytes."""

    id: int
    filename: str
    media_type: str
    content: bytes


def too_large(limits: Limits) -> PayloadTooLarge:
    """The 413 of a file past `attachment_max_bytes`."""
    return PayloadTooLarge(
        f"La pièce jointe dépasse {french_size(limits.attachment_max_bytes)}, la taille maximale "
        "d'un fichier : réduisez-la (une photo en moins haute définition, un PDF compressé) ou "
        "découpez-la en plusieurs fichiers."
    )


def clean_filename(name: str | None, kind: file_types.FileType) -> str:
    """A file's name as kept: the last part of a path, without control characters, at most
    FILENAME_MAX characters, ending with an extension of its real type."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_IN_NAME.sub("_", name).strip().strip(".")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if f".{extension.lower()}" not in kind.extensions:
        stem = name  # "photo.exe" that is a JPEG becomes "photo.exe.jpg"
        extension = kind.extensions[0][1:]
    stem = (stem or "piece-jointe")[: FILENAME_MAX - len(extension) - 1]
    return f"{stem}.{extension}"


def _list_of(collection: str) -> sql.Composed:
    return SQL.list_of.format(column=sql.Identifier(PARENTS[collection]))


def _not_found(collection: str, item_id: int) -> NotFound:
    return NotFound(f"L'élément « {item_id} » n'existe pas dans la collection « {collection} ».")


def _check_parent(conn: psycopg.Connection, collection: str, item_id: int) -> None:
    """404 when the caller does not read the parent (as when it does not exist)."""
    statement = SQL.parent_exists.format(sql.Identifier("resorption", collection))
    if conn.execute(statement, (item_id,)).fetchone() is None:
        raise _not_found(collection, item_id)


def _as_item(row: tuple[Any, ...], base: str) -> dict[str, Any]:
    attachment_id, filename, media_type, size, uploaded_by, organisation, created_at, may_delete, _ = row
    return {
        "id": attachment_id,
        "filename": filename,
        "media_type": media_type,
        "size": size,
        "uploaded_by": uploaded_by,
        "organisation": organisation,
        "created_at": created_at.isoformat(),
        "may_delete": bool(may_delete),
        "href": f"{base}/attachments/{attachment_id}",
    }


def upload(
    caller: Caller, collection: str, item_id: int, filename: str | None, data: bytes, base: str
) -> dict[str, Any]:
    """Keep one file on a parent the caller may add to; what it became (name, detected type, size).

    404 when the caller does not read the parent; 403 when it reads it but may not add a
    file there; 413 past the size limit; 415 for a type refused by its content.
    """
    limits = caller.settings.limits
    if len(data) > limits.attachment_max_bytes:
        raise too_large(limits)
    if not data:
        raise InvalidParameter(
            "Le fichier envoyé est vide : le corps de la requête est le contenu du fichier."
        )
    if caller.principal.is_anonymous:
        raise _not_found(collection, item_id)
    with caller.reading() as conn:  # a parent out of sight costs no decoding
        _check_parent(conn, collection, item_id)
    kind = file_types.detect(data)
    if kind.image:
        data = images.without_metadata(data, kind, limits)
    name = clean_filename(filename, kind)
    with caller.writing() as conn:
        _check_parent(conn, collection, item_id)
        try:
            with conn.transaction():
                (attachment_id, _) = conn.execute(
                    SQL.insert.format(sql.Identifier(PARENTS[collection])),
                    (item_id, name, kind.media_type, len(data), hashlib.sha256(data).digest(), data),
                ).fetchone()
        except pg_errors.ForeignKeyViolation:
            raise _not_found(collection, item_id) from None
        except pg_errors.InsufficientPrivilege:
            raise Forbidden(_who_may_add(collection)) from None
        listed = conn.execute(_list_of(collection), ([item_id],)).fetchall()
    caller.audit(
        "upload-attachment",
        "attachments",
        attachment_id,
        detail={"parent": collection, "parent_id": item_id, "media_type": kind.media_type, "size": len(data)},
    )
    mine = next(r for r in listed if r[0] == attachment_id)
    return _as_item(mine, base)


def _who_may_add(collection: str) -> str:
    if collection == "sites":
        return (
            "Vous ne pouvez pas joindre de fichier à ce site : seuls ceux qui peuvent le modifier "
            "le peuvent. Joignez-le plutôt à un message du journal du site."
        )
    return (
        "Vous ne pouvez pas joindre de fichier à ce message : seul son auteur le peut, pendant le "
        "délai où il peut encore le modifier."
    )


def listing(caller: Caller, collection: str, item_id: int, base: str) -> list[dict[str, Any]]:
    """The files of a parent the caller reads (404 otherwise), without their content."""
    if caller.principal.is_anonymous:
        raise _not_found(collection, item_id)
    with caller.reading() as conn:
        _check_parent(conn, collection, item_id)
        rows = conn.execute(_list_of(collection), ([item_id],)).fetchall()
    return [_as_item(r, base) for r in rows]


def of_messages(
    caller: Caller, collection: str, message_ids: list[int], base: str
) -> dict[int, list[dict[str, Any]]]:
    """The files of several messages of a journal the caller reads, by message (the sheet)."""
    if not message_ids or caller.principal.is_anonymous:
        return {}
    found: dict[int, list[dict[str, Any]]] = {}
    with caller.reading() as conn:
        for row in conn.execute(_list_of(collection), (message_ids,)).fetchall():
            found.setdefault(row[-1], []).append(_as_item(row, base))
    return found


def download(caller: Caller, attachment_id: int) -> Download:
    """One file the caller reads, its download audited; 404 otherwise (as a missing one)."""
    if caller.principal.is_anonymous:
        raise _missing(attachment_id)
    with caller.reading() as conn:
        row = conn.execute(SQL.content, (attachment_id,)).fetchone()
    if row is None:
        raise _missing(attachment_id)
    filename, media_type, size, content, site_id, site_comment_id, action_comment_id = row
    parent = next(
        (c, i)
        for c, i in zip(PARENTS, (site_id, site_comment_id, action_comment_id), strict=True)
        if i is not None
    )
    # Audited before a byte leaves: a download the log cannot record does not happen.
    caller.audit(
        "download-attachment",
        "attachments",
        attachment_id,
        detail={"parent": parent[0], "parent_id": parent[1], "media_type": media_type, "size": size},
    )
    return Download(attachment_id, filename, media_type, bytes(content))


def _missing(attachment_id: int) -> NotFound:
    return NotFound(f"La pièce jointe « {attachment_id} » n'existe pas.")


def delete(caller: Caller, attachment_id: int) -> None:
    """Delete a file: its uploader within the journal's edit delay, or a moderator (403
    otherwise; 404 when the caller does not read it)."""
    if caller.principal.is_anonymous:
        raise _missing(attachment_id)
    with caller.writing() as conn:
        if conn.execute(SQL.delete, (attachment_id,)).fetchone() is None:
            if conn.execute(SQL.exists, (attachment_id,)).fetchone() is None:
                raise _missing(attachment_id)
            raise Forbidden(
                "Vous ne pouvez pas supprimer cette pièce jointe : seuls la personne qui l'a déposée "
                "(pendant le délai de modification du journal) et les administrateurs le peuvent."
            )
    caller.audit("delete-attachment", "attachments", attachment_id)
