"""Forms for people who do not use GIS, in a real browser (Debian's Chromium), signed in
through /connexion as the demonstration accounts and test users of other roles and places.

- Declaring a site (/carte/sites/nouveau): a click on the map places it (the commune shown
  is the API's, the write path derives it again), the sites known within 200 m are listed
  (S_DWITHIN through the API) before a confirmation, and the API's French problems appear
  beside their fields.
- The sheet's forms: « Recenser » (record-census), « Faire avancer » (advance-resorption),
  « Toujours d'actualité » (a `confirm` version in the history).
- Who may: demo-gironde (operator with the create_site option) may, in Gironde only;
  demo-observateur-93 sees no button and its forged requests (with its own session and CSRF
  token) are refused 403; another département's sites do not exist (404) for a Gironde user,
  and a correspondent who reads everywhere is refused (403) where it may not write.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from playwright.sync_api import Page, expect

from resorption.demo.accounts import DEMO_PASSWORD, ensure_demo_accounts
from tests.fix_browser import Pages
from tests.fix_users import POLICY, TestUser

Screenshot = Callable[[Page, str], Path]


@pytest.fixture(scope="module")
def demo(database_url: str) -> dict[str, requests.auth.HTTPBasicAuth]:
    """The demonstration accounts (created when missing), as Basic credentials for the API."""
    accounts = ensure_demo_accounts(database_url, POLICY)
    return {a.username: requests.auth.HTTPBasicAuth(a.username, DEMO_PASSWORD) for a in accounts}


class As(requests.Session):
    """API requests as one user, paths relative to the server."""

    def __init__(self, base_url: str, auth: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.base_url = base_url
        self.auth = auth
        self.headers.update(headers or {})

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", 60)
        return super().request(method, self.base_url + url if url.startswith("/") else url, *args, **kwargs)


def sign_in(pages: Pages, username: str, password: str, then: str = "/carte") -> Page:
    """Open `then` anonymously, get sent to /connexion, sign in."""
    page = pages.open()
    page.goto(then)
    expect(page).to_have_url(re.compile(r"/connexion\?suivant="))
    page.get_by_label("Identifiant", exact=True).fill(username)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"**{then}")
    return page


def wait_map(page: Page) -> None:
    page.wait_for_function(
        "() => document.querySelector('#compte').dataset.count !== undefined"
        " && document.querySelector('#carte').dataset.sitesDrawn !== undefined",
        timeout=60_000,
    )


def open_sheet(page: Page, site_id: int | str) -> None:
    page.evaluate("id => window.carte.openSheet(id)", str(site_id))
    expect(page.locator("#fiche .fiche")).to_have_attribute("data-site-id", str(site_id))
    expect(page.locator("#fiche .fiche-historique li").first).not_to_have_text("Chargement…")


def a_site(db: psycopg.Connection, departement: str) -> tuple[int, float, float]:
    """An open site of `departement` with no other site within 300 m: (id, lon, lat)."""
    return db.execute(
        "SELECT s.id, ST_X(s.location), ST_Y(s.location) FROM resorption.sites s"
        " WHERE s.departement_code = %s AND s.status = 'open' AND NOT EXISTS ("
        "   SELECT 1 FROM resorption.sites o WHERE o.id <> s.id"
        "   AND ST_DWithin(o.location::geography, s.location::geography, 300))"
        " ORDER BY s.id LIMIT 1",
        (departement,),
    ).fetchone()


def forged(page: Page, method: str, path: str, body: Any) -> dict[str, Any]:
    """A request sent by the page's own script, with its session and CSRF token."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch(path, {method, credentials: 'same-origin', body: JSON.stringify(body),
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token, 'Accept': 'application/json'}});
            return {status: r.status, body: await r.text()};
        }""",
        [method, path, body],
    )


@pytest.fixture
def created(database_url: str) -> Iterator[list[int]]:
    """Ids of sites a test creates, removed as the owner afterwards."""
    ids: list[int] = []
    yield ids
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = ANY(%s)", (ids,))


# -- declaring a site ---------------------------------------------------------------------


def click_at(page: Page, lon: float, lat: float) -> None:
    """Click the declaration map where (lon, lat) is drawn, at street zoom (once the known
    sites are drawn: the map no longer moves by itself)."""
    page.wait_for_function("() => document.querySelector('#carte-declarer').dataset.sitesDrawn !== undefined")
    page.evaluate("([lon, lat]) => window.declarer.map.setView([lat, lon], 17, {animate: false})", [lon, lat])
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.declarer.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lon, lat],
    )
    box = page.locator("#carte-declarer").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_declare_a_site_next_to_a_known_one(
    pages: Pages,
    base_url: str,
    demo: dict,
    db: psycopg.Connection,
    screenshot: Screenshot,
    created: list[int],
) -> None:
    gironde = As(base_url, demo["demo-gironde"])
    neighbour, lon, lat = a_site(db, "33")
    commune = db.execute("SELECT commune_code FROM resorption.sites WHERE id = %s", (neighbour,)).fetchone()[
        0
    ]
    page = sign_in(pages, "demo-gironde", DEMO_PASSWORD)
    wait_map(page)
    page.get_by_role("link", name="Déclarer un site").click()
    page.wait_for_url("**/carte/sites/nouveau")
    expect(page.get_by_role("heading", name="Déclarer un site")).to_be_visible()
    # No geocoder: the page says so and offers the commune search instead.
    expect(page.locator("#aide-commune")).to_contain_text("aucun service de géocodage")
    page.get_by_label("Trouver une commune sur la carte").fill("Bègles")
    page.get_by_role("button", name="Chercher").click()
    expect(page.locator("#communes-trouvees")).to_contain_text("Bègles (33)")
    page.locator("#communes-trouvees button").first.click()
    # Only the fields the user may write: justice yes (option), owners never.
    expect(page.get_by_label("Nom du site", exact=True)).to_be_visible()
    assert page.locator("[name=owner_name]").count() == 0
    assert page.locator("[name=justice_procedure]").count() == 1
    assert page.locator("[name=commune_code]").count() == 0  # derived from the point

    # ~55 m east of a known site.
    click_at(page, lon + 0.0007, lat)
    expect(page.locator("#commune-du-point")).to_contain_text(f"({commune})")
    page.get_by_label("Nom du site", exact=True).fill("Campement du chemin")
    page.get_by_label("Nombre de personnes", exact=True).fill("12")
    page.get_by_role("button", name="Vérifier avant d'enregistrer").click()
    nearby = page.locator("#voisins")
    expect(nearby).to_be_visible()
    expect(nearby.locator(f'li.voisin[data-site-id="{neighbour}"]')).to_contain_text(" m")
    assert nearby.get_attribute("data-count") == "1"
    screenshot(page, "voisins")

    # Saved without its required date: the API's 400, shown beside the field.
    page.get_by_role("button", name="Confirmer la déclaration").click()
    summary = page.locator("#declarer-erreurs")
    expect(summary).to_contain_text("Date de signalement : valeur obligatoire.")
    date = page.get_by_label("Date de signalement (obligatoire)")
    expect(date).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#champ-declared_at-erreur")).to_have_text("valeur obligatoire.")
    screenshot(page, "erreurs")
    assert (
        gironde.get("/collections/sites/items", params={"q": "Campement du chemin"}).json()["numberReturned"]
        == 0
    )

    date.fill("2024-05-02")
    page.get_by_role("button", name="Vérifier avant d'enregistrer").click()
    page.get_by_role("button", name="Confirmer la déclaration").click()
    done = page.locator("#declare")
    expect(done).to_contain_text("Site déclaré")
    site_id = int(done.get_attribute("data-site-id") or "0")
    created.append(site_id)
    screenshot(page, "declare")
    properties = gironde.get(f"/collections/sites/items/{site_id}").json()["properties"]
    assert properties["name"] == "Campement du chemin"
    assert properties["population_total"] == 12
    assert properties["commune_code"] == commune and properties["departement_code"] == "33"

    # The link opens the new site's sheet on the map.
    page.get_by_role("link", name="Ouvrir sa fiche sur la carte").click()
    expect(page.locator("#fiche .fiche")).to_have_attribute("data-site-id", str(site_id))
    expect(page.locator("#fiche-titre")).to_have_text("Campement du chemin")
    assert pages.console_errors == [] or all("400" in e for e in pages.console_errors)


def test_declaring_outside_the_territory_is_refused(
    pages: Pages, base_url: str, demo: dict, db: psycopg.Connection, screenshot: Screenshot
) -> None:
    _, lon, lat = a_site(db, "93")
    page = sign_in(pages, "demo-gironde", DEMO_PASSWORD, then="/carte/sites/nouveau")
    click_at(page, lon + 0.003, lat)
    expect(page.locator("#commune-du-point")).to_contain_text("hors de votre territoire")
    page.get_by_label("Date de signalement (obligatoire)").fill("2024-05-02")
    page.get_by_label("Nom du site", exact=True).fill("Hors territoire")
    page.get_by_role("button", name="Vérifier avant d'enregistrer").click()
    # The Gironde user reads no site of the 93: none is listed.
    expect(page.locator("#voisins-liste")).to_contain_text("Aucun site connu à moins de 200 m")
    page.get_by_role("button", name="Confirmer la déclaration").click()
    expect(page.locator("#declarer-erreurs")).to_contain_text("département 93")
    screenshot(page, "refus")
    assert (
        db.execute("SELECT count(*) FROM resorption.sites WHERE name = 'Hors territoire'").fetchone()[0] == 0
    )


# -- the observer: no button, forged requests refused ---------------------------------------


def test_observer_has_no_forms_and_forged_requests_are_refused(
    pages: Pages, base_url: str, demo: dict, db: psycopg.Connection, screenshot: Screenshot
) -> None:
    site_id, _, _ = a_site(db, "93")
    before = db.execute(
        "SELECT updated_at, confirmed_at, population_total FROM resorption.sites WHERE id = %s", (site_id,)
    ).fetchone()
    count = db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0]
    page = sign_in(pages, "demo-observateur-93", DEMO_PASSWORD)
    wait_map(page)
    expect(page.get_by_role("link", name="Déclarer un site")).to_have_count(0)
    open_sheet(page, site_id)
    for name in ("Recenser", "Faire avancer", "Toujours d'actualité", "Modifier"):
        expect(page.locator("#fiche").get_by_role("button", name=name)).to_have_count(0)
    screenshot(page, "fiche-observateur")

    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [2.45, 48.91]},
        "properties": {"declared_at": "2024-01-01"},
    }
    attempts = [
        ("POST", "/collections/sites/items", feature),
        (
            "POST",
            "/processes/record-census/execution",
            {"inputs": {"site": site_id, "census_at": "2024-05-01", "population_total": 3}},
        ),
        (
            "POST",
            "/processes/advance-resorption/execution",
            {"inputs": {"site": site_id, "phases": {"sociological_diagnosis": "2024-05-01"}}},
        ),
        ("PATCH", f"/carte/sites/{site_id}/confirmation", {}),
    ]
    for method, path, body in attempts:
        r = forged(page, method, path, body)
        assert r["status"] == 403, (path, r)
        assert "droit" in r["body"] or "rôle" in r["body"], r["body"]
    after = db.execute(
        "SELECT updated_at, confirmed_at, population_total FROM resorption.sites WHERE id = %s", (site_id,)
    ).fetchone()
    assert after == before
    assert db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0] == count

    page.goto("/carte/sites/nouveau")
    expect(page.get_by_role("heading", name="Accès refusé")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Votre rôle ne vous permet pas")
    screenshot(page, "declarer-refuse")
    assert all("403" in e for e in pages.console_errors)


# -- another département ---------------------------------------------------------------------


def test_other_departement_sites(
    base_url: str, demo: dict, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    """A Gironde operator: a site of the 93 does not exist (404) for its sheet and its forms.
    A Gironde correspondent reads it (nation-wide reads) without any form, and is refused (403)."""
    site_id, _, _ = a_site(db, "93")
    gironde = As(base_url, demo["demo-gironde"])
    assert gironde.get(f"/carte/sites/{site_id}/fiche").status_code == 404
    r = gironde.patch(f"/carte/sites/{site_id}/confirmation", json={})
    assert r.status_code == 404 and "n'existe pas" in r.json()["description"]
    census = {"inputs": {"site": site_id, "census_at": "2024-05-01", "population_total": 3}}
    assert gironde.post("/processes/record-census/execution", json=census).status_code == 404

    correspondent = As(base_url, headers=users["correspondent-departement-33"].headers)
    sheet = correspondent.get(f"/carte/sites/{site_id}/fiche")
    assert sheet.status_code == 200
    for text in ("Recenser", "Faire avancer", "Toujours d'actualité", "fiche-recensement"):
        assert text not in sheet.text
    r = correspondent.patch(f"/carte/sites/{site_id}/confirmation", json={})
    assert r.status_code == 403 and "hors de votre territoire" in r.json()["description"]
    assert correspondent.post("/processes/record-census/execution", json=census).status_code == 403
    # Anonymous: no page, no confirmation.
    assert (
        requests.patch(f"{base_url}/carte/sites/{site_id}/confirmation", json={}, timeout=60).status_code
        == 401
    )
    r = requests.get(f"{base_url}/carte/sites/nouveau", timeout=60, allow_redirects=False)
    assert r.status_code == 303 and "/connexion" in r.headers["Location"]


# -- the sheet's forms -----------------------------------------------------------------------


@pytest.fixture
def gironde_site(base_url: str, demo: dict, created: list[int]) -> int:
    """An open site in Bordeaux declared by demo-gironde for the test."""
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-0.5792, 44.8378]},
        "properties": {"name": "Site des formulaires", "declared_at": "2024-03-01", "population_total": 20},
    }
    r = As(base_url, demo["demo-gironde"]).post("/collections/sites/items", json=feature)
    assert r.status_code == 201, r.text
    site_id = int(r.headers["Location"].rsplit("/", 1)[1])
    created.append(site_id)
    return site_id


def test_census_phases_and_confirmation_from_the_sheet(
    pages: Pages,
    base_url: str,
    demo: dict,
    db: psycopg.Connection,
    screenshot: Screenshot,
    gironde_site: int,
) -> None:
    api = As(base_url, demo["demo-gironde"])
    page = sign_in(pages, "demo-gironde", DEMO_PASSWORD)
    wait_map(page)
    open_sheet(page, gironde_site)
    sheet = page.locator("#fiche")

    # Recenser: the total is required (the process says so), then a census is recorded.
    sheet.get_by_role("button", name="Recenser").click()
    census = sheet.locator(".fiche-recensement")
    census.get_by_label("Nombre de personnes (obligatoire)").fill("")
    census.get_by_label("Date du recensement (obligatoire)").fill("2024-06-01")
    census.get_by_role("button", name="Enregistrer le recensement").click()
    expect(census.locator(".fiche-form-erreurs")).to_contain_text("Nombre de personnes : valeur obligatoire.")
    expect(census.get_by_label("Nombre de personnes (obligatoire)")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "recensement-erreur")
    census.get_by_label("Nombre de personnes (obligatoire)").fill("31")
    census.get_by_label("Nombre de mineurs", exact=True).fill("12")
    census.get_by_label("Recensement réalisé par").fill("DDETS de la Gironde")
    census.get_by_role("button", name="Enregistrer le recensement").click()
    expect(sheet.locator(".fiche-message")).to_have_text("Recensement enregistré.")
    p = api.get(f"/collections/sites/items/{gironde_site}").json()["properties"]
    assert (p["population_total"], p["population_minors"], p["census_status"]) == (31, 12, "done")
    expect(sheet.locator(".fiche-historique li").first).to_contain_text("Nombre de personnes : 20 → 31")

    # Faire avancer: a resorption phase before the preliminary ones is refused, per field.
    sheet.get_by_role("button", name="Faire avancer").click()
    phases = sheet.locator(".fiche-phases")
    phases.locator("[name='phases.contract_preparation']").fill("2024-06-10")
    phases.get_by_role("button", name="Enregistrer les phases").click()
    expect(phases.locator(".fiche-form-erreurs")).to_contain_text("phases préalables")
    expect(phases.locator("[name='phases.contract_preparation']")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "phases-erreur")
    phases.locator("[name='phases.contract_preparation']").fill("")
    phases.locator("[name='phases.sociological_diagnosis']").fill("2024-06-05")
    phases.get_by_role("button", name="Enregistrer les phases").click()
    expect(sheet.locator(".fiche-message")).to_have_text("Phases enregistrées.")
    p = api.get(f"/collections/sites/items/{gironde_site}").json()["properties"]
    assert p["phase_sociological_diagnosis_at"] == "2024-06-05"
    assert p["phase_contract_preparation_at"] is None
    sheet.get_by_role("button", name="Faire avancer").click()
    expect(sheet.locator(".fiche-phases [id^='phase-sociological_diagnosis']").first).to_be_disabled()

    # Toujours d'actualité: confirmed_at only, a `confirm` version in the history.
    assert p["confirmed_at"] is None
    sheet.get_by_role("button", name="Toujours d'actualité").click()
    screenshot(page, "confirmation")
    sheet.locator(".fiche-confirmation").get_by_role("button", name="Confirmer").click()
    expect(sheet.locator(".fiche-message")).to_have_text("Site confirmé : toujours d'actualité.")
    expect(sheet.locator(".fiche-historique li").first).to_contain_text("Confirmation")
    screenshot(page, "confirme")
    p = api.get(f"/collections/sites/items/{gironde_site}").json()["properties"]
    assert p["confirmed_at"] is not None and p["population_total"] == 31
    operation, fields, who = db.execute(
        "SELECT operation::text, changed_fields, changed_by FROM resorption.sites_history"
        " WHERE id = %s AND upper_inf(valid)",
        (gironde_site,),
    ).fetchone()
    assert (operation, fields, who) == ("confirm", ["confirmed_at"], "demo-gironde")
    assert (
        db.execute(
            "SELECT count(*) FROM resorption.audit_log WHERE item_id = %s AND action = 'update'"
            " AND detail ->> 'confirmed' = 'true'",
            (str(gironde_site),),
        ).fetchone()[0]
        == 1
    )
    assert all("400" in e for e in pages.console_errors)


def test_confirmation_through_http(base_url: str, demo: dict, gironde_site: int) -> None:
    """The confirmation as a client sends it: If-Match honoured (412 when stale), a new ETag;
    and confirmed_at stays read-only for a PATCH of the API."""
    api = As(base_url, demo["demo-gironde"])
    etag = api.get(f"/collections/sites/items/{gironde_site}").headers["ETag"]
    r = api.patch(f"/carte/sites/{gironde_site}/confirmation", json={}, headers={"If-Match": '"perime"'})
    assert r.status_code == 412
    r = api.patch(f"/carte/sites/{gironde_site}/confirmation", json={}, headers={"If-Match": etag})
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] != etag
    assert r.headers["ETag"] == api.get(f"/collections/sites/items/{gironde_site}").headers["ETag"]
    r = api.patch(
        f"/collections/sites/items/{gironde_site}",
        json={"properties": {"confirmed_at": "2020-01-01T00:00:00Z"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 400 and "lecture seule" in r.text
    assert api.patch("/carte/sites/abc/confirmation", json={}).status_code == 404
