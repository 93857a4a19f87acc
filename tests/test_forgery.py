"""Forged requests: writes from another site, JSON disguised as a form, browsers and Basic challenges.

Through the real server. A browser attaches its credentials (session cookie, or Basic
credentials it was once challenged for) to whatever request another site's page makes: those
requests are refused by their `Origin` / `Sec-Fetch-Site`, whatever the credentials, and a body
must say it is JSON. Clients that send neither header (QGIS, GDAL, requests) write as before.
Browsers that must sign in are sent to /connexion, never challenged; API clients still are.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests

from resorption.errors import BASIC_CHALLENGE
from resorption.web.sessions import SESSION_COOKIE
from tests.fix_users import TestUser
from tests.test_sessions import _form_token, csrf_of, sign_in, signed_in

BORDEAUX = (-0.5792, 44.8378)
EDITOR = "correspondent-departement-33"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
STATISTICS = "/processes/territory-statistics/execution"
STATISTICS_BODY = (
    '{"inputs": {"level": "departement", "code": "33", "start": "2022-01-01", '
    '"end": "2023-01-01", "step": "year"}}'
)
FOREIGN = [
    pytest.param({"Origin": "https://evil.example"}, id="origin-other-site"),
    pytest.param({"Origin": "null"}, id="origin-null"),
    pytest.param({"Origin": "http://127.0.0.1:1"}, id="origin-other-port"),
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="fetch-cross-site"),
    pytest.param({"Sec-Fetch-Site": "same-site"}, id="fetch-same-site"),
]


def basic(user: TestUser) -> str:
    return "Basic " + base64.b64encode(f"{user.username}:{user.token}".encode()).decode()


@pytest.fixture
def site(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[str]:
    """A site of Gironde created for the test (removed as the owner afterwards); returns its URL."""
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {
            "name": "Site des tests de falsification",
            "population_total": 10,
            "declared_at": "2024-03-01",
        },
    }
    r = requests.post(
        f"{base_url}/collections/sites/items", json=feature, headers=users[EDITOR].headers, timeout=60
    )
    assert r.status_code == 201, r.text
    site_id = r.headers["Location"].rsplit("/", 1)[1]
    yield f"{base_url}/collections/sites/items/{site_id}"
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = %s", (int(site_id),))


def population(url: str, user: TestUser) -> int:
    return requests.get(url, headers=user.headers, timeout=60).json()["properties"]["population_total"]


def _patch(session: requests.Session, url: str, headers: dict[str, str], value: int) -> requests.Response:
    etag = session.get(url, timeout=60).headers["ETag"]
    return session.patch(
        url,
        data=f'{{"properties": {{"population_total": {value}}}}}',
        headers={"Content-Type": "application/merge-patch+json", "If-Match": etag, **headers},
        timeout=60,
    )


def _client(how: str, base_url: str, user: TestUser) -> tuple[requests.Session, dict[str, str]]:
    """A client authenticated one way, and the headers its writes carry."""
    if how == "session":
        browser = signed_in(base_url, user)
        return browser, {"X-CSRF-Token": csrf_of(base_url, browser)}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {user.token}" if how == "bearer" else basic(user)
    return session, {}


# -- where a write comes from ---------------------------------------------------------------------


@pytest.mark.parametrize("foreign", FOREIGN)
@pytest.mark.parametrize("how", ["session", "basic", "bearer"])
def test_writes_from_another_site_are_refused(
    base_url: str, users: dict[str, TestUser], site: str, how: str, foreign: dict[str, str]
) -> None:
    """Whatever the credentials, a write another site's page sends changes nothing."""
    client, headers = _client(how, base_url, users[EDITOR])
    r = _patch(client, site, {**headers, **foreign}, 99)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "Forbidden"
    assert "autre site" in r.json()["description"]
    assert population(site, users[EDITOR]) == 10


@pytest.mark.parametrize(
    "own",
    [
        pytest.param({}, id="no-header"),  # QGIS, GDAL, requests
        pytest.param({"Origin": "{base}"}, id="origin-public-url"),
        pytest.param({"Origin": "{base}", "Sec-Fetch-Site": "same-origin"}, id="fetch-same-origin"),
        pytest.param({"Sec-Fetch-Site": "none"}, id="fetch-none"),
        pytest.param({"Origin": "http://localhost:{port}", "Host": "localhost:{port}"}, id="origin-own-host"),
    ],
)
@pytest.mark.parametrize("how", ["session", "basic", "bearer"])
def test_writes_from_our_pages_and_non_browsers_pass(
    base_url: str, users: dict[str, TestUser], site: str, how: str, own: dict[str, str]
) -> None:
    client, headers = _client(how, base_url, users[EDITOR])
    port = str(urlsplit(base_url).port)
    own = {k: v.format(base=base_url, port=port) for k, v in own.items()}
    if "Host" in own and how == "session":  # the cookie jar would match the Host header, not the URL
        own["Cookie"] = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    r = _patch(client, site, {**headers, **own}, 42)
    assert r.status_code == 204, r.text
    assert population(site, users[EDITOR]) == 42


def test_a_forged_process_execution_with_basic_credentials(base_url: str, users: dict[str, TestUser]) -> None:
    """The attack of the issue: a cross-site form posts JSON as text/plain, the browser adds Basic."""
    headers = {"Authorization": basic(users[EDITOR]), "Content-Type": "text/plain"}
    r = requests.post(
        base_url + STATISTICS,
        data=STATISTICS_BODY,
        headers={**headers, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        timeout=60,
    )
    assert r.status_code == 403, r.text
    # Even from our own origin (or a browser too old to say where it comes from), text/plain is refused.
    r = requests.post(base_url + STATISTICS, data=STATISTICS_BODY, headers=headers, timeout=60)
    assert r.status_code == 415, r.text


def test_sign_out_from_another_site_is_refused(base_url: str, users: dict[str, TestUser]) -> None:
    browser = signed_in(base_url, users["operator-departement-33"])
    confirm = browser.get(f"{base_url}/deconnexion", timeout=60)
    r = browser.post(
        f"{base_url}/deconnexion",
        data={"csrf": _form_token(confirm.text)},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 403
    assert browser.get(f"{base_url}/carte/moi", timeout=60).status_code == 200


def test_sign_in_from_another_site_is_refused(base_url: str, users: dict[str, TestUser]) -> None:
    """Login CSRF: another site cannot sign a visitor in as the attacker."""
    user = users["operator-departement-33"]
    browser = requests.Session()
    form = browser.get(f"{base_url}/connexion", timeout=60)
    data = {"identifiant": user.username, "mot_de_passe": user.token, "csrf": _form_token(form.text)}
    r = browser.post(
        f"{base_url}/connexion",
        data=data,
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code == 403
    assert SESSION_COOKIE not in browser.cookies
    # Posted from our own page, the same form signs in.
    r = browser.post(
        f"{base_url}/connexion", data=data, headers={"Origin": base_url}, allow_redirects=False, timeout=60
    )
    assert r.status_code == 303 and SESSION_COOKIE in browser.cookies


# -- what a body is ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", STATISTICS), ("POST", "/collections/sites/items"), ("POST", "/collections/regions/items")],
)
def test_a_json_body_needs_a_json_type(
    http: requests.Session, method: str, path: str, content_type: str | None
) -> None:
    body = STATISTICS_BODY if path == STATISTICS else '{"op": "=", "args": [{"property": "status"}, "open"]}'
    headers = {"Content-Type": content_type} if content_type else {}
    answers = [http.request(method, path, data=body.encode(), headers=headers)]
    if content_type is None:  # also chunked, without a length
        answers.append(http.request(method, path, data=iter([body.encode()]), headers=headers))
    for r in answers:
        assert r.status_code == 415, r.text
        description = r.json()["description"]
        assert "non pris en charge" in description and "application/json" in description


def test_a_write_with_a_form_type_is_refused(base_url: str, users: dict[str, TestUser], site: str) -> None:
    client, _ = _client("bearer", base_url, users[EDITOR])
    etag = client.get(site, timeout=60).headers["ETag"]
    r = client.patch(
        site,
        data='{"properties": {"population_total": 7}}',
        headers={"Content-Type": "application/x-www-form-urlencoded", "If-Match": etag},
        timeout=60,
    )
    assert r.status_code == 415
    assert population(site, users[EDITOR]) == 10


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/cql2+json",
        "application/query-cql-json",
        "application/json; charset=utf-8",
    ],
)
def test_json_types_are_read(http: requests.Session, content_type: str) -> None:
    body = '{"op": "=", "args": [{"property": "status"}, "open"]}'
    r = http.post(
        "/collections/sites/items?resulttype=hits", data=body.encode(), headers={"Content-Type": content_type}
    )
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] > 0


def test_process_execution_with_json_and_without_a_body(http: requests.Session) -> None:
    r = http.post(STATISTICS, data=STATISTICS_BODY.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    # No body, no type needed (the request is refused later, for its missing inputs).
    r = http.post(STATISTICS)
    assert r.status_code == 400


def test_our_forms_post_form_bodies_only(base_url: str) -> None:
    r = requests.post(f"{base_url}/connexion", json={"identifiant": "x", "mot_de_passe": "y"}, timeout=60)
    assert r.status_code == 415
    assert "application/x-www-form-urlencoded" in r.json()["description"]


# -- browsers sign in on the form, API clients get the challenge -----------------------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/collections/sites/items", {"Accept": BROWSER_ACCEPT}),
        ("/collections/sites/items?f=json&limit=2", {"Accept": BROWSER_ACCEPT}),
        ("/collections/sites/items?f=html", {}),
        ("/jobs?f=html", {"Accept": "*/*"}),
        ("/collections/sites/items/1", {"Accept": "text/html"}),
    ],
)
def test_browsers_are_sent_to_sign_in(base_url: str, path: str, headers: dict[str, str]) -> None:
    r = requests.get(base_url + path, headers=headers, allow_redirects=False, timeout=60)
    assert r.status_code == 303, r.text
    assert "WWW-Authenticate" not in r.headers
    location = urlsplit(r.headers["Location"])
    assert location.path == "/connexion"
    assert parse_qs(location.query)["suivant"] == [path]


def test_a_browser_with_wrong_basic_credentials_is_sent_to_sign_in(base_url: str) -> None:
    headers = {
        "Accept": BROWSER_ACCEPT,
        "Authorization": "Basic " + base64.b64encode(b"x-personne:faux").decode(),
    }
    r = requests.get(
        f"{base_url}/collections/sites/items", headers=headers, allow_redirects=False, timeout=60
    )
    assert r.status_code == 303 and "WWW-Authenticate" not in r.headers
    # The form itself ignores those credentials: no redirect loop.
    form = requests.get(f"{base_url}/connexion", headers=headers, allow_redirects=False, timeout=60)
    assert form.status_code == 200 and "Identifiant" in form.text


def test_after_signing_in_the_browser_comes_back(base_url: str, users: dict[str, TestUser]) -> None:
    path = "/collections/sites/items?f=html&limit=3"
    r = requests.get(base_url + path, allow_redirects=False, timeout=60)
    suivant = parse_qs(urlsplit(r.headers["Location"]).query)["suivant"][0]
    user = users["operator-departement-33"]
    browser, answer = sign_in(base_url, user.username, user.token, suivant)
    assert answer.status_code == 303
    assert answer.headers["Location"] == path
    page = browser.get(base_url + path, timeout=60)
    assert page.status_code == 200 and re.search(r"Éléments 1 à 3", page.text)


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "application/geo+json, application/json;q=0.9, */*;q=0.1"],
)
def test_api_clients_keep_the_basic_challenge(base_url: str, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    r = requests.get(
        f"{base_url}/collections/sites/items", headers=headers, allow_redirects=False, timeout=60
    )
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    r = requests.get(
        f"{base_url}/collections/sites/items", auth=("x-personne", "faux"), headers=headers, timeout=60
    )
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == BASIC_CHALLENGE
