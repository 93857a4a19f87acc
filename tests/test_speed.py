"""The fast paths of issue 16 stay exact and stay inside the scope.

- A token's principal remembered by a worker: a revoked token, a deactivated user, a user whose
  area or options changed are seen on the very next request, by every worker.
- `offset=` pages (ids chosen first, then the page's rows read by id) give the rows of the
  keyset pages, in the same order, also sorted, also in the past; nothing outside the scope.
- Read policies that read the scope settings once per statement: a count or a page of a
  national reader, a département reader and an outsider are the rows the rule names.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import psycopg
import psycopg.types.json
import pytest
import requests

from resorption import accounts
from resorption.authentication import authenticate
from resorption.errors import Unauthorized
from resorption.policy import load_policy
from resorption.settings import Settings
from tests.fix_users import AREA, OTHER_AREA, TestUser

_clients = itertools.count(0x5000)


def _client() -> str:
    """A client address of its own, so that failures here never throttle another test."""
    return f"2001:db8:{next(_clients):x}::1"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings.from_env(database_url)


@pytest.fixture(scope="module")
def organisation(database_url: str) -> int:
    return accounts.create_organisation(
        database_url, "Association des tests de vitesse", "association", "33"
    ).id


def _user(database_url: str, organisation: int, name: str, **kwargs: Any) -> str:
    """A new operator of the Gironde (or as `kwargs` say) and a token of theirs."""
    settings = Settings.from_env(database_url)
    policy = load_policy(settings.policy_path, settings.collections_dir)
    values = {
        "username": name,
        "organisation": organisation,
        "role": "operator",
        "area": f"departement:{AREA}",
    }
    accounts.create_user(database_url, policy, **{**values, **kwargs})
    return accounts.issue_token(database_url, name, "vitesse").token


def _fresh_get(base_url: str, path: str, token: str) -> requests.Response:
    """A request on a connection of its own (`Connection: close`), so that successive requests
    are spread over the server's workers instead of one keep-alive connection."""
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    return requests.get(base_url + path, headers=headers, timeout=60)


# -- remembered tokens -------------------------------------------------------------------------


def test_revoked_token_refused_at_once_in_process(
    database_url: str, organisation: int, settings: Settings
) -> None:
    token = _user(database_url, organisation, "vite-revoque")
    for _ in range(3):  # remembered after the first
        assert authenticate(f"Bearer {token}", _client(), settings).username == "vite-revoque"
    accounts.revoke_token(database_url, token)
    with pytest.raises(Unauthorized):
        authenticate(f"Bearer {token}", _client(), settings)
    with pytest.raises(Unauthorized):  # and stays refused (no stale entry comes back)
        authenticate(f"Basic {_basic('vite-revoque', token)}", _client(), settings)


def _basic(username: str, secret: str) -> str:
    import base64

    return base64.b64encode(f"{username}:{secret}".encode()).decode()


def test_expired_token_refused_at_once(
    database_url: str, organisation: int, settings: Settings, db: psycopg.Connection
) -> None:
    token = _user(database_url, organisation, "vite-expire")
    assert authenticate(f"Bearer {token}", _client(), settings).username == "vite-expire"
    db.execute(
        "UPDATE resorption.api_tokens SET created_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 second' WHERE token_hash = %s",
        (hashlib.sha256(token.encode()).digest(),),
    )
    with pytest.raises(Unauthorized):
        authenticate(f"Bearer {token}", _client(), settings)


@pytest.fixture
def local_token_failures(db: psycopg.Connection) -> Any:
    """The bad-token counter of 127.0.0.1 as it was before the test: the refusals a test asks for
    on purpose must not bring the suite's other requests closer to a 429."""
    where = "kind = 'token' AND username = '' AND address = '127.0.0.1'"
    saved = db.execute(f"SELECT to_jsonb(c) FROM resorption.sign_in_counters c WHERE {where}").fetchone()
    yield
    db.execute(f"DELETE FROM resorption.sign_in_counters WHERE {where}")
    if saved is not None:
        db.execute(
            "INSERT INTO resorption.sign_in_counters "
            "SELECT * FROM jsonb_populate_record(NULL::resorption.sign_in_counters, %s)",
            (psycopg.types.json.Jsonb(saved[0]),),
        )


@pytest.mark.usefixtures("local_token_failures")
def test_revocation_and_deactivation_seen_by_every_worker(
    base_url: str, database_url: str, organisation: int
) -> None:
    """Each worker of the suite's gunicorn (two) remembers the token, then is told nothing: the
    next request to any of them is refused all the same."""
    path = "/collections/sites/items?limit=1"
    revoked = _user(database_url, organisation, "vite-multi")
    other = accounts.issue_token(database_url, "vite-multi", "second").token
    for _ in range(12):
        assert _fresh_get(base_url, path, revoked).status_code == 200
        assert _fresh_get(base_url, path, other).status_code == 200
    accounts.revoke_token(database_url, revoked)
    # Each refusal counts against the address (20 free): 6 + 6 stay well below.
    for _ in range(6):
        assert _fresh_get(base_url, path, revoked).status_code == 401
        assert _fresh_get(base_url, path, other).status_code == 200  # its other token still serves
    accounts.deactivate_user(database_url, "vite-multi")
    for _ in range(6):
        assert _fresh_get(base_url, path, other).status_code == 401


@pytest.mark.usefixtures("local_token_failures")
def test_revoked_token_refused_whatever_the_request(
    base_url: str, database_url: str, organisation: int, db: psycopg.Connection
) -> None:
    """A remembered token's check rides in the round trip of the request's first read: a revoked
    token is refused all the same by a request that reads one item, reads nothing (a document,
    an item that does not exist, a bad parameter), or writes, and its write leaves no trace."""
    token = _user(database_url, organisation, "vite-partout")
    site, name = db.execute(
        "SELECT id, name FROM resorption.sites WHERE departement_code = %s ORDER BY id LIMIT 1", (AREA,)
    ).fetchone()
    paths = (
        f"/collections/sites/items/{site}",
        "/collections/sites/items/999999999",
        "/collections/sites/items?limit=abc",
        "/conformance",
        "/collections",
    )
    item = f"/collections/sites/items/{site}"
    for _ in range(6):  # remembered by both workers
        assert _fresh_get(base_url, item, token).status_code == 200
    etag = _fresh_get(base_url, item, token).headers["ETag"]
    accounts.revoke_token(database_url, token)
    for path in paths:
        r = _fresh_get(base_url, path, token)
        assert r.status_code == 401, (path, r.status_code, r.text[:300])
        assert str(site) not in r.text or path != item
    patch = requests.patch(
        base_url + item,
        json={"properties": {"name": "Écrit par un jeton révoqué"}},
        headers={
            "Authorization": f"Bearer {token}",
            "Connection": "close",
            "If-Match": etag,
            "Content-Type": "application/merge-patch+json",
        },
        timeout=60,
    )
    assert patch.status_code == 401, patch.text[:300]
    assert db.execute("SELECT name FROM resorption.sites WHERE id = %s", (site,)).fetchone()[0] == name


def test_remembered_tokens_use_noted_by_the_read_it_rides_with(
    base_url: str, database_url: str, organisation: int, db: psycopg.Connection
) -> None:
    """The check of a remembered token shares its statement with the read's settings
    (`checked_prelude`); it runs before them, so it may still note the token's use, which the
    read-only settings would forbid."""
    token = _user(database_url, organisation, "vite-usage")
    digest = hashlib.sha256(token.encode()).digest()
    path = "/collections/sites/items?limit=1"
    for _ in range(6):  # remembered by both workers
        assert _fresh_get(base_url, path, token).status_code == 200
    for _ in range(4):  # whichever worker answers, its check notes the use
        db.execute(
            "UPDATE resorption.api_tokens SET last_used_at = now() - interval '2 minutes' "
            "WHERE token_hash = %s",
            (digest,),
        )
        r = _fresh_get(base_url, path, token)
        assert r.status_code == 200, r.text[:300]
        noted = db.execute(
            "SELECT now() - last_used_at < interval '1 minute' FROM resorption.api_tokens "
            "WHERE token_hash = %s",
            (digest,),
        ).fetchone()[0]
        assert noted


def test_changed_area_and_options_read_at_once(
    base_url: str, database_url: str, organisation: int, db: psycopg.Connection
) -> None:
    """A remembered principal is never used once the user's row changed: a new area moves the
    rows read at once, a withdrawn option hides its fields at once, in every worker."""
    token = _user(database_url, organisation, "vite-change", options=["access_justice"])
    path = "/collections/sites/items?limit=50"

    def read() -> list[dict[str, Any]]:
        r = _fresh_get(base_url, path, token)
        assert r.status_code == 200, r.text
        return r.json()["features"]

    for _ in range(6):
        features = read()
        assert features and {f["properties"]["departement_code"] for f in features} == {AREA}
        assert all("justice_procedure" in f["properties"] for f in features)
    db.execute("UPDATE resorption.users SET area_code = %s WHERE username = 'vite-change'", (OTHER_AREA,))
    for _ in range(6):
        features = read()
        assert features and {f["properties"]["departement_code"] for f in features} == {OTHER_AREA}
    settings = Settings.from_env(database_url)
    accounts.set_options(
        database_url, load_policy(settings.policy_path, settings.collections_dir), "vite-change", []
    )
    for _ in range(6):
        features = read()
        assert features and not any("justice_procedure" in f["properties"] for f in features)


# -- offset= pages -----------------------------------------------------------------------------


def _ids(session: requests.Session, params: dict[str, Any]) -> list[Any]:
    r = session.get("/collections/sites/items", params=params)
    assert r.status_code == 200, r.text
    return [f["id"] for f in r.json()["features"]]


def _session(base_url: str, user: TestUser) -> requests.Session:
    from tests.fix_server import _Session

    return _Session(base_url, user.token)


@pytest.mark.parametrize(
    "extra",
    [{}, {"sortby": "-population_total"}, {"q": "terrain"}, {"datetime": "2030-01-01T00:00:00Z"}],
    ids=["id", "sorted", "search", "past"],
)
def test_offset_pages_are_the_rows_of_one_long_page(
    base_url: str, users: dict[str, TestUser], extra: dict[str, Any]
) -> None:
    """Pages by `offset=` put together give the rows of one long page, in its order."""
    for name in ("national-admin-nation", f"operator-departement-{AREA}"):
        with _session(base_url, users[name]) as session:
            whole = _ids(session, {"limit": 60, **extra})
            paged = [
                i for start in range(0, 60, 7) for i in _ids(session, {"offset": start, "limit": 7, **extra})
            ]
            assert paged[:60] == whole, name
            assert len(whole) == len(set(whole))


def test_offset_pages_stay_in_scope(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    """An outsider's deep pages hold only their own département's sites, and a page past their
    last site is empty: the skipped ids are chosen under row-level security too."""
    own = db.execute(
        "SELECT count(*) FROM resorption.sites WHERE departement_code = %s", (OTHER_AREA,)
    ).fetchone()[0]
    gironde = {
        r[0] for r in db.execute("SELECT id FROM resorption.sites WHERE departement_code = %s", (AREA,))
    }
    assert own > 20 and gironde
    with _session(base_url, users[f"operator-departement-{OTHER_AREA}"]) as session:
        seen: list[Any] = []
        for start in range(0, own, 50):
            r = session.get("/collections/sites/items", params={"offset": start, "limit": 50})
            assert r.status_code == 200
            seen += [f["id"] for f in r.json()["features"]]
            assert {f["properties"]["departement_code"] for f in r.json()["features"]} <= {OTHER_AREA}
        assert len(seen) == own and not gironde & set(seen)
        past = session.get("/collections/sites/items", params={"offset": own, "limit": 50}).json()
        assert past["features"] == [] and past.get("numberMatched") in (None, own)


# -- read policies: the scope read once per statement ------------------------------------------


def test_counts_follow_the_scope(base_url: str, users: dict[str, TestUser], db: psycopg.Connection) -> None:
    """`resulttype=hits` of sites and actions: every row for a national reader, the
    département's for a département reader (an action by any of its départements), none of
    the other département's for an outsider."""

    def hits(user: str, collection: str) -> int:
        with _session(base_url, users[user]) as session:
            r = session.get(f"/collections/{collection}/items", params={"resulttype": "hits"})
            assert r.status_code == 200, r.text
            return r.json()["numberMatched"]

    sites = db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0]
    actions = db.execute("SELECT count(*) FROM resorption.actions").fetchone()[0]
    in_area = db.execute(
        "SELECT count(*) FROM resorption.sites WHERE departement_code = %s", (AREA,)
    ).fetchone()[0]
    actions_in_area = db.execute(
        "SELECT count(DISTINCT action_id) FROM resorption.action_departements WHERE departement_code = %s",
        (AREA,),
    ).fetchone()[0]
    assert hits("national-admin-nation", "sites") == sites
    assert hits("national-admin-nation", "actions") == actions
    assert hits(f"operator-departement-{AREA}", "sites") == in_area
    assert hits(f"operator-departement-{AREA}", "actions") == actions_in_area
    outsider = f"operator-departement-{OTHER_AREA}"
    with _session(base_url, users[outsider]) as session:
        for collection in ("sites", "actions"):
            r = session.get(f"/collections/{collection}/items", params={"limit": 1000})
            assert r.status_code == 200
            for f in r.json()["features"]:
                assert AREA not in (
                    f["properties"].get("departement_codes") or [f["properties"].get("departement_code")]
                )


# -- one item: what does not depend on the request is worked out once per process ----------------

NEGOTIATIONS = [
    ({}, {}, "fr", "application/geo+json"),
    ({"lang": "en"}, {}, "en", "application/geo+json"),
    ({"LANG": "en"}, {}, "en", "application/geo+json"),
    ({}, {"Accept-Language": "en-GB,en;q=0.8"}, "en", "application/geo+json"),
    ({}, {"Accept-Language": "de"}, "fr", "application/geo+json"),
    ({"lang": "fr"}, {"Accept-Language": "en"}, "fr", "application/geo+json"),
    ({"f": "json"}, {"Accept": "text/html"}, "fr", "application/geo+json"),
    ({}, {"Accept": "application/ld+json"}, "fr", "application/ld+json"),
    ({"f": "jsonld", "lang": "en"}, {}, "en", "application/ld+json"),
]


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_one_item_negotiated_and_linked_alike_request_after_request(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection, collection: str
) -> None:
    """The format, the language and the links of one item, remembered per process after the
    first request that asks the same, are what each request asks, in any order and repeated."""
    table, key = {"sites": ("sites", "site_id"), "actions": ("actions", "action_id")}[collection]
    ids = [r[0] for r in db.execute(f"SELECT id FROM resorption.{table} ORDER BY id LIMIT 2")]
    with _session(base_url, users["national-admin-nation"]) as session:
        for item_id in ids:
            for params, headers, language, media in NEGOTIATIONS * 2:
                r = session.get(f"/collections/{collection}/items/{item_id}", params=params, headers=headers)
                assert r.status_code == 200, (params, headers, r.text)
                assert r.headers["Content-Language"].startswith(language), (params, headers)
                assert r.headers["Content-Type"].startswith(media), (params, headers)
                assert r.headers["ETag"]
                if media != "application/geo+json":
                    continue
                links = {link["rel"]: link for link in r.json()["links"]}
                assert r.json()["id"] == item_id
                assert links["self"]["href"].endswith(f"/collections/{collection}/items/{item_id}?f=json")
                assert links["alternate"]["href"].endswith(
                    f"/collections/{collection}/items/{item_id}?f=html"
                )
                assert f"?{key}={item_id}&sortby=valid_from" in links["version-history"]["href"]
                assert f"?{key}={item_id}&sortby=-created_at" in links["related"]["href"]
                assert f'/collections/{collection}/items/{item_id}?f=json>; rel="self"' in r.headers["Link"]
        refused = session.get(f"/collections/{collection}/items/{ids[0]}", params={"f": "xml"})
        assert refused.status_code == 400 and "non pris en charge" in refused.json()["description"]


def test_one_item_of_another_departement_is_nothing_however_asked(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    """An outsider asking a site of the Gironde, in any format or language, with or without
    `If-None-Match`, gets the 404 of an id that does not exist: no ETag, no link, no 304."""
    site = db.execute(
        "SELECT id FROM resorption.sites WHERE departement_code = %s ORDER BY id LIMIT 1", (AREA,)
    ).fetchone()[0]
    with _session(base_url, users[f"operator-departement-{OTHER_AREA}"]) as session:
        missing = session.get("/collections/sites/items/999999999")
        for params, headers, _, _ in NEGOTIATIONS:
            for extra in ({}, {"If-None-Match": "*"}):
                r = session.get(
                    f"/collections/sites/items/{site}", params=params, headers={**headers, **extra}
                )
                assert r.status_code == 404, (params, headers, extra)
                assert "ETag" not in r.headers and "Link" not in r.headers
                assert r.json()["code"] == missing.json()["code"] == "NotFound"
                assert str(site) not in r.headers.get("Content-Location", "")
