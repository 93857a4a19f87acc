"""Browser sessions over HTTP: sign-in form, cookie, CSRF, sign-out, expiry, redirects.

Everything goes through the real server as a browser would (form posts, cookies); the
database is touched as the owner only to age a session or clean up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from resorption.authentication import hash_password
from resorption.throttle import PAIR
from resorption.web.sessions import SESSION_COOKIE, cookie_options, safe_next
from tests.api import created_site, number_matched
from tests.fix_users import TestUser

PASSWORD = "Un mot de passe assez long 2024 !"


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(
    base_url: str, username: str, secret: str, suivant: str | None = None
) -> tuple[requests.Session, requests.Response]:
    """A browser-like session that posts the sign-in form; returns it and the POST's answer."""
    browser = requests.Session()
    form = browser.get(f"{base_url}/connexion", params={"suivant": suivant} if suivant else None, timeout=60)
    assert form.status_code == 200, form.text
    data = {"identifiant": username, "mot_de_passe": secret, "csrf": _form_token(form.text)}
    if suivant is not None:
        data["suivant"] = suivant
    answer = browser.post(f"{base_url}/connexion", data=data, allow_redirects=False, timeout=60)
    return browser, answer


def signed_in(base_url: str, user: TestUser) -> requests.Session:
    browser, answer = sign_in(base_url, user.username, user.token)
    assert answer.status_code == 303, answer.text
    return browser


def csrf_of(base_url: str, browser: requests.Session) -> str:
    """The session's CSRF token, as the map page gives it."""
    page = browser.get(f"{base_url}/carte", timeout=60)
    assert page.status_code == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found and found.group(1)
    return found.group(1)


@pytest.fixture
def password_user(db: psycopg.Connection, users: dict[str, TestUser]) -> Iterator[str]:
    """A correspondent of Gironde who signs in with a password."""
    org = db.execute(
        "SELECT id FROM resorption.organisations WHERE name = 'Organisation des tests'"
    ).fetchone()[0]
    db.execute(
        "INSERT INTO resorption.users (username, organisation_id, role, area_level, area_code, password_hash) "
        "VALUES ('session-mdp-33', %s, 'correspondent', 'departement', '33', %s)",
        (org, hash_password(PASSWORD)),
    )
    yield "session-mdp-33"
    db.execute("DELETE FROM resorption.users WHERE username = 'session-mdp-33'")


@pytest.fixture
def no_failures(db: psycopg.Connection) -> Iterator[None]:
    """Forget the sign-in failures of the test client before and after (they would throttle others)."""
    db.execute("DELETE FROM resorption.sign_in_counters")
    yield
    db.execute("DELETE FROM resorption.sign_in_counters")


def test_cookie_flags(base_url: str, users: dict[str, TestUser]) -> None:
    _, answer = sign_in(base_url, "operator-departement-33", users["operator-departement-33"].token)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/carte")
    cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith(SESSION_COOKIE + "="))
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/"
    assert "secure" not in attributes  # the test server's public URL is http
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 40


def test_secure_behind_https() -> None:
    assert cookie_options("https://resorption.example.gouv.fr")["secure"] is True
    assert cookie_options("http://localhost:5000")["secure"] is False


def test_only_a_hash_is_stored(base_url: str, users: dict[str, TestUser], db: psycopg.Connection) -> None:
    browser = signed_in(base_url, users["operator-departement-33"])
    value = browser.cookies[SESSION_COOKIE]
    rows = db.execute("SELECT id_hash FROM resorption.web_sessions").fetchall()
    assert (hashlib.sha256(value.encode()).digest(),) in [(bytes(r[0]),) for r in rows]
    assert all(value.encode() not in bytes(r[0]) for r in rows)


def test_sign_in_with_password(base_url: str, password_user: str, no_failures: None) -> None:
    browser, answer = sign_in(base_url, password_user, PASSWORD)
    assert answer.status_code == 303, answer.text
    r = browser.get(f"{base_url}/carte/moi", timeout=60)
    assert r.status_code == 200
    assert r.json()["username"] == password_user
    assert r.json()["may"]["write"] == ["33"]


def test_wrong_password_message(base_url: str, password_user: str, no_failures: None) -> None:
    browser, answer = sign_in(base_url, password_user, "pas le bon")
    assert answer.status_code == 401
    assert "Identifiant ou mot de passe incorrect" in answer.text
    assert SESSION_COOKIE not in browser.cookies
    assert 'value="session-mdp-33"' in answer.text  # the username is kept in the form


def test_same_throttle_as_the_api(base_url: str, password_user: str, no_failures: None) -> None:
    for _ in range(PAIR.free + 1):
        _, answer = sign_in(base_url, password_user, "pas le bon")
        assert answer.status_code == 401
    _, answer = sign_in(base_url, password_user, PASSWORD)
    assert answer.status_code == 429
    assert "Trop de tentatives" in answer.text
    assert int(answer.headers["Retry-After"]) > 0
    # The API's Basic sign-in counts against the same client.
    r = requests.get(f"{base_url}/collections/sites/items", auth=(password_user, PASSWORD), timeout=60)
    assert r.status_code == 429


def test_form_without_its_token_is_refused(base_url: str, users: dict[str, TestUser]) -> None:
    user = users["operator-departement-33"]
    r = requests.post(
        f"{base_url}/connexion",
        data={"identifiant": user.username, "mot_de_passe": user.token},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.cookies
    assert "formulaire a expiré" in r.text


def test_session_reads_the_users_scope_only(
    base_url: str, users: dict[str, TestUser], http: requests.Session
) -> None:
    user = users["operator-departement-33"]
    browser = signed_in(base_url, user)
    r = browser.get(f"{base_url}/collections/sites/items", params={"limit": 1000, "f": "json"}, timeout=60)
    assert r.status_code == 200
    features = r.json()["features"]
    assert features
    assert {f["properties"]["departement_code"] for f in features} == {"33"}
    with requests.Session() as bearer:
        bearer.headers.update(user.headers)
        bearer.base_url = base_url  # type: ignore[attr-defined]
        expected = bearer.get(
            f"{base_url}/collections/sites/items", params={"resulttype": "hits"}, timeout=60
        ).json()["numberMatched"]
    assert len(features) == expected
    assert "justice_procedure" not in features[0]["properties"]  # an operator without the option
    # A site of another département does not exist for this user.
    other = http.get(
        "/collections/sites/items", params={"departement_code": "93", "limit": 1, "f": "json"}
    ).json()["features"][0]
    assert browser.get(f"{base_url}/collections/sites/items/{other['id']}", timeout=60).status_code == 404
    assert number_matched(http, "sites", {"departement_code": "93"}) > 0


@pytest.fixture
def new_site(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[str]:
    """A site in Gironde created for the test (removed as the owner afterwards)."""
    properties = {"name": "Site des tests de session", "declared_at": "2024-03-01"}
    with created_site(base_url, users["correspondent-departement-33"].headers, database_url, properties) as site:
        yield str(site)


def test_writes_need_the_csrf_token(base_url: str, users: dict[str, TestUser], new_site: str) -> None:
    browser = signed_in(base_url, users["correspondent-departement-33"])
    url = f"{base_url}/collections/sites/items/{new_site}"
    etag = browser.get(url, timeout=60).headers["ETag"]
    patch = {"headers": {"Content-Type": "application/merge-patch+json", "If-Match": etag}, "timeout": 60}

    refused = browser.patch(url, data='{"properties": {"population_total": 12}}', **patch)
    assert refused.status_code == 403
    assert refused.json()["code"] == "Forbidden"
    assert "X-CSRF-Token" in refused.json()["description"]

    wrong = browser.patch(
        url,
        data='{"properties": {"population_total": 12}}',
        **{**patch, "headers": {**patch["headers"], "X-CSRF-Token": "x"}},
    )
    assert wrong.status_code == 403

    token = csrf_of(base_url, browser)
    done = browser.patch(
        url,
        data='{"properties": {"population_total": 12}}',
        **{**patch, "headers": {**patch["headers"], "X-CSRF-Token": token}},
    )
    assert done.status_code == 204, done.text
    assert browser.get(url, timeout=60).json()["properties"]["population_total"] == 12


def test_sign_out(base_url: str, users: dict[str, TestUser], db: psycopg.Connection) -> None:
    browser = signed_in(base_url, users["operator-departement-33"])
    value = browser.cookies[SESSION_COOKIE]
    confirm = browser.get(f"{base_url}/deconnexion", timeout=60)
    assert confirm.status_code == 200 and "Se déconnecter" in confirm.text
    # Without the token (a forged cross-site form), nothing happens.
    assert (
        browser.post(f"{base_url}/deconnexion", data={}, allow_redirects=False, timeout=60).status_code == 403
    )
    assert browser.get(f"{base_url}/carte/moi", timeout=60).status_code == 200
    out = browser.post(
        f"{base_url}/deconnexion", data={"csrf": _form_token(confirm.text)}, allow_redirects=False, timeout=60
    )
    assert out.status_code == 303
    assert "/connexion" in out.headers["Location"]
    assert SESSION_COOKIE not in browser.cookies
    stale = requests.Session()
    stale.cookies.set(SESSION_COOKIE, value)
    assert stale.get(f"{base_url}/collections/sites/items", timeout=60).status_code == 401
    assert (
        db.execute(
            "SELECT count(*) FROM resorption.web_sessions WHERE id_hash = %s",
            (hashlib.sha256(value.encode()).digest(),),
        ).fetchone()[0]
        == 0
    )


@pytest.mark.parametrize(
    "ageing",
    [
        "last_seen_at = now() - interval '9 hours'",  # idle too long
        "created_at = now() - interval '8 days', expires_at = now() - interval '1 second'",  # too old
    ],
)
def test_expired_session_refused(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection, ageing: str
) -> None:
    browser = signed_in(base_url, users["operator-departement-33"])
    assert browser.get(f"{base_url}/collections/sites/items", timeout=60).status_code == 200
    digest = hashlib.sha256(browser.cookies[SESSION_COOKIE].encode()).digest()
    db.execute(f"UPDATE resorption.web_sessions SET {ageing} WHERE id_hash = %s", (digest,))
    assert browser.get(f"{base_url}/collections/sites/items", timeout=60).status_code == 401
    page = browser.get(f"{base_url}/carte", allow_redirects=False, timeout=60)
    assert page.status_code == 303
    assert page.headers["Location"].endswith("/connexion?suivant=/carte")


def test_session_seen_noted_once_a_minute(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    """A request marks its session seen when the last mark is a minute old or more, not every time."""
    browser = signed_in(base_url, users["operator-departement-33"])
    digest = hashlib.sha256(browser.cookies[SESSION_COOKIE].encode()).digest()

    def last_seen() -> Any:
        return db.execute(
            "SELECT last_seen_at FROM resorption.web_sessions WHERE id_hash = %s", (digest,)
        ).fetchone()[0]

    db.execute(
        "UPDATE resorption.web_sessions SET last_seen_at = now() - interval '2 minutes' WHERE id_hash = %s",
        (digest,),
    )
    stale = last_seen()
    assert browser.get(f"{base_url}/collections/sites/items", timeout=60).status_code == 200
    marked = last_seen()
    assert marked > stale
    assert browser.get(f"{base_url}/collections/sites/items", timeout=60).status_code == 200
    assert last_seen() == marked  # within the minute: no write


def test_anonymous_map_goes_to_sign_in(base_url: str) -> None:
    r = requests.get(f"{base_url}/carte", allow_redirects=False, timeout=60)
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/connexion?suivant=/carte")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/carte",
        "//evil.example/carte",
        "/\\evil.example",
        "javascript:alert(1)",
        "carte",
        "/\r\nSet-Cookie: x=y",
    ],
)
def test_open_redirect_refused(base_url: str, users: dict[str, TestUser], target: str) -> None:
    _, answer = sign_in(base_url, "operator-departement-33", users["operator-departement-33"].token, target)
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.endswith("/carte") and "evil" not in location
    assert safe_next(target) == "/carte"


def test_local_redirect_kept(base_url: str, users: dict[str, TestUser]) -> None:
    _, answer = sign_in(
        base_url, "operator-departement-33", users["operator-departement-33"].token, "/collections?f=html"
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/collections?f=html")
