"""Who is calling, from the request's `Authorization` header: three ways in, one principal.

- `Bearer rsp_…`: an API token (random, stored as its SHA-256, with expiry and revocation);
- `Bearer <JWT>`: an OIDC access or ID token, verified against the configured issuer,
  audience and keys (RS256 or ES256 only), its `sub` (or e-mail) mapped to a user;
- `Basic base64(user:secret)`, where the secret is the user's password (argon2id) or one
  of their API tokens: what QGIS and GDAL send;
- no header at all: the anonymous principal.

Every failure gives the same `Unauthorized` error, whatever was wrong, and counts against
the client (its IP address): after `MAX_FAILURES` failures in `FAILURE_WINDOW` seconds,
further attempts get `TooManyAttempts` before any credential is looked at. A success
clears the client's count.

The database is reached as the application's login role, which has no privilege on the
users and tokens: it only calls the SECURITY DEFINER functions of `sql/050_identity.sql`.
A token or Basic sign-in costs one round trip (the failure count and the user together);
nothing about users is cached across requests, so a revoked token or a deactivated user is refused
on the very next request. This module knows nothing of Flask: the app passes the header,
the client address and the settings, and turns our errors into responses.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import secrets
import threading
from pathlib import Path
from typing import Any

import jwt
import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from resorption.database import get_pool
from resorption.errors import DatabaseUnavailable, IdentityProviderUnavailable, TooManyAttempts, Unauthorized
from resorption.identity import ANONYMOUS, Principal
from resorption.settings import Settings

# -- credentials: what a token and a password hash are ----------------------------------

TOKEN_PREFIX = "rsp_"
# Characters of a token kept in clear (`api_tokens.prefix`) to recognise it in lists.
TOKEN_DISPLAY_LENGTH = 8
# Only asymmetric signatures: never `none`, never HS* (a public key is not a secret).
JWT_ALGORITHMS = ("RS256", "ES256")
# Clock skew tolerated on exp, nbf and iat, in seconds.
JWT_LEEWAY = 30
# Failed sign-ins tolerated per client and window; the next attempt is refused.
MAX_FAILURES = 10
FAILURE_WINDOW = 900
# Longer headers are refused before any decoding (a JWT is a few kilobytes at most).
MAX_HEADER_LENGTH = 8192

# argon2id with the library's defaults (RFC 9106 low-memory profile).
PASSWORD_HASHER = PasswordHasher()


def new_token() -> str:
    """A new random API token: `rsp_` and 256 bits of randomness, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What the database keeps of a token: its SHA-256 (tokens are random, a plain hash suffices)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def hash_password(password: str) -> str:
    """The argon2id hash of a password, as stored in `users.password_hash`."""
    return PASSWORD_HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    # Verified when there is no hash to verify, so that an unknown user takes as long as a
    # wrong password. Computed once per process, on first need (not at import).
    return PASSWORD_HASHER.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; as slow when there is no hash at all."""
    try:
        matches = PASSWORD_HASHER.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


# -- the entry point ----------------------------------------------------------------------


def authenticate(authorization: str | None, client: str, settings: Settings) -> Principal:
    """The principal of a request from its `Authorization` header and its client address.

    Returns `ANONYMOUS` when there is no header. Raises `TooManyAttempts` when `client`
    failed too often recently, `Unauthorized` (one generic message) for any bad
    credential, `DatabaseUnavailable` or `IdentityProviderUnavailable` when a service
    the check needs is down.
    """
    if authorization is None or not authorization.strip():
        return ANONYMOUS
    try:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if len(authorization) > MAX_HEADER_LENGTH or not credentials:
            raise _Refused
        scheme = scheme.lower()
        if scheme == "bearer" and credentials.startswith(TOKEN_PREFIX):
            return _by_token(credentials, None, client, settings)
        if scheme == "bearer":
            return _by_jwt(credentials, client, settings)
        if scheme == "basic":
            username, secret = _basic_credentials(credentials)
            if secret.startswith(TOKEN_PREFIX):
                return _by_token(secret, username, client, settings)
            return _by_password(username, secret, client, settings)
        raise _Refused
    except _Refused:
        # A client already over the limit (a malformed header skips the lookup) stays refused.
        if _record_failure(client, settings) > MAX_FAILURES:
            raise TooManyAttempts(retry_after=FAILURE_WINDOW) from None
        raise Unauthorized() from None


class _Refused(Exception):
    """Internal: the credentials are not valid (the caller records and answers 401)."""


def _basic_credentials(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _Refused from None
    username, colon, secret = decoded.partition(":")
    if not colon or not username or not secret:
        raise _Refused
    return username, secret


# -- the database side: one round trip per sign-in ----------------------------------------

# The failure count and the user in one statement. The user's subquery is uncorrelated,
# so PostgreSQL runs it as an InitPlan, only when the CASE needs it: a client over the
# limit never gets its credentials looked up (nor a token marked as used).
_LOOKUP = """
SELECT f.failures,
       CASE WHEN f.failures < %(limit)s
            THEN (SELECT to_jsonb(u) FROM resorption.{function} u LIMIT 1) END AS principal
FROM (SELECT resorption.recent_auth_failures(%(client)s, %(window)s) AS failures) AS f
"""
_BY_TOKEN = _LOOKUP.format(function="user_by_token(%(key)s)")
_BY_USERNAME = _LOOKUP.format(function="user_by_username(%(key)s)")
_BY_OIDC = _LOOKUP.format(function="user_by_oidc(%(key)s, %(mail)s)")


def _lookup(
    settings: Settings, statement: str, client: str, **params: Any
) -> tuple[int, dict[str, Any] | None]:
    """Run one lookup; refuse with `TooManyAttempts` when the client is over the limit."""
    try:
        with get_pool(settings).connection(timeout=10) as conn:
            row = conn.execute(
                statement, {"limit": MAX_FAILURES, "client": client, "window": FAILURE_WINDOW, **params}
            ).fetchone()
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc
    failures, principal = (row[0], row[1]) if row else (0, None)
    if failures >= MAX_FAILURES:
        raise TooManyAttempts(retry_after=FAILURE_WINDOW)
    return failures, principal


def _record_failure(client: str, settings: Settings) -> int:
    """Count one more failure for `client`; returns its failures in the window."""
    failures = _execute(settings, "SELECT resorption.record_auth_failure(%s, %s)", (client, FAILURE_WINDOW))
    return int(failures or 0)


def _succeeded(client: str, failures: int, settings: Settings, row: dict[str, Any], method: str) -> Principal:
    """The principal of a found user; forgets the client's past failures if it had any."""
    if failures:
        _execute(settings, "SELECT resorption.clear_auth_failures(%s)", (client,))
    return principal_from_row(row, method)


def principal_from_row(row: dict[str, Any], method: str) -> Principal:
    """The principal of a `principal_row` of sql/050_identity.sql (also what a web session gives)."""
    departements = row.get("area_departements")
    return Principal(
        username=row["username"],
        user_id=row["user_id"],
        role=row["role"],
        options=frozenset(row.get("options") or ()),
        area_level=row["area_level"],
        area_code=row.get("area_code"),
        area_departements=None if departements is None else frozenset(departements),
        organisation_id=row.get("organisation_id"),
        method=method,
    )


def _execute(settings: Settings, statement: str, params: tuple[Any, ...]) -> Any:
    """Run one statement on the pool in its own transaction; returns the first column."""
    try:
        with get_pool(settings).connection(timeout=10) as conn:
            row = conn.execute(statement, params).fetchone()
            return row[0] if row else None
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc


# -- the ways in --------------------------------------------------------------------------


def _by_token(token: str, username: str | None, client: str, settings: Settings) -> Principal:
    """An API token, alone (Bearer) or with its owner's username (Basic)."""
    failures, row = _lookup(settings, _BY_TOKEN, client, key=token_hash(token))
    if row is None:
        raise _Refused
    if username is not None and not hmac.compare_digest(
        row["username"].encode("utf-8"), username.strip().lower().encode("utf-8")
    ):
        raise _Refused
    return _succeeded(client, failures, settings, row, "token")


def _by_password(username: str, password: str, client: str, settings: Settings) -> Principal:
    """A username and password (Basic); an unknown user costs the same argon2 verification."""
    failures, row = _lookup(settings, _BY_USERNAME, client, key=username.strip())
    if not verify_password(row.get("password_hash") if row else None, password) or row is None:
        raise _Refused
    return _succeeded(client, failures, settings, row, "basic")


def _by_jwt(token: str, client: str, settings: Settings) -> Principal:
    """An OIDC bearer JWT: signature, issuer, audience and expiry checked, then mapped to a user.

    The user is looked up with the claims as sent, in the same round trip as the failure
    count (so that a client over the limit gets no signature check), and the row is used
    only once the very same token has passed every check.
    """
    if not settings.oidc_enabled or token.count(".") != 2:
        raise _Refused
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _Refused from None
    subject = unverified.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _Refused
    failures, row = _lookup(settings, _BY_OIDC, client, key=subject, mail=_email(unverified))
    claims = _verified_claims(token, settings)
    if row is None or claims.get("sub") != subject:
        raise _Refused
    return _succeeded(client, failures, settings, row, "oidc")


def _email(claims: dict[str, Any]) -> str | None:
    """The e-mail a user without an OIDC subject is recognised by, unless the provider says unverified."""
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is False:
        return None
    return email


def _verified_claims(token: str, settings: Settings) -> dict[str, Any]:
    """The claims of a JWT whose signature, issuer, audience and dates are valid."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in JWT_ALGORITHMS:
            raise _Refused
        key = _signing_key(header, settings)
        return jwt.decode(
            token,
            key,
            algorithms=list(JWT_ALGORITHMS),
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            leeway=JWT_LEEWAY,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.PyJWKClientConnectionError as exc:
        raise IdentityProviderUnavailable() from exc
    except jwt.PyJWTError:
        raise _Refused from None


def _signing_key(header: dict[str, Any], settings: Settings) -> jwt.PyJWK:
    """The provider's key that signed the token, by its `kid` (the only key when it has none)."""
    kid = header.get("kid")
    if settings.oidc_jwks_url:
        client = _jwks_client(settings.oidc_jwks_url)
        if kid is None:
            keys = client.get_signing_keys()
            if len(keys) != 1:
                raise _Refused
            return keys[0]
        return client.get_signing_key(str(kid))
    if settings.oidc_jwks_file is None:
        raise _Refused
    keys = [k for k in _jwks_file(settings.oidc_jwks_file).keys if k.public_key_use in ("sig", None)]
    if kid is None:
        if len(keys) != 1:
            raise _Refused
        return keys[0]
    for key in keys:
        if key.key_id == kid:
            return key
    raise _Refused


_jwks_lock = threading.Lock()
_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_jwks_files: dict[Path, tuple[float, jwt.PyJWKSet]] = {}


def _jwks_client(url: str) -> jwt.PyJWKClient:
    """One client per JWKS URL and process: it caches the key set for 5 minutes."""
    with _jwks_lock:
        client = _jwks_clients.get(url)
        if client is None:
            client = _jwks_clients[url] = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=300, timeout=10)
        return client


def _jwks_file(path: Path) -> jwt.PyJWKSet:
    """The key set of a local JWKS file, re-read when the file changes."""
    try:
        mtime = path.stat().st_mtime
        with _jwks_lock:
            cached = _jwks_files.get(path)
            if cached and cached[0] == mtime:
                return cached[1]
            keys = jwt.PyJWKSet.from_dict(json.loads(path.read_text(encoding="utf-8")))
            _jwks_files[path] = (mtime, keys)
            return keys
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise IdentityProviderUnavailable(
            "Les clés du fournisseur d'identité (RESORPTION_OIDC_JWKS_FILE) sont illisibles."
        ) from exc
