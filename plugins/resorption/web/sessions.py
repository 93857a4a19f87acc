"""Browser sign-in: server-side sessions behind an HttpOnly cookie, with a CSRF token.

`GET /connexion` shows the form (identifiant, mot de passe: a personal token is accepted
as the password, as with HTTP Basic); `POST /connexion` checks the credentials exactly as
Basic does (same argon2 check, same failure throttle), opens a session and sets the
`resorption_session` cookie. The database keeps only the SHA-256 of the session id
(sql/110_web_sessions.sql); a session ends after `IDLE_SECONDS` without a request or
`ABSOLUTE_SECONDS` after it opened, whichever comes first.

A request carrying the cookie (and no Authorization header) is the session's user. With
an unsafe method it must also carry the session's CSRF token (header `X-CSRF-Token`, or
form field `csrf` for our HTML forms): a cookie is sent by the browser whatever page asks,
the token only by our pages (they read it from `<meta name="csrf-token">`). Writes from
another site are refused before this, whatever the credentials (`forgery`).

A browser that must sign in (it asks for HTML: `f=html`, or an `Accept` that prefers
`text/html`) is sent to the form (`sign_in_redirect`), never given a Basic challenge: a
browser keeps Basic credentials and sends them with every later request, whichever site
makes it. API clients (QGIS, GDAL, scripts) keep the 401 and its challenge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import psycopg
from flask import Blueprint, Request, Response, current_app, g, redirect, render_template, request
from psycopg import sql

from resorption import statements
from resorption.authentication import authenticate, principal_from_row
from resorption.caller import Caller
from resorption.database import pooled
from resorption.errors import DatabaseUnavailable, Forbidden, TooManyAttempts, Unauthorized
from resorption.identity import ANONYMOUS, Principal
from resorption.lifecycle import charter_changed, load_charter
from resorption.settings import Settings

SQL = statements.load("web_sessions")

SESSION_COOKIE = "resorption_session"
# A short-lived cookie matched by the sign-in form's hidden field (no login CSRF).
LOGIN_COOKIE = "resorption_connexion"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
IDLE_SECONDS = 8 * 3600
ABSOLUTE_SECONDS = 7 * 24 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_NEXT = "/carte"
# Longer credentials are refused before any check (the Authorization header allows 8 KiB).
MAX_CREDENTIAL_LENGTH = 4096
# The endpoints of the sign-in and sign-out pages (this module's blueprint).
OWN_ENDPOINTS = frozenset(
    {"sessions.login_form", "sessions.login", "sessions.logout_form", "sessions.logout"}
)

CSRF_REFUSED = (
    "Requête refusée : le jeton anti-falsification (en-tête X-CSRF-Token) manque ou ne correspond pas "
    "à votre session. Rechargez la page, puis recommencez."
)
WRONG_CREDENTIALS = (
    "Identifiant ou mot de passe incorrect (un jeton personnel peut servir de mot de passe). "
    "Vérifiez votre saisie, puis réessayez."
)


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live browser session: its user and the token its unsafe requests must send back."""

    principal: Principal
    csrf_token: str


def session_hash(session_id: str) -> bytes:
    """What the database keeps of a session id: its SHA-256 (ids are random, a plain hash suffices)."""
    return hashlib.sha256(session_id.encode("utf-8")).digest()


def _one(settings: Settings, statement: sql.SQL, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Run one statement as the application's login role; the first row."""
    try:
        with pooled(settings) as conn:
            return conn.execute(statement, params).fetchone()
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc


def open_session(principal: Principal, client: str, settings: Settings) -> tuple[str, str]:
    """A new session for a signed-in user: (session id for the cookie, CSRF token)."""
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    row = _one(
        settings,
        SQL.open_session,
        (principal.user_id, session_hash(session_id), csrf_token, IDLE_SECONDS, ABSOLUTE_SECONDS, client),
    )
    if not row or not row[0]:
        raise Unauthorized(challenge=False)
    return session_id, csrf_token


def find_session(session_id: str, settings: Settings) -> WebSession | None:
    """The live session of a cookie value, or None (unknown, idle, expired, inactive user)."""
    if not session_id or len(session_id) > 128:
        return None
    row = _one(
        settings,
        SQL.session_of,
        (session_hash(session_id),),
    )
    if row is None:
        return None
    return WebSession(principal_from_row(row[0], "session"), row[1])


def close_session(session_id: str, settings: Settings) -> None:
    """End a session (sign-out); nothing happens for an unknown one."""
    if session_id and len(session_id) <= 128:
        _one(settings, SQL.close_session, (session_hash(session_id),))


def principal_of_request(req: Request, client: str, settings: Settings, defer: bool = False) -> Principal:
    """The caller: the Authorization header when there is one, else the session cookie.

    A stale cookie is an anonymous caller (the map then sends to /connexion). With a live
    session, an unsafe method without the session's CSRF token is refused (403). `defer`: as
    in `authentication.authenticate`.
    """
    # The sign-in and sign-out pages are about the cookie: credentials a browser may still send
    # in a header (stale Basic ones) must not stand between it and the form.
    own_page = req.endpoint in OWN_ENDPOINTS
    authorization = None if own_page else req.headers.get("Authorization")
    session_id = req.cookies.get(SESSION_COOKIE)
    if (authorization and authorization.strip()) or not session_id:
        return authenticate(authorization, client, settings, defer=defer)
    session = find_session(session_id, settings)
    if session is None:
        return ANONYMOUS
    g.web_session = session
    # The sign-in form has its own anti-CSRF pair (LOGIN_COOKIE): it may replace a live session.
    signing_in = req.path == "/connexion"
    if req.method in UNSAFE_METHODS and not signing_in and not _csrf_matches(req, session.csrf_token):
        raise Forbidden(CSRF_REFUSED)
    return session.principal


def wants_html(req: Request) -> bool:
    """Whether a browser asks: `f=html`, or an `Accept` that prefers `text/html` to JSON."""
    if req.args.get("f") == "html":
        return True
    accept = req.accept_mimetypes
    html = accept["text/html"]
    return html > 0 and html > max(accept["application/json"], accept["application/geo+json"])


def sign_in_redirect(req: Request) -> Response:
    """303 to the sign-in form, which comes back to the page asked for once signed in."""
    back = safe_next(req.full_path.rstrip("?"))
    query = urllib.parse.urlencode({"suivant": back})
    return redirect(f"{root_path()}/connexion?{query}", code=HTTPStatus.SEE_OTHER)


def current_session() -> WebSession | None:
    """The browser session of the running request, if it came with one."""
    return g.get("web_session")


def _csrf_matches(req: Request, expected: str) -> bool:
    sent = req.headers.get(CSRF_HEADER)
    if sent is None and req.mimetype == "application/x-www-form-urlencoded":
        sent = req.form.get(CSRF_FIELD)
    return bool(sent) and hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8"))


def safe_next(target: str | None) -> str:
    """`suivant` when it is a path of this site, else the map: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return DEFAULT_NEXT
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return DEFAULT_NEXT
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


# -- the pages ------------------------------------------------------------------------------

blueprint = Blueprint("sessions", __name__)


def _settings() -> Settings:
    return current_app.config["RESORPTION_SETTINGS"]


def cookie_options(public_url: str) -> dict[str, Any]:
    """The session cookie's attributes: HttpOnly, SameSite=Lax, whole site; Secure behind https."""
    return {"path": "/", "httponly": True, "samesite": "Lax", "secure": public_url.startswith("https://")}


def _secure() -> bool:
    return cookie_options(_settings().public_url)["secure"]


def root_path() -> str:
    """The public URL's path (empty at the root of a host): our pages' links start with it."""
    return urllib.parse.urlsplit(_settings().public_url).path.rstrip("/")


@blueprint.app_context_processor
def _page_context() -> dict[str, Any]:
    # Our Flask templates (sign-in, map) link from the public root; pygeoapi's have their own.
    return {"root": root_path()}


def _login_page(status: int = HTTPStatus.OK, error: str | None = None, username: str = "") -> Response:
    """The sign-in form, with a fresh anti-CSRF pair (cookie + hidden field)."""
    token = secrets.token_urlsafe(24)
    html = render_template(
        "connexion.html",
        error=error,
        username=username,
        login_token=token,
        suivant=safe_next(request.values.get("suivant")),
        signed_out=request.args.get("deconnecte") == "1",
        user=current_session().principal if current_session() else None,
    )
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=1800, path="/connexion", secure=_secure(), httponly=True, samesite="Lax"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blueprint.get("/connexion")
def login_form() -> Response:
    """The sign-in form."""
    return _login_page()


@blueprint.post("/connexion")
def login() -> Response:
    """Check the credentials as HTTP Basic does, open a session, go on to `suivant`."""
    username = (request.form.get("identifiant") or "").strip()
    password = request.form.get("mot_de_passe") or ""
    sent, expected = request.form.get(CSRF_FIELD) or "", request.cookies.get(LOGIN_COOKIE) or ""
    if not sent or not hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")):
        return _login_page(
            HTTPStatus.FORBIDDEN,
            "Le formulaire a expiré ou a été envoyé depuis une autre page : "
            "saisissez à nouveau vos identifiants.",
            username,
        )
    if not username or not password:
        return _login_page(
            HTTPStatus.BAD_REQUEST, "Saisissez votre identifiant et votre mot de passe.", username
        )
    if ":" in username or len(username) + len(password) > MAX_CREDENTIAL_LENGTH:
        return _login_page(HTTPStatus.UNAUTHORIZED, WRONG_CREDENTIALS, username)
    client = request.remote_addr or "inconnu"
    basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    try:
        principal = authenticate(f"Basic {basic}", client, _settings())
    except TooManyAttempts as exc:
        response = _login_page(HTTPStatus.TOO_MANY_REQUESTS, exc.message, username)
        response.headers.update(exc.headers)
        return response
    except Unauthorized:
        return _login_page(HTTPStatus.UNAUTHORIZED, WRONG_CREDENTIALS, username)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a new sign-in replaces the session the browser had (no fixation)
        close_session(previous, _settings())
    session_id, _ = open_session(principal, client, _settings())
    target = safe_next(request.form.get("suivant"))
    if charter_changed(Caller.of(principal, _settings()), load_charter(_settings().charter_path)):
        # the charter changed since this user accepted it: accepted again before going on
        target = f"{root_path()}/charte?" + urllib.parse.urlencode({"suivant": target})
    response = redirect(target, code=HTTPStatus.SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=ABSOLUTE_SECONDS, **cookie_options(_settings().public_url)
    )
    response.delete_cookie(LOGIN_COOKIE, path="/connexion")
    return response


@blueprint.get("/deconnexion")
def logout_form() -> Response | Any:
    """A small confirmation form (sign-out is a POST, protected by the CSRF token)."""
    session = current_session()
    if session is None:
        return redirect(f"{root_path()}/connexion", code=HTTPStatus.SEE_OTHER)
    html = render_template("connexion_fin.html", csrf_token=session.csrf_token, user=session.principal)
    return Response(html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


@blueprint.post("/deconnexion")
def logout() -> Response:
    """End the session (the CSRF token was checked before this view runs) and forget the cookie."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        close_session(session_id, _settings())
    response = redirect(f"{root_path()}/connexion?deconnecte=1", code=HTTPStatus.SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, **cookie_options(_settings().public_url))
    return response
