"""Authentication: API tokens, HTTP Basic and OIDC JWTs, and what their failures count.

At the function level (`authenticate(header, client, settings)`), against the real
database as the application's role. The JWTs are signed by keys generated here; their
public halves are served from a JWKS file, or from a small local HTTP server. The
throttle itself (backoff, accounts, addresses) has its own tests: test_sign_in_throttle.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from itertools import count
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from resorption import accounts, throttle
from resorption.authentication import authenticate
from resorption.database import get_pool
from resorption.errors import (
    BASIC_CHALLENGE,
    ConfigurationError,
    IdentityProviderUnavailable,
    Unauthorized,
)
from resorption.identity import ANONYMOUS, Principal
from resorption.policy import load_policy
from resorption.settings import Settings

ISSUER = "https://identite.example.gouv.fr/realms/resorption"
AUDIENCE = "resorption-api"
PASSWORD = "un mot de passe assez long"
_clients = count(1)


def _client() -> str:
    """A client address of its own (its own /64), so that failures of one test never block another."""
    return f"2001:db8:{next(_clients):x}::1"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


# -- users and keys -------------------------------------------------------------------------------


class Accounts:
    """The users of this module, created through the accounts module as the owner."""

    def __init__(self, database_url: str) -> None:
        settings = Settings.from_env(database_url)
        policy = load_policy(settings.policy_path, settings.collections_dir)
        self.url = database_url
        org = accounts.create_organisation(
            database_url, "Association des tests d'identification", "association", "33"
        )
        self.organisation_id = org.id

        def user(name: str, **kwargs: Any) -> accounts.User:
            values = {"username": name, "organisation": org.id, "role": "operator", "area": "departement:33"}
            return accounts.create_user(database_url, policy, **{**values, **kwargs})

        self.alice = user(
            "auth-alice", options=["access_justice"], password=PASSWORD, email="alice@example.org"
        )
        self.alice_token = accounts.issue_token(database_url, "auth-alice", "tests").token
        self.national = user("auth-national", role="national_admin", area="nation")
        self.national_token = accounts.issue_token(database_url, "auth-national").token
        self.commune = user("auth-bordeaux", role="intervener", area="commune:33063")
        self.commune_token = accounts.issue_token(database_url, "auth-bordeaux").token
        self.region = user("auth-occitanie", role="institutional_partner", area="region:76")
        self.region_token = accounts.issue_token(database_url, "auth-occitanie").token
        self.gone = user("auth-gone", password=PASSWORD)
        self.gone_token = accounts.issue_token(database_url, "auth-gone").token
        accounts.deactivate_user(database_url, "auth-gone")
        self.oidc = user("auth-oidc", oidc_subject="f1c0a9e2-sub", email="oidc@example.org")
        self.by_mail = user("auth-mail", email="Claire.Martin@Example.org")


@pytest.fixture(scope="module")
def people(database_url: str) -> Accounts:
    return Accounts(database_url)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """The settings of the app, without OIDC."""
    return Settings.from_env(database_url)


class Keys:
    """An RSA and an EC signing key of the provider, and a key of nobody."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        self.jwks = {
            "keys": [
                {**rsa_jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"},
                {**ec_jwk, "kid": "ec-1", "alg": "ES256", "use": "sig"},
            ]
        }

    def sign(
        self, claims: dict[str, Any], key: Any = None, algorithm: str = "RS256", kid: str = "rsa-1"
    ) -> str:
        return jwt.encode(claims, key or self.rsa, algorithm=algorithm, headers={"kid": kid})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"iss": ISSUER, "aud": AUDIENCE, "sub": "f1c0a9e2-sub", "iat": now, "exp": now + 300}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None = None) -> str:
    """A JWT assembled by hand: `alg: none`, or HMAC-signed with `secret`."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return signing_input + "." + _b64(signature)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def oidc_settings(database_url: str, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The app's settings with OIDC, the keys read from a local JWKS file."""
    jwks = tmp_path_factory.mktemp("oidc") / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks), encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RESORPTION_OIDC_ISSUER", ISSUER)
        env.setenv("RESORPTION_OIDC_AUDIENCE", AUDIENCE)
        env.setenv("RESORPTION_OIDC_JWKS_FILE", str(jwks))
        return Settings.from_env(database_url)


def failures(db: psycopg.Connection, client: str, kind: str = "token") -> int:
    """The failures counted against the client's address: of tokens and headers, or of passwords."""
    row = db.execute(
        "SELECT failures FROM resorption.sign_in_counters WHERE kind = %s AND username = '' AND address = %s",
        (kind, throttle.address_key(client)),
    ).fetchone()
    return row[0] if row else 0


def refused(header: str, settings: Settings, client: str | None = None) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        authenticate(header, client or _client(), settings)
    return caught.value


# -- no credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_header_is_anonymous(header: str | None, settings: Settings) -> None:
    assert authenticate(header, _client(), settings) is ANONYMOUS


def test_runs_as_the_application_role(settings: Settings) -> None:
    with get_pool(settings).connection() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "resorption_app"


# -- API tokens --------------------------------------------------------------------------------------


def test_bearer_token(people: Accounts, settings: Settings, db: psycopg.Connection) -> None:
    principal = authenticate(bearer(people.alice_token), _client(), settings)
    assert principal == Principal(
        username="auth-alice",
        user_id=people.alice.id,
        role="operator",
        options=frozenset({"access_justice"}),
        area_level="departement",
        area_code="33",
        area_departements=frozenset({"33"}),
        organisation_id=people.organisation_id,
        method="token",
    )
    last_used = db.execute(
        "SELECT last_used_at FROM resorption.api_tokens WHERE token_hash = %s",
        (hashlib.sha256(people.alice_token.encode()).digest(),),
    ).fetchone()[0]
    assert last_used is not None


def test_token_use_noted_once_a_minute(people: Accounts, settings: Settings, db: psycopg.Connection) -> None:
    """A token's use is written when its last note is a minute old or more, not on every request."""
    token = accounts.issue_token(people.url, "auth-alice", "note d'usage").token
    digest = hashlib.sha256(token.encode()).digest()

    def last_used() -> Any:
        return db.execute(
            "SELECT last_used_at FROM resorption.api_tokens WHERE token_hash = %s", (digest,)
        ).fetchone()[0]

    assert last_used() is None
    assert authenticate(bearer(token), _client(), settings).username == "auth-alice"
    first = last_used()
    assert first is not None
    assert authenticate(bearer(token), _client(), settings).username == "auth-alice"
    assert last_used() == first  # within the minute: no write
    db.execute(
        "UPDATE resorption.api_tokens SET last_used_at = last_used_at - interval '61 seconds' "
        "WHERE token_hash = %s",
        (digest,),
    )
    stale = last_used()
    assert authenticate(bearer(token), _client(), settings).username == "auth-alice"
    assert last_used() > stale


def test_areas(people: Accounts, settings: Settings) -> None:
    national = authenticate(bearer(people.national_token), _client(), settings)
    assert (national.area_level, national.area_code, national.area_departements) == ("nation", None, None)
    # A commune reads its whole département.
    commune = authenticate(bearer(people.commune_token), _client(), settings)
    assert (commune.area_level, commune.area_code, commune.area_departements) == (
        "commune",
        "33063",
        frozenset({"33"}),
    )
    region = authenticate(bearer(people.region_token), _client(), settings)
    assert region.area_departements == frozenset(
        {"09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"}
    )


def test_expired_revoked_and_unknown_tokens(
    people: Accounts, settings: Settings, db: psycopg.Connection
) -> None:
    expired = accounts.issue_token(people.url, "auth-alice", "expiré")
    db.execute(
        "UPDATE resorption.api_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day' "
        "WHERE id = %s",
        (expired.info.id,),
    )
    revoked = accounts.issue_token(people.url, "auth-alice", "révoqué")
    accounts.revoke_token(people.url, str(revoked.info.id))
    for token in (expired.token, revoked.token, "rsp_" + "A" * 43, people.gone_token):
        refused(bearer(token), settings)
        refused(basic("auth-alice", token), settings)


def test_revocation_takes_effect_at_once(people: Accounts, settings: Settings) -> None:
    issued = accounts.issue_token(people.url, "auth-alice", "révoqué en cours de route")
    assert authenticate(bearer(issued.token), _client(), settings).username == "auth-alice"
    accounts.revoke_token(people.url, issued.token)
    refused(bearer(issued.token), settings)


# -- HTTP Basic ------------------------------------------------------------------------------------


def test_basic_with_password(people: Accounts, settings: Settings) -> None:
    principal = authenticate(basic("auth-alice", PASSWORD), _client(), settings)
    assert (principal.username, principal.method, principal.options) == (
        "auth-alice",
        "basic",
        frozenset({"access_justice"}),
    )
    # Usernames are case-insensitive, as QGIS users type them.
    assert authenticate(basic("Auth-Alice", PASSWORD), _client(), settings).user_id == people.alice.id


def test_basic_with_token(people: Accounts, settings: Settings) -> None:
    principal = authenticate(basic("auth-alice", people.alice_token), _client(), settings)
    assert (principal.username, principal.method) == ("auth-alice", "token")
    # Another user's name with this token is refused.
    refused(basic("auth-national", people.alice_token), settings)


@pytest.mark.parametrize(
    "header",
    [
        basic("auth-alice", "pas le bon mot de passe"),
        basic("auth-alice", PASSWORD + " "),
        basic("auth-personne", PASSWORD),
        basic("auth-gone", PASSWORD),  # deactivated
        basic("auth-oidc", PASSWORD),  # no password at all
        "Basic !!!pas-du-base64!!!",
        "Basic " + base64.b64encode(b"sans-deux-points").decode(),
        "Basic " + base64.b64encode(b"auth-alice:").decode(),
        "Basic " + base64.b64encode("auth-alice:\xff".encode("latin-1")).decode(),
        "Basic",
        "Bearer",
        "Digest username=auth-alice",
        "Bearer " + "x" * 10_000,
    ],
)
def test_basic_refused(people: Accounts, settings: Settings, header: str) -> None:
    error = refused(header, settings)
    assert error.status == 401
    assert error.headers == {"WWW-Authenticate": BASIC_CHALLENGE}


def test_one_message_for_every_failure(people: Accounts, settings: Settings, db: psycopg.Connection) -> None:
    client = _client()
    messages = {
        refused(header, settings, client).message
        for header in (
            basic("auth-alice", "pas le bon mot de passe"),
            basic("auth-personne", PASSWORD),
            bearer("rsp_inconnu"),
            bearer("a.b.c"),
            "Basic ???",
        )
    }
    assert len(messages) == 1
    assert "Identification refusée" in messages.pop()
    # Passwords count against the address (and the username), tokens and headers apart.
    assert failures(db, client, "address") == 2
    assert failures(db, client, "token") == 3


def test_a_success_clears_no_failure(people: Accounts, settings: Settings, db: psycopg.Connection) -> None:
    client = _client()
    for _ in range(3):
        refused(basic("auth-alice", "pas le bon mot de passe"), settings, client)
    assert failures(db, client, "address") == 3
    authenticate(basic("auth-alice", PASSWORD), client, settings)
    assert failures(db, client, "address") == 3


# -- OIDC ------------------------------------------------------------------------------------------------


def test_jwt_by_subject(people: Accounts, keys: Keys, oidc_settings: Settings) -> None:
    principal = authenticate(bearer(keys.sign(claims())), _client(), oidc_settings)
    assert (principal.username, principal.user_id, principal.method) == ("auth-oidc", people.oidc.id, "oidc")
    assert principal.area_departements == frozenset({"33"})


def test_jwt_es256_and_audience_list(people: Accounts, keys: Keys, oidc_settings: Settings) -> None:
    token = keys.sign(claims(aud=["account", AUDIENCE]), key=keys.ec, algorithm="ES256", kid="ec-1")
    assert authenticate(bearer(token), _client(), oidc_settings).username == "auth-oidc"


def test_jwt_by_email(people: Accounts, keys: Keys, oidc_settings: Settings) -> None:
    """A user without an OIDC subject is recognised by a verified e-mail (case-insensitive)."""
    token = keys.sign(claims(sub="autre-sujet", email="claire.martin@EXAMPLE.org", email_verified=True))
    assert authenticate(bearer(token), _client(), oidc_settings).username == "auth-mail"
    unverified = keys.sign(claims(sub="autre-sujet", email="claire.martin@example.org", email_verified=False))
    refused(bearer(unverified), oidc_settings)


@pytest.mark.parametrize("verified", [None, "true", 1], ids=["absent", "string", "number"])
def test_jwt_by_email_needs_email_verified_true(
    people: Accounts, keys: Keys, oidc_settings: Settings, verified: Any
) -> None:
    """A provider may let anyone type any address: only `email_verified: true` links an account."""
    token = keys.sign(claims(sub="autre-sujet", email="claire.martin@example.org", email_verified=verified))
    refused(bearer(token), oidc_settings)


def test_jwt_never_takes_an_email_over_a_subject(
    people: Accounts, keys: Keys, oidc_settings: Settings
) -> None:
    # auth-oidc has a subject: its e-mail alone does not sign in as it.
    refused(bearer(keys.sign(claims(sub="un-autre", email="oidc@example.org"))), oidc_settings)


def _now() -> int:
    return int(time.time())


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda k: k.sign(claims(), key=k.stranger), id="wrong-signature"),
        pytest.param(lambda k: k.sign(claims(aud="une-autre-application")), id="wrong-audience"),
        pytest.param(lambda k: k.sign(claims(iss="https://faux.example.org")), id="wrong-issuer"),
        pytest.param(lambda k: k.sign(claims(exp=_now() - 120, iat=_now() - 600)), id="expired"),
        pytest.param(lambda k: k.sign(claims(nbf=_now() + 600)), id="not-yet-valid"),
        pytest.param(lambda k: k.sign(claims(exp=None)), id="no-exp"),
        pytest.param(lambda k: k.sign(claims(aud=None)), id="no-aud"),
        pytest.param(lambda k: k.sign(claims(iss=None)), id="no-iss"),
        pytest.param(lambda k: k.sign(claims(sub=None)), id="no-sub"),
        pytest.param(lambda k: k.sign(claims(sub="inconnu")), id="unknown-subject"),
        pytest.param(lambda k: k.sign(claims(), kid="inconnue"), id="unknown-kid"),
        pytest.param(lambda k: k.sign(claims(), kid="ec-1"), id="rsa-signature-ec-kid"),
        pytest.param(lambda k: forged({"alg": "none", "typ": "JWT"}, claims()), id="alg-none"),
        pytest.param(lambda k: forged({"alg": "none", "kid": "rsa-1"}, claims()), id="alg-none-kid"),
        pytest.param(
            lambda k: forged(
                {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
                claims(),
                k.rsa.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
            ),
            id="hs256-public-key-as-secret",
        ),
        pytest.param(
            lambda k: forged(
                {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
                claims(),
                json.dumps(k.jwks["keys"][0]).encode(),
            ),
            id="hs256-jwk-as-secret",
        ),
        pytest.param(lambda k: k.sign(claims()) + "x", id="tampered-signature"),
        pytest.param(lambda k: "eyJhbGciOiJSUzI1NiJ9.pas-du-json.signature", id="garbage"),
    ],
)
def test_jwt_refused(people: Accounts, keys: Keys, oidc_settings: Settings, make) -> None:
    refused(bearer(make(keys)), oidc_settings)


def test_jwt_of_a_deactivated_user(
    people: Accounts, keys: Keys, oidc_settings: Settings, database_url: str
) -> None:
    settings = Settings.from_env(database_url)
    policy = load_policy(settings.policy_path, settings.collections_dir)
    accounts.create_user(
        database_url,
        policy,
        username="auth-oidc-gone",
        organisation=people.organisation_id,
        role="operator",
        area="departement:33",
        oidc_subject="sujet-parti",
    )
    token = keys.sign(claims(sub="sujet-parti"))
    assert authenticate(bearer(token), _client(), oidc_settings).username == "auth-oidc-gone"
    accounts.deactivate_user(database_url, "auth-oidc-gone")
    refused(bearer(token), oidc_settings)


def test_jwt_refused_when_oidc_is_off(people: Accounts, keys: Keys, settings: Settings) -> None:
    assert not settings.oidc_enabled
    refused(bearer(keys.sign(claims())), settings)


class _JwksServer(http.server.ThreadingHTTPServer):
    jwks: bytes = b""
    hits: int = 0


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: _JwksServer = self.server  # type: ignore[assignment]
        server.hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(server.jwks)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_server(keys: Keys) -> Iterator[_JwksServer]:
    """The provider's keys over HTTP, as an identity provider publishes them."""
    server = _JwksServer(("127.0.0.1", 0), _JwksHandler)
    server.jwks = json.dumps(keys.jwks).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_jwt_with_jwks_url(
    people: Accounts, keys: Keys, oidc_settings: Settings, jwks_server: _JwksServer
) -> None:
    host, port = jwks_server.server_address[:2]
    settings = replace(oidc_settings, oidc_jwks_url=f"http://{host}:{port}/jwks", oidc_jwks_file=None)
    for _ in range(3):
        assert authenticate(bearer(keys.sign(claims())), _client(), settings).username == "auth-oidc"
    assert jwks_server.hits == 1  # the key set is cached
    refused(bearer(keys.sign(claims(), key=keys.stranger)), settings)


def test_unreachable_jwks_is_the_servers_problem(
    people: Accounts, keys: Keys, oidc_settings: Settings, db: psycopg.Connection
) -> None:
    with http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    settings = replace(oidc_settings, oidc_jwks_url=f"http://127.0.0.1:{port}/jwks", oidc_jwks_file=None)
    client = _client()
    with pytest.raises(IdentityProviderUnavailable) as caught:
        authenticate(bearer(keys.sign(claims())), client, settings)
    assert caught.value.status == 503
    assert failures(db, client) == 0  # the caller is not blamed


# -- OIDC settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RESORPTION_OIDC_AUDIENCE": AUDIENCE}, "RESORPTION_OIDC_ISSUER n'est pas défini"),
        (
            {"RESORPTION_OIDC_ISSUER": ISSUER, "RESORPTION_OIDC_JWKS_URL": "https://x/jwks"},
            "RESORPTION_OIDC_AUDIENCE est obligatoire",
        ),
        (
            {"RESORPTION_OIDC_ISSUER": ISSUER, "RESORPTION_OIDC_AUDIENCE": AUDIENCE},
            "l'un des deux exactement",
        ),
        (
            {
                "RESORPTION_OIDC_ISSUER": ISSUER,
                "RESORPTION_OIDC_AUDIENCE": AUDIENCE,
                "RESORPTION_OIDC_JWKS_URL": "https://x/jwks",
                "RESORPTION_OIDC_JWKS_FILE": "/etc/hostname",
            },
            "l'un des deux exactement",
        ),
        (
            {
                "RESORPTION_OIDC_ISSUER": ISSUER,
                "RESORPTION_OIDC_AUDIENCE": AUDIENCE,
                "RESORPTION_OIDC_JWKS_FILE": "/nulle/part/jwks.json",
            },
            "est introuvable",
        ),
        (
            {
                "RESORPTION_OIDC_ISSUER": ISSUER,
                "RESORPTION_OIDC_AUDIENCE": AUDIENCE,
                "RESORPTION_OIDC_JWKS_URL": "ftp://x/jwks",
            },
            "doit être une adresse https://",
        ),
    ],
)
def test_oidc_settings_validated(
    database_url: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name in ("ISSUER", "AUDIENCE", "JWKS_URL", "JWKS_FILE"):
        monkeypatch.delenv(f"RESORPTION_OIDC_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(database_url)


def test_oidc_settings_read(oidc_settings: Settings) -> None:
    assert oidc_settings.oidc_enabled
    assert (oidc_settings.oidc_issuer, oidc_settings.oidc_audience) == (ISSUER, AUDIENCE)
    assert isinstance(oidc_settings.oidc_jwks_file, Path) and oidc_settings.oidc_jwks_url is None
