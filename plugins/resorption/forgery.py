"""Refusing forged requests: writes from another site, and JSON bodies disguised as forms.

A browser attaches its credentials (the session cookie, Basic credentials it was once
challenged for) to every request it sends to us, whichever page asks. Three checks keep
another site's page from writing with them, whatever the caller authenticates with:

- **Where it comes from.** An unsafe method (POST, PUT, PATCH, DELETE) whose `Origin` is not
  ours (the public URL's origin, or the origin of the host the request was sent to), or is
  `null` (sandboxed frames, `file:` pages, cross-origin redirects), is refused; so is one a
  browser marks `Sec-Fetch-Site: cross-site` or `same-site`. Same-site is refused too: a
  sibling host of the same registrable domain (`autre-service.beta.gouv.fr` beside
  `resorption.beta.gouv.fr`) is another application, with its own authors and its own
  flaws, and `SameSite=Lax` cookies still go with its requests. Clients that send neither
  header (QGIS, GDAL, curl, Python requests) are not browsers and pass.
- **What the body is.** A body of an unsafe method must say it is JSON (`application/json`
  or `application/…+json`): a cross-site HTML form can only send `text/plain`,
  `application/x-www-form-urlencoded` or `multipart/form-data`, and `fetch` without CORS no
  more, so a JSON body that arrives under another type (or none) is a forgery or a mistake,
  refused with 415 before anything parses it. Our own HTML forms (sign-in, sign-out, the
  results of an action, the action form and journal) post `application/x-www-form-urlencoded`
  and are the only routes that read forms. An attachment (`FILE_ENDPOINTS`) is a file sent as
  the body: any type but the three a form can send.
- **The session's token.** A request authenticated by the session cookie also needs the
  session's CSRF token for unsafe methods (`sessions.principal_of_request`).

This module knows Flask's request only; the app calls `check(request, settings)` before
authenticating, so that a forged request costs no credential check.
"""

from __future__ import annotations

import urllib.parse

from flask import Request

from resorption.errors import Forbidden, UnsupportedMediaType
from resorption.settings import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# `Sec-Fetch-Site` values of a request a page of ours (or the user, typing a URL) made.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
FORM_TYPE = "application/x-www-form-urlencoded"
# The endpoints of our HTML forms, which read `FORM_TYPE` bodies.
FORM_ENDPOINTS = frozenset(
    {
        "sessions.login",
        "sessions.logout",
        "action_results.form",
        # the action pages: the form of an action, the journal of its sheet
        "action_pages.create",
        "action_pages.edit",
        "action_pages.sheet",
        # the account pages (web/accounts.py): request, decisions, links, charter, « Mon compte »
        "accounts.access_request",
        "accounts.decide",
        "accounts.user_update",
        "accounts.activation",
        "accounts.reset",
        "accounts.forgotten",
        "accounts.charter_accept",
        "accounts.account_change",
    }
)
# The endpoints whose body is a file, sent as itself (api/attachments.py): any type but the
# ones a form of another site (or `fetch` without CORS) can send, and not none at all.
FILE_ENDPOINTS = frozenset({"attachments.upload"})
SIMPLE_TYPES = frozenset({"", FORM_TYPE, "multipart/form-data", "text/plain"})
# JSON types without the +json suffix: JSON itself, and CQL2 JSON's name before application/cql2+json.
JSON_TYPES = frozenset({"application/json", "application/query-cql-json"})
JSON_TYPES_SAID = (
    "application/json, application/geo+json, application/merge-patch+json, application/cql2+json "
    "ou un autre type application/…+json"
)
DEFAULT_PORTS = {"http": 80, "https": 443}

CROSS_SITE = (
    "Requête refusée : elle a été envoyée par une page d'un autre site ({what}). Les modifications "
    "ne sont acceptées que depuis les pages de Résorption ({ours}) ou depuis un client qui n'est pas "
    "un navigateur (QGIS, GDAL, script)."
)


def check(req: Request, settings: Settings) -> None:
    """Refuse an unsafe request from another site (403) or a body that is not of its type (415)."""
    if req.method not in UNSAFE_METHODS:
        return
    _check_site(req, settings)
    if req.routing_exception is None:  # an unknown address or method is answered 404/405 instead
        _check_body_type(req)


def _check_site(req: Request, settings: Settings) -> None:
    ours = public_origin(settings.public_url)
    fetch_site = (req.headers.get("Sec-Fetch-Site") or "").strip().lower()
    if fetch_site and fetch_site not in OWN_FETCH_SITES:
        raise Forbidden(CROSS_SITE.format(what=f"Sec-Fetch-Site : {fetch_site}", ours=ours))
    origin = req.headers.get("Origin")
    if origin is None:
        return
    allowed = {ours, _origin(f"{req.scheme}://{req.host}")}
    sent = _origin(origin)
    if sent is None or sent not in allowed:
        shown = origin.strip()[:100] or "vide"
        raise Forbidden(CROSS_SITE.format(what=f"Origin : {shown}", ours=ours))


def _check_body_type(req: Request) -> None:
    if not has_body(req):
        return
    mimetype = req.mimetype
    if req.endpoint in FORM_ENDPOINTS:
        if mimetype != FORM_TYPE:
            raise UnsupportedMediaType(
                f"Type de contenu « {mimetype or 'absent'} » non pris en charge : ce formulaire "
                f"s'envoie en {FORM_TYPE}."
            )
        return
    if req.endpoint in FILE_ENDPOINTS:
        if mimetype in SIMPLE_TYPES:
            raise UnsupportedMediaType(
                f"Type de contenu « {mimetype or 'absent'} » non pris en charge pour une pièce jointe : "
                "envoyez le fichier lui-même comme corps de la requête, en application/octet-stream ou "
                "sous son type (le type réel est reconnu d'après le contenu), son nom dans l'en-tête "
                "Content-Disposition."
            )
        return
    if not is_json_type(mimetype):
        raise UnsupportedMediaType(
            f"Type de contenu « {mimetype or 'absent'} » non pris en charge : le corps d'une requête "
            f"est du JSON, annoncé par l'en-tête Content-Type ({JSON_TYPES_SAID})."
        )


def has_body(req: Request) -> bool:
    """Whether the request carries a body (a length above zero, or a chunked one)."""
    if req.content_length:
        return True
    return "chunked" in (req.headers.get("Transfer-Encoding") or "").lower()


def is_json_type(mimetype: str) -> bool:
    """`application/json`, a structured `application/…+json` type (RFC 6839), or CQL2's older name."""
    return mimetype in JSON_TYPES or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def public_origin(public_url: str) -> str:
    """The origin (scheme://host[:port]) of the public URL."""
    return _origin(public_url) or public_url


def _origin(url: str) -> str | None:
    """An origin in one spelling (lower-case scheme and host, the port only when not the default),
    None for `null` or anything that is not an origin."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
