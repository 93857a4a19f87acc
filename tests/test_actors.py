"""Site actors and followers: declare, invite, remove, follow; the sites' `actors`, `has_actor`,
`has_action` and `followed` through items, one item, hits, filters, sort and queryables; and
nobody outside a site's scope sees its actors or can follow it.

Every test writes its own sites in Gironde (33), as a correspondent, and deletes them (with
their actors and followers) as the owner when it ends.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from playwright.sync_api import expect

from tests.fix_browser import Pages
from tests.fix_users import TestUser
from tests.test_webmap import As, Screenshot, markers, matched, open_sheet, shown_count, sign_in, wait_loaded

BORDEAUX = (-0.5792, 44.8378)  # commune 33063


class Client:
    """Requests as test users; remembers the sites it created."""

    def __init__(self, base_url: str, created: list[int]) -> None:
        self.base_url = base_url
        self.created = created

    def request(self, user: TestUser | None, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**(user.headers if user else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)

    def site(self, user: TestUser, **properties: Any) -> int:
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
            "properties": {
                "name": "Site des tests d'intervenants",
                "declared_at": "2024-03-01",
                **properties,
            },
        }
        r = self.request(user, "POST", "/collections/sites/items", json=feature)
        assert r.status_code == 201, r.text
        identifier = int(r.headers["Location"].rsplit("/", 1)[1])
        self.created.append(identifier)
        return identifier

    def execute(self, caller: TestUser | None, process: str, **inputs: Any) -> requests.Response:
        return self.request(caller, "POST", f"/processes/{process}/execution", json={"inputs": inputs})

    def item(self, user: TestUser | None, site: int) -> requests.Response:
        return self.request(user, "GET", f"/collections/sites/items/{site}", params={"f": "json"})

    def ids(self, user: TestUser, **params: Any) -> set[int]:
        """The ids of the test sites an items query returns."""
        r = self.request(
            user, "GET", "/collections/sites/items", params={"limit": 10000, "f": "json", **params}
        )
        assert r.status_code == 200, r.text
        return {f["id"] for f in r.json()["features"]} & set(self.created)

    def hits(self, user: TestUser, **params: Any) -> int:
        r = self.request(user, "GET", "/collections/sites/items", params={"resulttype": "hits", **params})
        assert r.status_code == 200, r.text
        return r.json()["numberMatched"]


@pytest.fixture
def created(database_url: str) -> Iterator[list[int]]:
    sites: list[int] = []
    yield sites
    with psycopg.connect(database_url) as conn:
        for identifier in sites:
            conn.execute("DELETE FROM resorption.sites WHERE id = %s", (identifier,))


@pytest.fixture
def c(base_url: str, created: list[int]) -> Client:
    return Client(base_url, created)


@pytest.fixture
def correspondent(users: dict[str, TestUser]) -> TestUser:
    """Writes sites in Gironde."""
    return users["correspondent-departement-33"]


@pytest.fixture
def intervener(users: dict[str, TestUser]) -> TestUser:
    """Reads Gironde, writes no site: may be actor there."""
    return users["intervener-departement-33"]


@pytest.fixture
def operator(users: dict[str, TestUser]) -> TestUser:
    return users["operator-departement-33"]


@pytest.fixture
def neighbour(users: dict[str, TestUser]) -> TestUser:
    """An operator of Seine-Saint-Denis: reads nothing of Gironde."""
    return users["operator-departement-93"]


def _french(r: requests.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body.get("description") and "Traceback" not in r.text and "psycopg" not in r.text, body
    return body


# -- declaring, inviting, removing ------------------------------------------------------


def test_an_actor_declares_themselves_and_appears_on_the_site(
    c: Client, correspondent: TestUser, intervener: TestUser
) -> None:
    site = c.site(correspondent)
    before = c.item(intervener, site).json()["properties"]
    assert before["has_actor"] is False and before["actors"] is None and before["followed"] is False

    r = c.execute(intervener, "declare-actor", site=site, themes=["health", "schooling"])
    assert r.status_code == 200, r.text
    result = r.json()
    assert [(a["name"], a["themes"], a["is_me"]) for a in result["actors"]] == [
        ("intervener-departement-33", ["health", "schooling"], True)
    ]
    properties = c.item(intervener, site).json()["properties"]
    assert properties["has_actor"] is True
    assert properties["followed"] is True  # who declares themselves follows
    assert [(a["name"], a["organisation"], a["themes"]) for a in properties["actors"]] == [
        ("intervener-departement-33", "Organisation des tests", ["health", "schooling"])
    ]
    # Declaring again changes the themes: still one actor.
    again = c.execute(intervener, "declare-actor", site=site, themes=["employment"]).json()
    assert [a["themes"] for a in again["actors"]] == [["employment"]]
    # Everyone who reads the site reads its actors; `followed` is each one's own.
    seen = c.item(correspondent, site).json()["properties"]
    assert [a["themes"] for a in seen["actors"]] == [["employment"]]
    assert seen["followed"] is True  # the correspondent created it
    # The item's HTML page shows them, in French.
    page = c.request(intervener, "GET", f"/collections/sites/items/{site}", params={"f": "html"})
    assert (
        page.status_code == 200 and "Intervenants" in page.text and "intervener-departement-33" in page.text
    )


def test_an_organisation_and_an_invited_user_are_actors(
    c: Client, correspondent: TestUser, intervener: TestUser, operator: TestUser
) -> None:
    site = c.site(correspondent)
    r = c.execute(intervener, "declare-actor", site=site, themes=["social_support"], as_organisation=True)
    assert r.status_code == 200, r.text
    assert [(a["kind"], a["name"]) for a in r.json()["actors"]] == [
        ("organisation", "Organisation des tests")
    ]

    r = c.execute(intervener, "declare-actor", site=site, themes=["housing"], user=operator.username)
    assert r.status_code == 200, r.text
    names = [(a["kind"], a["name"], a["is_me"]) for a in r.json()["actors"]]
    assert ("person", operator.username, False) in names
    # The invited user follows the site now.
    assert c.item(operator, site).json()["properties"]["followed"] is True


def test_an_invitation_outside_the_sites_territory_is_refused_alike(
    c: Client, correspondent: TestUser, intervener: TestUser, neighbour: TestUser
) -> None:
    site = c.site(correspondent)
    unknown = _french(
        c.execute(intervener, "declare-actor", site=site, themes=["health"], user="personne-inconnue"), 400
    )
    elsewhere = _french(
        c.execute(intervener, "declare-actor", site=site, themes=["health"], user=neighbour.username), 400
    )
    # An existing user of another territory is told apart from nobody by nothing (but for the
    # id of each request, which every error body carries).
    unknown.pop("requestId")
    elsewhere.pop("requestId")
    assert unknown == elsewhere
    assert unknown["errors"][0]["property"] == "user"


def test_who_may_declare(
    c: Client, users: dict[str, TestUser], correspondent: TestUser, neighbour: TestUser
) -> None:
    site = c.site(correspondent)
    observer = users["external-observer-departement-33"]
    _french(c.execute(observer, "declare-actor", site=site, themes=["health"]), 403)
    hidden = _french(c.execute(neighbour, "declare-actor", site=site, themes=["health"]), 404)
    missing = _french(c.execute(neighbour, "declare-actor", site=10**9, themes=["health"]), 404)
    # A site out of sight answers exactly as one that does not exist.
    assert hidden["description"].replace(str(site), "N") == missing["description"].replace(str(10**9), "N")
    _french(c.execute(None, "declare-actor", site=site, themes=["health"]), 401)
    bad = _french(c.execute(correspondent, "declare-actor", site=site, themes=["cuisine"]), 400)
    assert bad["errors"][0]["property"] == "themes"
    _french(c.execute(correspondent, "declare-actor", site=site, themes=[]), 400)
    both = _french(c.execute(correspondent, "declare-actor", themes=["health", "health"]), 400)
    assert {e["property"] for e in both["errors"]} == {"site", "themes"}  # every problem at once
    _french(c.execute(correspondent, "declare-actor", site=10**9, themes=["health"]), 404)


def test_removing_an_actor(
    c: Client, correspondent: TestUser, intervener: TestUser, operator: TestUser, neighbour: TestUser
) -> None:
    site = c.site(correspondent)
    declared = c.execute(intervener, "declare-actor", site=site, themes=["health"]).json()
    actor = declared["actor"]
    # Another operator of the territory, who neither is it, declared it nor writes sites: no.
    _french(c.execute(operator, "remove-actor", site=site, actor=actor), 403)
    _french(c.execute(neighbour, "remove-actor", site=site, actor=actor), 404)
    _french(c.execute(intervener, "remove-actor", site=site, actor=10**9), 404)
    r = c.execute(intervener, "remove-actor", site=site, actor=actor)
    assert r.status_code == 200, r.text
    assert r.json()["actors"] == []
    assert c.item(intervener, site).json()["properties"]["has_actor"] is False
    # Who may write the site removes any actor of it.
    actor = c.execute(operator, "declare-actor", site=site, themes=["safety"]).json()["actor"]
    assert c.execute(correspondent, "remove-actor", site=site, actor=actor).status_code == 200


# -- following --------------------------------------------------------------------------


def test_following_a_site_and_my_sites(c: Client, correspondent: TestUser, operator: TestUser) -> None:
    mine, other = c.site(correspondent), c.site(correspondent)
    # The creator follows what it creates.
    assert {mine, other} <= c.ids(correspondent, followed="true")
    assert c.ids(operator, followed="true") == set()
    assert c.execute(operator, "follow-site", site=mine).json() == {"site": mine, "followed": True}
    assert c.execute(operator, "follow-site", site=mine).status_code == 200  # twice is once
    assert c.ids(operator, followed="true") == {mine}
    assert c.ids(operator, filter="followed = TRUE") == {mine}
    assert c.ids(operator, filter="followed = FALSE") == {other}
    assert c.execute(operator, "unfollow-site", site=mine).json() == {"site": mine, "followed": False}
    assert c.ids(operator, followed="true") == set()
    assert c.ids(correspondent, followed="true") >= {mine, other}


def test_the_version_of_a_site_follows_its_actors_and_my_follow(
    c: Client, correspondent: TestUser, intervener: TestUser, operator: TestUser
) -> None:
    """What a site shows besides its row (its actors, whether I follow it) enters its ETag: a
    client holding an older copy gets the new one, never 304; and the ETag a read sends is the
    one a write accepts in If-Match."""
    created = c.request(
        correspondent,
        "POST",
        "/collections/sites/items",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
            "properties": {"name": "Site des versions", "declared_at": "2024-03-01"},
        },
    )
    assert created.status_code == 201, created.text
    site = int(created.headers["Location"].rsplit("/", 1)[1])
    c.created.append(site)
    # The creator follows the site: the ETag of the creation is the one a read sends them.
    assert c.item(correspondent, site).headers["ETag"] == created.headers["ETag"]

    seen = c.item(operator, site).headers["ETag"]
    assert c.execute(intervener, "declare-actor", site=site, themes=["health"]).status_code == 200
    fresh = c.request(
        operator,
        "GET",
        f"/collections/sites/items/{site}",
        params={"f": "json"},
        headers={"If-None-Match": seen},
    )
    assert fresh.status_code == 200 and fresh.json()["properties"]["has_actor"] is True
    assert fresh.headers["ETag"] != seen
    unchanged = c.request(
        operator,
        "GET",
        f"/collections/sites/items/{site}",
        params={"f": "json"},
        headers={"If-None-Match": fresh.headers["ETag"]},
    )
    assert unchanged.status_code == 304

    # My follow is mine: it changes the ETag I see, not the one others see.
    others = c.item(intervener, site).headers["ETag"]
    assert c.execute(operator, "follow-site", site=site).status_code == 200
    mine = c.item(operator, site)
    assert mine.json()["properties"]["followed"] is True and mine.headers["ETag"] != fresh.headers["ETag"]
    assert c.item(intervener, site).headers["ETag"] == others

    # The ETag read is the one a write accepts; an older one is stale.
    stale = c.request(
        correspondent,
        "PATCH",
        f"/collections/sites/items/{site}",
        json={"properties": {"population_total": 12}},
        headers={"If-Match": created.headers["ETag"], "Content-Type": "application/merge-patch+json"},
    )
    assert stale.status_code == 412, stale.text
    current = c.item(correspondent, site).headers["ETag"]
    patched = c.request(
        correspondent,
        "PATCH",
        f"/collections/sites/items/{site}",
        json={"properties": {"population_total": 12}},
        headers={"If-Match": current, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 204, patched.text
    assert c.item(correspondent, site).headers["ETag"] == patched.headers["ETag"]


def test_nobody_outside_the_scope_follows_or_sees(
    c: Client, correspondent: TestUser, intervener: TestUser, neighbour: TestUser
) -> None:
    site = c.site(correspondent)
    c.execute(intervener, "declare-actor", site=site, themes=["health"])
    _french(c.execute(neighbour, "follow-site", site=site), 404)
    _french(c.execute(neighbour, "unfollow-site", site=site), 404)
    _french(c.execute(None, "follow-site", site=site), 401)
    # Nothing of the site or its actors through one item, items, hits, filters or sort.
    assert c.item(neighbour, site).status_code == 404
    for params in (
        {"has_actor": "true"},
        {"filter": f"id = {site} AND has_actor = TRUE"},
        {"filter": f"id = {site} AND has_actor = FALSE"},
        {"filter": f"id = {site}", "sortby": "-has_actor"},
        {"followed": "true"},
    ):
        assert c.ids(neighbour, **params) == set()
        # No actor anywhere in the neighbour's own territory: the counts are zero, like an
        # empty territory's.
        assert c.hits(neighbour, **{k: v for k, v in params.items() if k != "sortby"}) == 0


def test_the_database_refuses_a_follower_row_of_someone_else(
    database_url: str, c: Client, correspondent: TestUser
) -> None:
    """Row-level security: a follow is its user's (unless declared actor there)."""
    site = c.site(correspondent)
    with psycopg.connect(database_url) as conn:
        intruder, victim = conn.execute(
            "SELECT (SELECT id FROM resorption.users WHERE username = 'operator-departement-33'), "
            "(SELECT id FROM resorption.users WHERE username = 'intervener-departement-33')"
        ).fetchone()
        conn.execute("SET ROLE resorption_write")
        for key, value in {
            "resorption.sites_scope": "33",
            "resorption.user_id": str(intruder),
            "resorption.username": "operator-departement-33",
        }.items():
            conn.execute("SELECT set_config(%s, %s, false)", (key, value))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO resorption.site_followers (user_id, site_id) VALUES (%s, %s)", (victim, site)
            )
        conn.rollback()
        conn.execute("SET ROLE resorption_write")
        conn.execute("SELECT set_config('resorption.sites_scope', '33', false)")
        conn.execute("SELECT set_config('resorption.actors_scope', '', false)")
        conn.execute("SELECT set_config('resorption.username', 'operator-departement-33', false)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO resorption.site_actors (site_id, organisation_id, themes, declared_by) "
                "SELECT %s, id, '{health}', 'operator-departement-33' FROM resorption.organisations LIMIT 1",
                (site,),
            )
        conn.rollback()


# -- the queryables and filters ------------------------------------------------------------


def test_the_queryables_list_the_new_fields(c: Client, operator: TestUser) -> None:
    properties = c.request(operator, "GET", "/collections/sites/queryables", params={"f": "json"}).json()[
        "properties"
    ]
    for name in ("has_actor", "has_action", "followed"):
        assert properties[name]["type"] == "boolean", name
    assert "actors" not in properties  # shown, not compared


def test_open_sites_without_intervention(
    c: Client, database_url: str, correspondent: TestUser, intervener: TestUser
) -> None:
    """`has_action = FALSE AND has_actor = FALSE`: the coordinator's question, one filter."""
    bare, acted, covered = c.site(correspondent), c.site(correspondent), c.site(correspondent)
    c.execute(intervener, "declare-actor", site=acted, themes=["health"])
    today = dt.date.today()
    with psycopg.connect(database_url) as conn:
        action = conn.execute(
            "INSERT INTO resorption.actions (name, started_at, topics, departement_code) "
            "VALUES ('Action des tests d''intervenants', %s, '{health}', '33') RETURNING id",
            (today - dt.timedelta(days=30),),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO resorption.action_sites (action_id, site_id) VALUES (%s, %s)", (action, covered)
        )
    try:
        nobody = "status = 'open' AND has_action = FALSE AND has_actor = FALSE"
        assert c.ids(intervener, filter=nobody) == {bare}
        assert c.ids(intervener, has_actor="false", has_action="false") == {bare}
        assert c.ids(intervener, has_action="true") == {covered}
        assert c.ids(intervener, filter="has_actor = TRUE") == {acted}
        assert c.ids(intervener, filter="has_action = TRUE OR has_actor = TRUE") == {acted, covered}
        with_sort = c.request(
            intervener,
            "GET",
            "/collections/sites/items",
            params={"filter": f"id IN ({bare}, {acted}, {covered})", "sortby": "-has_actor,id", "f": "json"},
        ).json()
        assert with_sort["features"][0]["id"] == acted
        # An ended action covers nothing any more.
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "UPDATE resorption.actions SET ended_at = %s WHERE id = %s",
                (today - dt.timedelta(days=1), action),
            )
        assert c.ids(intervener, filter=nobody) == {bare, covered}
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM resorption.actions WHERE id = %s", (action,))


# -- the map and the sheet, in a real browser ---------------------------------------------


@pytest.fixture
def map_site(c: Client, correspondent: TestUser) -> str:
    """An open site in Bordeaux, with no action and no actor."""
    return str(c.site(correspondent, population_total=12))


def test_the_sheet_declares_follows_and_the_map_filters(
    pages: Pages, base_url: str, users: dict[str, TestUser], screenshot: Screenshot, map_site: str
) -> None:
    user = users["intervener-departement-33"]
    api = As(base_url, user)
    page = sign_in(pages, user)
    open_sheet(page, map_site)
    box = page.locator("#fiche .fiche-intervenants")
    expect(box).to_contain_text("Aucun intervenant déclaré.")
    box.get_by_role("button", name="Je suis intervenant").click()
    box.get_by_label("Santé").check()
    box.get_by_label("Scolarisation").check()
    box.get_by_role("button", name="Déclarer").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("L'intervenant est déclaré.")
    expect(box.locator("li")).to_have_count(1)
    expect(box.locator("li")).to_contain_text(user.username)
    expect(box.locator("li")).to_contain_text("Santé, Scolarisation")
    # Who declares themselves follows the site.
    expect(box.get_by_role("button", name="Ne plus suivre")).to_be_visible()
    screenshot(page, "fiche-intervenants")

    # « Mes sites »: the map shows the API's followed sites, and this one.
    page.get_by_text("Mes sites", exact=True).click()
    page.wait_for_function("() => document.querySelector('#cql2').textContent.includes('followed = TRUE')")
    wait_loaded(page)
    expression = page.locator("#cql2").text_content() or ""
    params = {"filter-lang": "cql2-text", "filter": expression}
    assert shown_count(page) == matched(api, params) >= 1
    assert map_site in {m["id"] for m in markers(page)}
    screenshot(page, "carte-mes-sites")

    # Following no more: out of « Mes sites ».
    box.get_by_role("button", name="Ne plus suivre").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Le site n'est plus dans « Mes sites ».")
    expect(box.get_by_role("button", name="Suivre", exact=True)).to_be_visible()
    page.wait_for_function(
        f"() => !document.querySelector('path.site-marker[data-site-id=\"{map_site}\"]')", timeout=30_000
    )

    # « Tous les sites » and « Sans intervention »: the site has an actor now, so it is left out.
    page.get_by_text("Tous les sites", exact=True).click()
    page.get_by_label("Sans intervention (ni action en cours, ni intervenant)").check()
    page.wait_for_function("() => document.querySelector('#cql2').textContent.includes('has_actor = FALSE')")
    wait_loaded(page)
    expression = page.locator("#cql2").text_content() or ""
    assert expression == "has_action = FALSE AND has_actor = FALSE AND status IN ('open')"
    params = {"filter-lang": "cql2-text", "filter": expression}
    assert shown_count(page) == matched(api, params)
    assert map_site not in {m["id"] for m in markers(page)}
    screenshot(page, "carte-sans-intervention")

    # Removing oneself: no actor any more.
    box.get_by_role("button", name=re.compile("^Retirer")).click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("L'intervenant est retiré.")
    expect(box).to_contain_text("Aucun intervenant déclaré.")
    assert pages.console_errors == []


def test_an_observer_follows_but_does_not_intervene(
    pages: Pages, users: dict[str, TestUser], map_site: str
) -> None:
    page = sign_in(pages, users["external-observer-departement-33"])
    open_sheet(page, map_site)
    box = page.locator("#fiche .fiche-intervenants")
    expect(box.get_by_role("button", name="Je suis intervenant")).to_have_count(0)
    box.get_by_role("button", name="Suivre", exact=True).click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Le site est dans « Mes sites ».")
    expect(box.get_by_role("button", name="Ne plus suivre")).to_be_visible()
    assert pages.console_errors == []


# -- the dashboard's figure -----------------------------------------------------------------


def _without_intervention(c: Client, user: TestUser) -> dict[str, int]:
    today = dt.date.today().isoformat()
    r = c.execute(
        user, "territory-statistics", level="departement", code="33", start=today, end=today, step="year"
    )
    assert r.status_code == 200, r.text
    return r.json()["intervention"]


def test_the_dashboard_counts_open_sites_without_intervention(
    c: Client, correspondent: TestUser, intervener: TestUser
) -> None:
    site = c.site(correspondent)
    before = _without_intervention(c, intervener)
    assert before["open_sites"] >= before["without_intervention"] >= 1
    assert before["without_intervention"] == c.hits(
        intervener,
        filter="departement_code = '33' AND status = 'open' AND has_action = FALSE AND has_actor = FALSE",
    )
    c.execute(intervener, "declare-actor", site=site, themes=["health"])
    after = _without_intervention(c, intervener)
    assert after == {
        "open_sites": before["open_sites"],
        "without_intervention": before["without_intervention"] - 1,
    }
    page = c.request(intervener, "GET", "/tableau-de-bord/departement-33", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    figure = re.search(r'data-key="without_intervention">([^<]+)<', page.text)
    assert figure is not None and figure.group(1).replace("\u202f", "").replace(" ", "") == str(
        after["without_intervention"]
    )
    assert "Sites ouverts sans intervention" in page.text
