"""Who is calling, from the request's `Authorization` header: three ways in, one principal.

- `Bearer rsp_…`: an API token (random, stored as its SHA-256, with expiry and revocation);
- `Bearer <JWT>`: an OIDC access or ID token, verified against the configured issuer,
  audience and keys (RS256 or ES256 only), its `sub` (or e-mail) mapped to a user;
- `Basic base64(user:secret)`, where the secret is the user's password (argon2id) or one
  of their API tokens: what QGIS and GDAL send;
- no header at all: the anonymous principal.

Every failure gives the same `Unauthorized` error, whatever was wrong, and is counted:
a password against its username and the client's address, a bad token, JWT or malformed
header against the address. A throttled password attempt gets `TooManyAttempts` (429,
Retry-After) before its account is looked at; a bad token from a throttled address gets it
instead of a 401, while valid tokens always pass. `throttle` says how, and why so.

The database is reached as the application's login role, which has no privilege on the
users, tokens and counters: it only calls the SECURITY DEFINER functions of
`sql/050_identity.sql` and `sql/055_sign_in_throttle.sql`. A sign-in costs one round trip
(the throttle and the user together), one more to record a failure (or, now and then, a
success). An API token's principal is remembered by each worker for a minute, but checked on
every request against the database (`token_user_version`: one index lookup), so that a
revoked or expired token or a deactivated user is refused on the very next request, in every
worker, and a user whose role, options or area changed is looked up again. This module knows
nothing of Flask: the app passes the header, the client address and the settings, and turns
our errors into responses.
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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import sql

from resorption import database, statements, throttle
from resorption.database import pooled
from resorption.errors import DatabaseUnavailable, IdentityProviderUnavailable, TooManyAttempts, Unauthorized
from resorption.identity import ANONYMOUS, Principal
from resorption.settings import Settings

SQL = statements.load("authentication")

# -- credentials: what a token and a password hash are ----------------------------------

TOKEN_PREFIX = "rsp_"
# Characters of a token kept in clear (`api_tokens.prefix`) to recognise it in lists.
TOKEN_DISPLAY_LENGTH = 8
# Only asymmetric signatures: never `none`, never HS* (a public key is not a secret).
JWT_ALGORITHMS = ("RS256", "ES256")
# Clock skew tolerated on exp, nbf and iat, in seconds.
JWT_LEEWAY = 30
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


def authenticate(
    authorization: str | None, client: str, settings: Settings, defer: bool = False
) -> Principal:
    """The principal of a request from its `Authorization` header and its client address.

    Returns `ANONYMOUS` when there is no header. Raises `TooManyAttempts` when the
    attempt is throttled (`throttle`), `Unauthorized` (one generic message) for any bad
    credential, `DatabaseUnavailable` or `IdentityProviderUnavailable` when a service
    the check needs is down. With `defer`, the check of a remembered token is left pending
    (`database.defer`): the request's first read sends it in its own round trip, and the
    check raises Unauthorized, or `PrincipalChanged` when the user changed, before anything
    read leaves the process; whoever defers must `database.settle` before answering.
    """
    if authorization is None or not authorization.strip():
        return ANONYMOUS
    address = throttle.address_key(client)
    try:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if len(authorization) > MAX_HEADER_LENGTH or not credentials:
            raise _Refused
        scheme = scheme.lower()
        if scheme == "bearer" and credentials.startswith(TOKEN_PREFIX):
            return _by_token(credentials, None, settings, address if defer else None)
        if scheme == "bearer":
            return _by_jwt(credentials, settings)
        if scheme == "basic":
            username, secret = _basic_credentials(credentials)
            if secret.startswith(TOKEN_PREFIX):  # never a password (accounts.check_password)
                return _by_token(secret, username, settings, address if defer else None)
            return _by_password(username, secret, address, settings)
        raise _Refused
    except _Refused:
        # A bad token, JWT or header: counted against the address, 429 while it waits.
        wait = _execute(settings, SQL.record_token_failure, (address, _RULES))
        if wait:
            raise TooManyAttempts(retry_after=int(wait)) from None
        raise Unauthorized() from None


class _Refused(Exception):
    """Internal: the token or header is not valid (the caller counts it and answers 401)."""


class PrincipalChanged(Exception):
    """A deferred check found the token valid but its user changed (role, options, area): the
    request was read as who the user was, and must be authenticated and answered again."""


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

_RULES = throttle.RULES_JSON


def _one(settings: Settings, statement: sql.SQL, params: Any) -> tuple[Any, ...] | None:
    """Run one statement on the pool, a transaction of its own (autocommit: one round trip
    instead of BEGIN, the statement and COMMIT); its first row."""
    try:
        with pooled(settings) as conn:
            conn.autocommit = True
            try:
                return conn.execute(statement, params).fetchone()
            finally:
                conn.autocommit = False
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc


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


def principal_of_user(username: str, settings: Settings, method: str = "cli") -> Principal | None:
    """The principal of an active user, as if they had signed in (command-line tools); None if unknown."""
    try:
        with pooled(settings) as conn:
            row = conn.execute(SQL.user_by_username, (username,)).fetchone()
    except (psycopg.OperationalError, TimeoutError) as exc:
        raise DatabaseUnavailable() from exc
    return principal_from_row(row[0], method) if row else None


def password_hash_of(username: str, settings: Settings) -> str | None:
    """The argon2id hash of an active user (to check the current password before a change)."""
    row = _execute(settings, SQL.user_by_username, (username,))
    return row.get("password_hash") if row else None


def _execute(settings: Settings, statement: sql.SQL, params: Any) -> Any:
    """Run one statement on the pool in its own transaction; returns the first column."""
    row = _one(settings, statement, params)
    return row[0] if row else None


# -- the ways in --------------------------------------------------------------------------


def _by_token(token: str, username: str | None, settings: Settings, deferred_for: str | None) -> Principal:
    """An API token, alone (Bearer) or with its owner's username (Basic); `deferred_for`: the
    client's address key, when the check of a remembered token may be deferred."""
    principal = _token_principal(token_hash(token), settings, deferred_for)
    if username is not None and not hmac.compare_digest(
        principal.username.encode("utf-8"), username.strip().lower().encode("utf-8")
    ):
        raise _Refused
    return principal


# -- remembered tokens: the principal of a token, checked on every request ------------------

# How long a worker uses a token's principal before looking the token up in full again: the
# check of every request sees changes to the user's row, not to the territories its area
# widens to (sql/231_token_check.sql).
REMEMBER_SECONDS = 60.0
_REMEMBERED_MAX = 10_000


@dataclass(frozen=True, slots=True)
class _Remembered:
    version: str  # of the user's row when the principal was read (token_user_version)
    principal: Principal
    looked_up: float  # time.monotonic()


_remembered: dict[tuple[str, bytes], _Remembered] = {}
_remembered_lock = threading.Lock()


def _token_principal(hashed: bytes, settings: Settings, deferred_for: str | None = None) -> Principal:
    """The principal of a token's hash, remembered while the database says it is unchanged.

    Every request asks the database for the token's `token_user_version` (NULL: revoked,
    expired or its user inactive, refused at once whatever this worker remembers); the
    remembered principal serves only when the version is the one read with it. With
    `deferred_for` (the client's address key), a remembered principal's check is left pending
    (`database.Precheck`) instead of costing a round trip of its own.
    """
    key = (settings.app_database_url, hashed)
    known = _remembered.get(key)
    if known is not None and time.monotonic() - known.looked_up < REMEMBER_SECONDS:
        if deferred_for is not None:
            accept = functools.partial(_accept_version, key, known.version, settings, deferred_for)
            database.defer(database.Precheck(SQL.token_user_version, (hashed,), accept))
            return known.principal
        version = _execute(settings, SQL.token_user_version, (hashed,))
        if version is not None and version == known.version:
            return known.principal
    # The version first, then the principal: a change in between makes the version older
    # than the principal, and the next request looks the token up again (never the reverse).
    version = _execute(settings, SQL.token_user_version, (hashed,))
    row = _execute(settings, SQL.user_by_token, (hashed,)) if version is not None else None
    if row is None:
        with _remembered_lock:
            _remembered.pop(key, None)
        raise _Refused
    principal = principal_from_row(row, "token")
    with _remembered_lock:
        if len(_remembered) >= _REMEMBERED_MAX:
            _remembered.clear()
        _remembered[key] = _Remembered(version, principal, time.monotonic())
    return principal


def _accept_version(
    key: tuple[str, bytes], expected: str, settings: Settings, address: str, version: str | None
) -> None:
    """The answer of a deferred token check: the remembered version, or a refusal (counted
    like any bad token), or `PrincipalChanged` for a valid token whose user changed."""
    if version is not None and version == expected:
        return
    with _remembered_lock:
        _remembered.pop(key, None)
    if version is None:
        wait = _execute(settings, SQL.record_token_failure, (address, _RULES))
        if wait:
            raise TooManyAttempts(retry_after=int(wait))
        raise Unauthorized()
    raise PrincipalChanged()


def _by_password(username: str, password: str, address: str, settings: Settings) -> Principal:
    """A username and password (Basic or the sign-in form), throttled per account and address.

    An unknown or inactive user costs the same argon2 verification and counts the same
    failure as a wrong password: the answers never tell whether the account exists.
    """
    key = throttle.username_key(username)
    params = {"username": key, "address": address, "rules": _RULES}
    row = _one(settings, SQL.password_gate, params)
    wait, held, note, user = row if row else (0, [], False, None)
    if wait:
        raise TooManyAttempts(retry_after=int(wait))
    if not verify_password(user.get("password_hash") if user else None, password) or user is None:
        _execute(settings, SQL.record_password_failure, params)
        raise Unauthorized()
    if held or note:
        _execute(settings, SQL.record_password_success, {**params, "held": held})
    return principal_from_row(user, "basic")


def _by_jwt(token: str, settings: Settings) -> Principal:
    """An OIDC bearer JWT: signature, issuer, audience and expiry checked, then mapped to a user.

    The row found with the claims as sent is used only once the very same token has passed
    every check.
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
    claims = _verified_claims(token, settings)
    if claims.get("sub") != subject:
        raise _Refused
    row = _execute(settings, SQL.user_by_oidc, (subject, _email(claims)))
    if row is None:
        raise _Refused
    return principal_from_row(row, "oidc")


def _email(claims: dict[str, Any]) -> str | None:
    """The e-mail a user without an OIDC subject is recognised by: only one the provider verified.

    A provider may let anyone write any address in their profile; without `email_verified:
    true` (absent, false, or the string "true" alike), an address proves nothing.
    """
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
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
