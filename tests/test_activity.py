"""The activity feed: the collection `activity` and the page `/activites`.

Each kind of event appears after the write that makes it, through the API and the processes
(a site declared, changed, confirmed, closed; a journal message; an actor declared; an action
created, changed, its indicators and finances recorded), newest first, with the names of the
changed fields the reader may read and never their values. Nobody outside an event's rules
sees anything of it: another département, an association for a message to the State
services, a reader without the finances for a finance line, anonymous: not through items,
one item, hits, filters, sort nor ETags (their answers are the same before and after the
writes). The error oracle of failing filters is in tests/test_side_paths.py (`activity`).

The tests write their own sites and actions in Gironde and delete them as the owner at the end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests

from tests.fix_browser import Pages
from tests.fix_users import TestUser

ITEMS = "/collections/activity/items"
BORDEAUX = (-0.5792, 44.8378)  # commune 33063
GIRONDE_SQUARE = [[[-0.58, 44.83], [-0.57, 44.83], [-0.57, 44.84], [-0.58, 44.84], [-0.58, 44.83]]]
TODAY = dt.date.today().isoformat()
CORRESPONDENT = "correspondent-departement-33"  # writes sites and actions in 33, reads finances and owners
OPERATOR = "operator-departement-33"  # reads 33, no finances, no owner
INTERVENER = "intervener-departement-33"  # may be declared actor in 33
NEIGHBOUR = "operator-departement-93"  # reads nothing of 33
NATIONAL = "national-admin-nation"
SITE_KINDS = {"site_created", "site_updated", "site_confirmed", "site_closed", "comment", "actor_declared"}
ACTION_KINDS = {"action_created", "action_updated", "action_results", "action_finances", "comment"}


@dataclass
class Http:
    """Requests as test users (or anonymous)."""

    base_url: str
    users: dict[str, TestUser]

    def request(self, who: str | None, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**(self.users[who].headers if who else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)

    def feed(self, who: str | None, **params: Any) -> requests.Response:
        return self.request(who, "GET", ITEMS, params={"f": "json", "limit": 1000, **params})

    def events(self, who: str, **params: Any) -> list[dict[str, Any]]:
        r = self.feed(who, **params)
        assert r.status_code == 200, r.text
        return r.json()["features"]

    def execute(self, who: str, process: str, **inputs: Any) -> requests.Response:
        r = self.request(who, "POST", f"/processes/{process}/execution", json={"inputs": inputs})
        assert r.status_code == 200, r.text
        return r


# State services and an association of Gironde, each with a user (the journal's visibility).
ORGANISATIONS = {
    "act-pref33": ("Préfecture de la Gironde (activité)", "state_service", "correspondent"),
    "act-asso33": ("Association girondine (activité)", "association", "operator"),
}


@pytest.fixture(scope="module")
def people(database_url: str, users: dict[str, TestUser]) -> dict[str, TestUser]:
    """A correspondent of a prefecture and an operator of an association, in Gironde."""
    made = dict(users)
    with psycopg.connect(database_url) as conn:
        for username, (org_name, kind, role) in ORGANISATIONS.items():
            org = conn.execute(
                "INSERT INTO resorption.organisations (name, kind, departement_code) VALUES (%s, %s, '33') "
                "ON CONFLICT (name, departement_code) DO UPDATE SET kind = EXCLUDED.kind RETURNING id",
                (org_name, kind),
            ).fetchone()[0]
            user_id = conn.execute(
                "INSERT INTO resorption.users (username, organisation_id, role, area_level, area_code) "
                "VALUES (%s, %s, %s, 'departement', '33') RETURNING id",
                (username, org, role),
            ).fetchone()[0]
            token = "rsp_" + secrets.token_urlsafe(32)
            conn.execute(
                "INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at) "
                "VALUES (%s, %s, %s, 'tests', now() + interval '1 day')",
                (user_id, hashlib.sha256(token.encode()).digest(), token[:8]),
            )
            made[username] = TestUser(
                username=username,
                role=role,
                options=frozenset(),
                area_level="departement",
                area_code="33",
                token=token,
            )
    return made


@pytest.fixture(scope="module")
def http(base_url: str, people: dict[str, TestUser]) -> Http:
    return Http(base_url, people)


@dataclass
class Written:
    """What the writes of the module made: the site, the action and their events by kind."""

    site: int
    action: int
    state_message: int
    before: dict[str, Any]


# What each outsider sees of the feed, by query: the answers must not move with the writes.
OUTSIDER_QUERIES: list[dict[str, Any]] = [
    {},
    {"resulttype": "hits"},
    {"departement_code": "33"},
    {"region_code": "75"},
    {"kind": "comment"},
    {"kind": "action_finances"},
    {"kind": "site_closed", "departement_code": "33"},
    {"sortby": "-at"},
    {"sortby": "kind,-at", "limit": 5},
    {"datetime": f"{TODAY}/.."},
    {"filter": "departement_code = '33' AND kind IN ('site_created', 'comment')"},
]


def _view(http: Http, who: str | None, site: int | None, action: int | None) -> list[Any]:
    """What `who` gets from the feed: status, ids, numberMatched and ETag of each query."""
    seen = []
    for params in OUTSIDER_QUERIES:
        query = {**params, "datetime": params.get("datetime", f"{TODAY}/..")}
        r = http.feed(who, **query)
        body = r.json() if r.headers.get("Content-Type", "").startswith("application") else r.text
        ids = [f["id"] for f in body.get("features", [])] if isinstance(body, dict) else body
        if isinstance(body, dict) and "features" in body and who not in (NEIGHBOUR, None):
            # the readers of 33 see other tests' events come and go: keep those of our subjects
            ids = [
                f["id"]
                for f in body["features"]
                if f["properties"].get("site_id") == site or f["properties"].get("action_id") == action
            ]
        matched = body.get("numberMatched") if isinstance(body, dict) and who in (NEIGHBOUR, None) else None
        etag = r.headers.get("ETag") if who in (NEIGHBOUR, None) else None
        seen.append((r.status_code, ids, matched, etag))
    return seen


@pytest.fixture(scope="module")
def written(http: Http, people: dict[str, TestUser], database_url: str) -> Iterator[Written]:
    """Every kind of write, through the API and the processes, on a new site and a new action."""
    before = {who: _view(http, who, None, None) for who in (NEIGHBOUR, None)}
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {
            "name": "Site du fil d'activité",
            "declared_at": "2024-03-01",
            "population_total": 12,
            "owner_type": "private",
        },
    }
    r = http.request(CORRESPONDENT, "POST", "/collections/sites/items", json=feature)
    assert r.status_code == 201, r.text
    site = int(r.headers["Location"].rsplit("/", 1)[1])
    action = 0
    try:
        # a change of a field everyone reads, then of an owner field only
        patch = {"Content-Type": "application/merge-patch+json"}
        path = f"/collections/sites/items/{site}"
        r = http.request(
            CORRESPONDENT, "PATCH", path, json={"properties": {"population_total": 15}}, headers=patch
        )
        assert r.status_code == 204, r.text
        r = http.request(
            CORRESPONDENT, "PATCH", path, json={"properties": {"owner_name": "M. Dupont"}}, headers=patch
        )
        assert r.status_code == 204, r.text
        # "still accurate": no path of the API writes it yet, the owner does
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE resorption.sites SET confirmed_at = now() WHERE id = %s", (site,))
        http.execute(INTERVENER, "declare-actor", site=site, themes=["health"])
        message = {
            "type": "Feature",
            "geometry": None,
            "properties": {"site_id": site, "message": "Visite du site."},
        }
        r = http.request("act-pref33", "POST", "/collections/site_comments/items", json=message)
        assert r.status_code == 201, r.text
        state = {
            **message,
            "properties": {
                **message["properties"],
                "visibility": "state_services",
                "message": "Réunion en préfecture.",
            },
        }
        r = http.request("act-pref33", "POST", "/collections/site_comments/items", json=state)
        assert r.status_code == 201, r.text
        state_message = int(r.headers["Location"].rsplit("/", 1)[1])
        http.execute(
            CORRESPONDENT,
            "close-site",
            site=site,
            status="resorbed",
            closed_at=TODAY,
            closed_with_solutions="yes",
            solutions=[{"solution": "social_housing", "people": 15, "households": 4}],
        )
        action_feature = {
            "type": "Feature",
            "geometry": {"type": "MultiPolygon", "coordinates": [GIRONDE_SQUARE]},
            "properties": {
                "name": "Action du fil d'activité",
                "started_at": "2023-01-01",
                "topics": ["schooling"],
            },
        }
        r = http.request(CORRESPONDENT, "POST", "/collections/actions/items", json=action_feature)
        assert r.status_code == 201, r.text
        action = int(r.headers["Location"].rsplit("/", 1)[1])
        r = http.request(
            CORRESPONDENT,
            "PATCH",
            f"/collections/actions/items/{action}",
            json={"properties": {"goals": "Scolariser tous les enfants."}},
            headers=patch,
        )
        assert r.status_code == 204, r.text
        note = {"type": "Feature", "geometry": None, "properties": {"action_id": action, "message": "Bilan."}}
        r = http.request(OPERATOR, "POST", "/collections/action_comments/items", json=note)
        assert r.status_code == 201, r.text
        http.execute(OPERATOR, "record-action-indicators", action=action, measured_at="2024-06-30", people=40)
        http.execute(
            CORRESPONDENT,
            "record-action-finances",
            action=action,
            year=2024,
            lines=[{"funding_type": "state", "budget": 10000}],
        )
        yield Written(site, action, state_message, before)
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM resorption.sites WHERE id = %s", (site,))
            if action:
                conn.execute("DELETE FROM resorption.actions WHERE id = %s", (action,))


def _kinds(events: list[dict[str, Any]]) -> set[str]:
    return {e["properties"]["kind"] for e in events}


def test_each_kind_appears_after_its_write(http: Http, written: Written) -> None:
    site_events = http.events(CORRESPONDENT, site_id=written.site)
    assert _kinds(site_events) == SITE_KINDS
    action_events = http.events(CORRESPONDENT, action_id=written.action)
    assert _kinds(action_events) == ACTION_KINDS
    for event in site_events + action_events:
        p = event["properties"]
        assert p["departement_code"] == "33" and p["region_code"] == "75"
        assert p["summary"] and event["geometry"]["type"] == "Point"
    by_kind = {e["properties"]["kind"]: e["properties"] for e in site_events}
    assert by_kind["site_created"]["author"] == CORRESPONDENT
    assert by_kind["site_created"]["site_name"] == "Site du fil d'activité"
    assert by_kind["comment"]["organisation"] == "Préfecture de la Gironde (activité)"
    assert by_kind["actor_declared"]["author"] == INTERVENER
    assert by_kind["site_closed"]["summary"] == "Site fermé"
    updates = [e["properties"] for e in site_events if e["properties"]["kind"] == "site_updated"]
    # the correspondent reads the owner: both changes, by field name, never a value
    assert sorted(tuple(u["fields"]) for u in updates) == [("owner_name",), ("population_total",)]
    assert "Dupont" not in str(site_events) and "15" not in str([u["fields"] for u in updates])
    assert [u["summary"] for u in updates] == ["Site modifié : 1 champ"] * 2


def test_the_feed_is_newest_first_and_pages_by_next_links(http: Http, written: Written) -> None:
    events = http.events(CORRESPONDENT, site_id=written.site)
    times = [e["properties"]["at"] for e in events]
    assert times == sorted(times, reverse=True)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    # two at a time, by the `next` links, the same events in the same order
    paged: list[str] = []
    r = http.feed(CORRESPONDENT, site_id=written.site, limit=2)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        paged += [f["id"] for f in body["features"]]
        following = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        if following is None:
            break
        r = requests.get(following, headers=http.users[CORRESPONDENT].headers, timeout=60)
    assert paged == [e["id"] for e in events]
    # one event alone, and the filters by kind, territory and date
    one = http.request(CORRESPONDENT, "GET", f"{ITEMS}/{events[0]['id']}", params={"f": "json"})
    assert one.status_code == 200 and one.json()["id"] == events[0]["id"]
    closed = http.events(CORRESPONDENT, site_id=written.site, kind="site_closed")
    assert len(closed) == 1
    assert http.events(CORRESPONDENT, site_id=written.site, departement_code="93") == []
    assert len(http.events(CORRESPONDENT, site_id=written.site, region_code="75")) == len(events)
    assert http.events(CORRESPONDENT, site_id=written.site, datetime="2020-01-01/2020-12-31") == []


def test_a_reader_without_the_owner_group_sees_no_owner_change(http: Http, written: Written) -> None:
    events = http.events(OPERATOR, site_id=written.site)
    updates = [e["properties"]["fields"] for e in events if e["properties"]["kind"] == "site_updated"]
    assert updates == [["population_total"]]


def test_another_departement_and_anonymous_see_nothing(http: Http, written: Written) -> None:
    for who in (NEIGHBOUR, None):
        assert _view(http, who, None, None) == written.before[who], who
        for params in ({"site_id": written.site}, {"action_id": written.action}):
            r = http.feed(who, **params)
            if who is None:
                assert r.status_code in (401, 404), r.text
                continue
            assert r.status_code == 200 and r.json()["features"] == [], r.text
            hits = http.feed(who, resulttype="hits", **params).json()
            assert hits["numberMatched"] == 0
    for event in http.events(CORRESPONDENT, site_id=written.site) + http.events(
        CORRESPONDENT, action_id=written.action
    ):
        for who in (NEIGHBOUR, None):
            r = http.request(who, "GET", f"{ITEMS}/{event['id']}", params={"f": "json"})
            assert r.status_code in ((404,) if who else (401, 404)), (who, r.text)
            assert "ETag" not in r.headers
    # the territory of the 33 is not even offered as a region of the 93's reader: 0 everywhere
    assert http.feed(NEIGHBOUR, region_code="75", resulttype="hits").json()["numberMatched"] == 0


def test_a_message_to_the_state_services_is_no_event_for_an_association(
    http: Http, written: Written, people: dict[str, TestUser]
) -> None:
    key = f"c{written.state_message}"
    mine = [e for e in http.events("act-pref33", site_id=written.site) if e["id"].endswith(key)]
    assert len(mine) == 1 and mine[0]["properties"]["kind"] == "comment"
    association = http.events("act-asso33", site_id=written.site)
    assert not [e for e in association if e["id"].endswith(key)]
    assert len([e for e in association if e["properties"]["kind"] == "comment"]) == 1  # the public one
    r = http.request("act-asso33", "GET", f"{ITEMS}/{mine[0]['id']}", params={"f": "json"})
    assert r.status_code == 404
    comments = http.feed("act-asso33", site_id=written.site, kind="comment", resulttype="hits").json()
    assert comments["numberMatched"] == 1


def test_finance_lines_are_events_for_the_readers_of_finances_only(http: Http, written: Written) -> None:
    finances = http.events(CORRESPONDENT, action_id=written.action, kind="action_finances")
    assert len(finances) == 1
    assert http.events(OPERATOR, action_id=written.action, kind="action_finances") == []
    hits = http.feed(OPERATOR, action_id=written.action, kind="action_finances", resulttype="hits").json()
    assert hits["numberMatched"] == 0
    assert _kinds(http.events(OPERATOR, action_id=written.action)) == ACTION_KINDS - {"action_finances"}
    r = http.request(OPERATOR, "GET", f"{ITEMS}/{finances[0]['id']}", params={"f": "json"})
    assert r.status_code == 404 and "ETag" not in r.headers
    # sorting and filtering on the hidden kind tell nothing either
    sorted_ids = [e["id"] for e in http.events(OPERATOR, action_id=written.action, sortby="kind")]
    assert finances[0]["id"] not in sorted_ids


def test_bad_filters_are_said_in_french(http: Http) -> None:
    r = http.feed(OPERATOR, kind="pas-une-nature")
    assert r.status_code == 400 and r.json()["description"], r.text
    r = http.feed(OPERATOR, sortby="fields")
    assert r.status_code == 400 and "liste" in r.json()["description"], r.text


# -- the page ---------------------------------------------------------------------------


def test_the_page_shows_the_feed_with_its_filters(
    pages: Pages, screenshot: Any, base_url: str, http: Http, written: Written
) -> None:
    user = http.users[OPERATOR]
    page = pages.open(user.username, user.token)
    response = page.goto("/activites")
    assert response is not None and response.status == 200
    assert page.title().startswith("Fil d'activité")
    # only the reader's département is offered
    options = page.locator("#departement option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", "33"]
    page.select_option("#nature", "site_closed")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**/activites?*")
    items = page.locator("#activity-events li")
    assert items.count() >= 1
    assert set(items.evaluate_all("ls => ls.map(l => l.dataset.kind)")) == {"site_closed"}
    link = page.locator("#activity-events li a", has_text="Site du fil d'activité").first
    assert link.get_attribute("href").endswith(f"/carte?site={written.site}")
    page.goto("/activites")
    text = page.locator("#activity-events").inner_text()
    assert "Site du fil d'activité" in text and "Action du fil d'activité" in text
    # changed fields by their French names, and never the owner for a reader without it
    assert "Nombre de personnes" in text and "Propriétaire" not in text
    screenshot(page, "activites")
    assert not pages.console_errors and not pages.csp_violations


def test_the_page_of_another_departement_and_of_anonymous(
    pages: Pages, base_url: str, http: Http, written: Written
) -> None:
    user = http.users[NEIGHBOUR]
    page = pages.open(user.username, user.token)
    page.goto("/activites")
    assert "Site du fil d'activité" not in page.content()
    assert page.locator("#departement option").evaluate_all("os => os.map(o => o.value)") == ["", "93"]
    r = requests.get(f"{base_url}/activites", allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303) and "/connexion" in r.headers["Location"]
    bad = http.request(CORRESPONDENT, "GET", "/activites", params={"du": "hier"})
    assert bad.status_code == 400 and "AAAA-MM-JJ" in bad.text


def test_a_site_of_the_feed_opens_on_the_map(
    pages: Pages, screenshot: Any, http: Http, written: Written
) -> None:
    """The feed's link `/carte?site=<id>` opens that site's sheet on the map."""
    user = http.users[OPERATOR]
    page = pages.open(user.username, user.token)
    page.goto(f"/carte?site={written.site}")
    page.wait_for_function(
        "() => !document.querySelector('#fiche').classList.contains('d-none')"
        " && document.querySelector('#fiche').textContent.includes(\"Site du fil d'activité\")",
        timeout=60_000,
    )
    screenshot(page, "carte-site")
    assert not pages.console_errors and not pages.csp_violations
