"""The web map /carte in a real browser (Debian's Chromium), signed in through /connexion.

Each user sees on the map exactly what the API gives them: the markers drawn are the
features of `/collections/sites/items` for that user and filter, the count shown is the
API's `numberMatched` for the same CQL2 expression, and the site sheet shows only the
fields and buttons their rights allow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from resorption.settings import Limits
from tests.api import all_features, created_site
from tests.fix_browser import Pages
from tests.fix_users import TestUser

Screenshot = Callable[[Page, str], Path]


class As(requests.Session):
    """API requests as one test user (Bearer token), paths relative to the server."""

    def __init__(self, base_url: str, user: TestUser) -> None:
        super().__init__()
        self.base_url = base_url
        self.headers.update(user.headers)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", 60)
        return super().request(method, self.base_url + url if url.startswith("/") else url, *args, **kwargs)


def sign_in(pages: Pages, user: TestUser) -> Page:
    """Open /carte anonymously, get sent to /connexion, sign in with username + token."""
    page = pages.open()
    page.goto("/carte")
    expect(page).to_have_url(re.compile(r"/connexion\?suivant=/carte$"))
    page.get_by_label("Identifiant", exact=True).fill(user.username)
    page.get_by_label("Mot de passe", exact=True).fill(user.token)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/carte")
    wait_loaded(page)
    return page


def wait_loaded(page: Page) -> None:
    """Until the count of the current filter is shown (and the markers drawn)."""
    page.wait_for_function(
        "() => document.querySelector('#compte').dataset.count !== undefined"
        " && document.querySelector('#carte').dataset.sitesDrawn !== undefined",
        timeout=60_000,
    )


def reset_filters(page: Page) -> None:
    page.get_by_role("button", name="Réinitialiser").click()
    page.wait_for_function("() => document.querySelector('#cql2').textContent === '(aucun filtre)'")
    wait_loaded(page)


def markers(page: Page) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "path.site-marker", "els => els.map(e => ({id: e.dataset.siteId, dep: e.dataset.departement}))"
    )


def shown_count(page: Page) -> int:
    return int(page.locator("#compte").get_attribute("data-count") or "-1")


def api_ids(api: As, params: dict[str, Any] | None = None) -> set[str]:
    return {str(f["id"]) for f in all_features(api, "/collections/sites/items", params)}  # type: ignore[arg-type]


def matched(api: As, params: dict[str, Any] | None = None) -> int:
    r = api.get("/collections/sites/items", params={"resulttype": "hits", **(params or {})})
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


@pytest.mark.parametrize(
    ("username", "other"), [("operator-departement-33", "93"), ("operator-departement-93", "33")]
)
def test_each_user_sees_their_sites_only(
    pages: Pages,
    base_url: str,
    users: dict[str, TestUser],
    screenshot: Screenshot,
    username: str,
    other: str,
) -> None:
    user = users[username]
    api = As(base_url, user)
    page = sign_in(pages, user)
    screenshot(page, "carte-defaut")

    reset_filters(page)
    drawn = markers(page)
    expected = api_ids(api)
    assert expected, "the demo has sites in both départements"
    assert {m["id"] for m in drawn} == expected
    assert len(drawn) == shown_count(page) == matched(api)
    assert {m["dep"] for m in drawn} == {user.area_code}
    assert other not in {m["dep"] for m in drawn}
    expect(page.locator("#compte")).to_contain_text("sites correspondent")
    expect(page.locator("#profil")).to_contain_text("Opérateur (association)")
    screenshot(page, "carte-tous")
    assert pages.console_errors == []


def test_filter_count_and_markers_match_the_api(
    pages: Pages, base_url: str, users: dict[str, TestUser], screenshot: Screenshot
) -> None:
    user = users["operator-departement-33"]
    api = As(base_url, user)
    page = sign_in(pages, user)
    # The page opens on the existing sites.
    assert page.locator("#cql2").text_content() == "status IN ('open')"
    assert shown_count(page) == matched(api, {"filter-lang": "cql2-text", "filter": "status IN ('open')"})

    page.get_by_label("De 10 à 49 personnes").check()
    page.get_by_label("De 50 à 99 personnes").check()
    page.get_by_label("Terrain", exact=True).check()
    page.wait_for_function("() => document.querySelector('#cql2').textContent.includes('field_type')")
    wait_loaded(page)
    expression = page.locator("#cql2").text_content() or ""
    assert expression == (
        "status IN ('open') AND (population_total BETWEEN 10 AND 49 OR population_total BETWEEN 50 AND 99)"
        " AND field_type IN ('land')"
    )
    params = {"filter-lang": "cql2-text", "filter": expression}
    expected = matched(api, params)
    assert 0 < expected < matched(api)
    assert shown_count(page) == expected
    assert {m["id"] for m in markers(page)} == api_ids(api, params)
    page.locator("#details-cql2 summary").click()
    expect(page.locator("#cql2")).to_be_visible()
    screenshot(page, "carte-filtree")

    # A living-conditions filter and the closure year go into the same single expression.
    page.get_by_label("Eau", exact=True).select_option("bad")
    page.wait_for_function("() => document.querySelector('#cql2').textContent.includes('water_rating')")
    wait_loaded(page)
    expression = page.locator("#cql2").text_content() or ""
    assert expression.endswith("AND water_rating = 'bad'")
    assert shown_count(page) == matched(api, {"filter-lang": "cql2-text", "filter": expression})
    assert len(markers(page)) == shown_count(page)
    assert pages.console_errors == []


def test_filters_offer_only_readable_fields(pages: Pages, users: dict[str, TestUser]) -> None:
    without = sign_in(pages, users["operator-departement-33"])
    expect(without.locator("#filtre-water_rating")).to_be_visible()
    expect(without.locator("#filtre-justice_procedure")).to_have_count(0)
    with_justice = sign_in(pages, users["operator-opts-departement-33"])
    expect(with_justice.locator("#filtre-justice_procedure")).to_be_visible()
    with_justice.locator("#filtre-justice_procedure").select_option("true")
    with_justice.wait_for_function("() => document.querySelector('#cql2').textContent.includes('justice')")
    assert pages.console_errors == []


def open_sheet(page: Page, site_id: str) -> None:
    marker = page.locator(f'path.site-marker[data-site-id="{site_id}"]')
    marker.focus()
    marker.press("Enter")
    expect(page.locator("#fiche .fiche")).to_have_attribute("data-site-id", site_id)
    expect(page.locator("#fiche .fiche-historique li").first).not_to_have_text("Chargement…")


def group_titles(page: Page) -> list[str]:
    return page.locator("#fiche .fiche-lecture .fiche-groupe-titre").all_text_contents()


def test_site_sheet_shows_readable_groups_only(
    pages: Pages, base_url: str, users: dict[str, TestUser], screenshot: Screenshot
) -> None:
    operator = users["operator-departement-33"]
    page = sign_in(pages, operator)
    site_id = markers(page)[0]["id"]
    open_sheet(page, site_id)
    titles = group_titles(page)
    assert "Identification et localisation" in titles and "Conditions de vie" in titles
    assert "Procédures judiciaires et administratives" not in titles
    assert "Propriétaire" not in titles
    # An operator without the create_site option sees no editing button.
    expect(page.get_by_role("button", name="Modifier")).to_have_count(0)
    expect(page.locator("#fiche .fiche-historique li").last).to_contain_text("Création")
    screenshot(page, "fiche-operateur")

    allowed = sign_in(pages, users["operator-opts-departement-33"])
    open_sheet(allowed, site_id)
    titles = group_titles(allowed)
    assert "Procédures judiciaires et administratives" in titles
    assert "Propriétaire" not in titles  # owners are never shown to operators
    expect(allowed.get_by_role("button", name="Modifier")).to_be_visible()
    screenshot(allowed, "fiche-operateur-options")
    assert pages.console_errors == []


@pytest.fixture
def new_site(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[str]:
    """An open site in Bordeaux created for the test, removed as the owner afterwards."""
    properties = {"name": "Site de la carte", "declared_at": "2024-03-01", "population_total": 20}
    with created_site(base_url, users["correspondent-departement-33"].headers, database_url, properties) as site:
        yield str(site)


def test_edit_and_close_from_the_sheet(
    pages: Pages, base_url: str, users: dict[str, TestUser], screenshot: Screenshot, new_site: str
) -> None:
    user = users["correspondent-departement-33"]
    api = As(base_url, user)
    page = sign_in(pages, user)
    open_sheet(page, new_site)
    page.get_by_role("button", name="Modifier").click()
    page.locator("#fiche").get_by_label("Nombre de personnes", exact=True).fill("37")
    page.locator("#fiche").get_by_label("Nom du site", exact=True).fill("Site de la carte, modifié")
    screenshot(page, "fiche-edition")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Modifications enregistrées.")
    properties = api.get(f"/collections/sites/items/{new_site}").json()["properties"]
    assert properties["population_total"] == 37
    assert properties["name"] == "Site de la carte, modifié"
    expect(page.locator("#fiche-titre")).to_have_text("Site de la carte, modifié")
    expect(page.locator("#fiche .fiche-historique li").first).to_contain_text("Modification")
    expect(page.locator("#fiche .fiche-historique li").first).to_contain_text("Nombre de personnes : 20 → 37")

    page.get_by_role("button", name="Fermer le site").click()
    closing = page.locator("#fiche .fiche-fermeture")
    closing.get_by_label("Motif de fermeture").select_option("resorbed")
    closing.get_by_label("Date de fermeture").fill("2024-06-30")
    page.get_by_role("button", name="Confirmer la fermeture").click()
    expect(page.locator("#fiche .fiche-message")).to_have_text("Le site est fermé.")
    assert api.get(f"/collections/sites/items/{new_site}").json()["properties"]["status"] == "resorbed"
    expect(page.get_by_role("button", name="Fermer le site")).to_have_count(0)
    screenshot(page, "fiche-fermee")
    assert pages.console_errors == []


def test_server_refusal_is_shown(
    pages: Pages, base_url: str, users: dict[str, TestUser], new_site: str
) -> None:
    """A stale version (someone wrote meanwhile): the API's French message appears in the sheet."""
    user = users["correspondent-departement-33"]
    page = sign_in(pages, user)
    open_sheet(page, new_site)
    api = As(base_url, user)
    etag = api.get(f"/collections/sites/items/{new_site}").headers["ETag"]
    r = api.patch(
        f"/collections/sites/items/{new_site}",
        json={"properties": {"population_total": 25}},
        headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    page.get_by_role("button", name="Modifier").click()
    page.locator("#fiche").get_by_label("Nombre de personnes", exact=True).fill("30")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#fiche .fiche-message")).to_contain_text("modifié depuis que vous l'avez lu")
    assert api.get(f"/collections/sites/items/{new_site}").json()["properties"]["population_total"] == 25
    assert all("412" in e for e in pages.console_errors)


def test_sheet_outside_the_scope_does_not_exist(
    base_url: str, users: dict[str, TestUser], http: requests.Session
) -> None:
    site_93 = http.get("/collections/sites/items", params={"departement_code": "93", "limit": 1}).json()[
        "features"
    ][0]
    operator_33 = As(base_url, users["operator-departement-33"])
    r = operator_33.get(f"/carte/sites/{site_93['id']}/fiche")
    assert r.status_code == 404
    assert "n'existe pas" in r.json()["description"]
    assert requests.get(f"{base_url}/carte/sites/{site_93['id']}/fiche", timeout=60).status_code == 401
    assert requests.get(f"{base_url}/carte/moi", timeout=60).status_code == 401
    # Its own sites, yes; without the justice group for an operator without the option.
    site_33 = operator_33.get("/collections/sites/items", params={"limit": 1}).json()["features"][0]
    sheet = operator_33.get(f"/carte/sites/{site_33['id']}/fiche")
    assert sheet.status_code == 200
    assert "Procédures judiciaires" not in sheet.text
    assert "Procédures judiciaires" in http.get(f"/carte/sites/{site_33['id']}/fiche").text


def test_me_follows_the_policy(base_url: str, users: dict[str, TestUser]) -> None:
    me = As(base_url, users["operator-departement-33"]).get("/carte/moi").json()
    assert me["may"] == {"readSites": ["33"], "readActions": ["33"], "write": [], "close": []}
    assert me["roleLabel"] == "Opérateur (association)"
    opts = As(base_url, users["operator-opts-departement-33"]).get("/carte/moi").json()
    assert opts["may"]["write"] == ["33"] and opts["may"]["close"] == ["33"]
    assert "justice" in opts["sensitiveGroups"]
    admin = As(base_url, users["national-admin-nation"]).get("/carte/moi").json()
    assert admin["may"]["write"] == "*"
    styles = requests.get(f"{base_url}/carte/styles.json", timeout=60).json()
    assert styles["statuses"][0]["code"] == "open"
    assert styles["statuses"][0]["label"] == "Existant"


def test_the_longest_filter_fits_the_request_line(
    pages: Pages, base_url: str, users: dict[str, TestUser], screenshot: Screenshot
) -> None:
    """Every box ticked, the longest option of every list, both years: the map's CQL2 GETs
    (the count, each page of sites) stay within gunicorn's request line (about 1,100 bytes
    against 8,190, config/gunicorn.conf.py), and the map shows the API's count for them."""
    user = users["national-admin-nation"]  # reads every field: every filter is offered
    api = As(base_url, user)
    page = sign_in(pages, user)
    lines: list[int] = []
    page.on(
        "request",
        lambda r: lines.append(len(f"GET {r.url.removeprefix(base_url)} HTTP/1.1"))
        if "/collections/sites/items" in r.url
        else None,
    )
    filters = page.locator("#filtres")
    for box in filters.locator("input[type=checkbox]").all():
        box.check()
    for choice in filters.locator("select").all():
        values = choice.locator("option").evaluate_all("os => os.map(o => o.value).filter(Boolean)")
        choice.select_option(max(values, key=len))
    filters.locator("input[name=closed_year]").fill("2023")
    filters.locator("input[name=resorption_target]").fill("2026")
    page.wait_for_function("() => document.querySelector('#cql2').textContent.includes('resorption_target')")
    wait_loaded(page)
    expression = page.locator("#cql2").text_content() or ""
    for part in ("status IN", " OR population_total", "A_OVERLAPS(social_origins", "field_type IN", "_rating = "):
        assert part in expression, (part, expression)
    for part in ("justice_procedure = ", "closed_at BETWEEN", "resorption_target = 2026"):
        assert part in expression, (part, expression)
    screenshot(page, "filtre-le-plus-long")
    assert page.locator("#carte-erreur").is_hidden()
    assert shown_count(page) == matched(api, {"filter-lang": "cql2-text", "filter": expression})
    assert lines, "la carte n'a pas lu les sites"
    assert max(lines) <= Limits.from_env().request_line, (max(lines), expression)
