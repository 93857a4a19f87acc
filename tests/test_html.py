"""The HTML pages: catalog labels in French, no CDN, every asset served by us, maps that load offline.

The pages are read as HTML by a small parser, and the item and items pages
are also opened in a real headless Chromium (Debian's, through Playwright),
offline and under their Content-Security-Policy: Leaflet must have built its
map from our vendored copy. Screenshots land in tests/output/screenshots/.
"""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import psycopg
import pytest
import requests

from resorption.catalog import Collection, load_catalog
from resorption.web.display import display_value, sections

ROOT = Path(__file__).resolve().parents[1]
CDN_HOSTS = ("unpkg.com", "cdnjs", "jsdelivr", "tile.openstreetmap", "googleapis")
PAGES = [
    "/",
    "/collections",
    "/collections/sites",
    "/collections/sites/items",
    "/collections/sites/items/{site}",
    "/collections/sites/queryables",
    "/collections/actions/items",
    "/collections/actions/items/1",
    "/collections/departements/items",
    "/conformance",
    "/openapi",
    "/processes",
    "/processes/territory-statistics",
    "/jobs",
    "/tableau-de-bord/departement-33",
]


class Page(HTMLParser):
    """What the tests read in a page: assets, row labels and values, headers, paging links."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.rows: dict[str, str] = {}
        self.groups: list[str] = []
        self.columns: list[str] = []
        self.paging: dict[str, str] = {}
        self.title = ""
        self._cell: str | None = None  # "label", "value", "group", "column" or "title"
        self._text = ""
        self._label = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "img") and a.get("src"):
            self.assets.append(a["src"])
        elif tag == "link" and a.get("rel") in ("stylesheet", "icon", "shortcut icon"):
            self.assets.append(a["href"])
        elif tag == "a" and a.get("rel") in ("next", "prev"):
            self.paging[a["rel"]] = a["href"]
        elif tag == "th" and a.get("scope") in ("row", "colgroup", "col"):
            self._cell = {"row": "label", "colgroup": "group", "col": "column"}[a["scope"]]
            self._text = ""
        elif tag == "td" and self._label:
            self._cell, self._text = "value", ""
        elif tag == "title":
            self._cell, self._text = "title", ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("th", "td", "title") or self._cell is None:
            return
        text = " ".join(self._text.split())
        if self._cell == "label":
            self._label = text
        elif self._cell == "value":
            self.rows[self._label] = text
            self._label = ""
        elif self._cell == "group":
            self.groups.append(text)
        elif self._cell == "column":
            self.columns.append(text)
        elif self._cell == "title":
            self.title = text
        self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text += data


@pytest.fixture(scope="module")
def sites() -> Collection:
    """The catalog's sites collection."""
    return load_catalog(ROOT / "collections")["sites"]


@pytest.mark.parametrize(
    ("field", "value", "language", "text"),
    [
        ("status", "open", "fr", "Existant"),
        ("status", "not_a_status", "fr", "not_a_status"),
        ("is_reinstallation", True, "fr", "Oui"),
        ("is_reinstallation", False, "en", "No"),
        ("declared_at", "2022-05-21", "fr", "21/05/2022"),
        # Stored in UTC, read in French local time (summer: UTC+2).
        ("created_at", "2022-05-24T11:46:00+00:00", "fr", "24/05/2022 13:46"),
        ("population_total", 19, "fr", "19"),
        ("resorption_target", 2027, "fr", "2027"),
        ("access_details", None, "fr", "—"),
        ("social_origins", [], "fr", "—"),
        ("sanitation_toilet_types", ["chemical", "dry"], "fr", "Toilettes chimiques, Toilettes sèches"),
        (
            "closing_solutions",
            [{"solution": "eti", "people": 4}, {"solution": "social_housing", "people": None}],
            "fr",
            "solution : eti, people : 4\nsolution : social_housing, people : —",
        ),
    ],
)
def test_display_value(sites: Collection, field: str, value: object, language: str, text: str) -> None:
    assert display_value(sites.fields[field], value, language) == text


def test_display_sections_keep_only_present_properties(sites: Collection) -> None:
    shown = sections(sites, {"population_total": 3, "name": None, "status": "open"}, "fr")
    assert [(s.title, [(r.label, r.text) for r in s.rows]) for s in shown] == [
        ("Identification et localisation", [("Nom du site", "—")]),
        ("Cycle de vie", [("Statut", "Existant")]),
        ("Habitants", [("Nombre de personnes", "3")]),
    ]


def html(http: requests.Session, path: str, **params: str) -> str:
    """A page in HTML, asked for as a browser would, decoded as its <meta charset> says."""
    r = http.get(path, params={"f": "html", **params})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/html")
    text = r.content.decode("utf-8")
    assert '<meta charset="utf-8">' in text.lower()
    return text


@pytest.fixture(scope="module")
def open_site(db: psycopg.Connection) -> dict:
    """An open, named site with a declaration date, not a reinstallation, without access details."""
    row = db.execute(
        """SELECT id, name, population_total, declared_at FROM resorption.sites
           WHERE status = 'open' AND name IS NOT NULL AND declared_at IS NOT NULL
             AND is_reinstallation = false AND access_details IS NULL
           ORDER BY id LIMIT 1"""
    ).fetchone()
    assert row is not None, "la base de test n'a pas de site ouvert nommé"
    return {"id": row[0], "name": row[1], "population_total": row[2], "declared_at": row[3]}


def test_item_page_labels_values_and_groups_in_french(http: requests.Session, open_site: dict) -> None:
    page = Page(html(http, f"/collections/sites/items/{open_site['id']}"))
    assert page.title == open_site["name"] + SERVICE
    assert page.rows["Nombre de personnes"] == str(open_site["population_total"])
    assert page.rows["Statut"] == "Existant"
    assert page.rows["Date de signalement"] == open_site["declared_at"].strftime("%d/%m/%Y")
    assert page.rows["Réinstallation"] == "Non"
    assert page.rows["Informations d'accès"] == "—"
    # Groups in catalog order, each a section of the one table.
    assert page.groups[:4] == [
        "Identification et localisation",
        "Caractéristiques du terrain",
        "Propriétaire",  # the national administrator reads owners
        "Cycle de vie",
    ]
    assert "Habitants" in page.groups
    assert page.columns == ["Propriété", "Valeur"]


def test_item_page_shows_no_raw_property_name(http: requests.Session, open_site: dict) -> None:
    path = f"/collections/sites/items/{open_site['id']}"
    names = set(http.get(path, params={"f": "json"}).json()["properties"])
    page_text = html(http, path)
    labels = set(Page(page_text).rows)
    assert len(labels) == len(names), "one labelled row per property the caller may read"
    assert not labels & names
    # Not even in the map's data: the page embeds only what the map needs.
    assert "population_total" not in page_text
    assert "declared_at" not in page_text


def test_item_page_in_english(http: requests.Session, open_site: dict) -> None:
    page = Page(html(http, f"/collections/sites/items/{open_site['id']}", lang="en"))
    assert page.rows["People"] == str(open_site["population_total"])
    assert page.rows["Is a reinstallation"] == "No"
    assert "Population" in page.groups
    # Enum values only have French labels.
    assert page.rows["Status"] == "Existant"


def test_item_title_without_a_name(http: requests.Session, db: psycopg.Connection) -> None:
    site = db.execute("SELECT min(id) FROM resorption.sites WHERE name IS NULL").fetchone()[0]
    assert site is not None
    page = Page(html(http, f"/collections/sites/items/{site}"))
    assert page.title == f"Site n°{site}{SERVICE}"
    assert page.rows["Nom du site"] == "—"


def test_items_page_columns_are_labelled(http: requests.Session) -> None:
    page = Page(html(http, "/collections/sites/items"))
    assert page.columns == [
        "Nom du site",
        "Commune",
        "Département",
        "Statut",
        "Nombre de personnes",
        "Date de signalement",
    ]
    chosen = Page(html(http, "/collections/sites/items", properties="name,population_total,status"))
    assert chosen.columns == ["Nom du site", "Nombre de personnes", "Statut"]


def test_items_page_values_are_formatted(http: requests.Session) -> None:
    text = html(http, "/collections/sites/items", filter="status='open'", sortby="id", limit="5")
    assert "Existant" in text
    assert re.search(r"<td>\d{2}/\d{2}/\d{4}</td>", text)
    assert ">open<" not in text


def test_items_page_paging_keeps_the_query(http: requests.Session, db: psycopg.Connection) -> None:
    total = db.execute("SELECT count(*) FROM resorption.sites WHERE status = 'open'").fetchone()[0]
    first = Page(html(http, "/collections/sites/items", filter="status='open'", limit="5"))
    assert "prev" not in first.paging
    query = parse_qs(urlsplit(first.paging["next"]).query)
    assert query["offset"] == ["5"] and query["f"] == ["html"] and query["filter"] == ["status='open'"]
    second = http.get(first.paging["next"])
    assert second.status_code == 200
    # Our own pages say their charset.
    assert second.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f"Éléments 6 à 10 sur {total}" in " ".join(second.text.split())
    assert parse_qs(urlsplit(Page(second.text).paging["prev"]).query).get("offset") is None


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_nothing_from_a_cdn(
    http: requests.Session, base_url: str, open_site: dict, path: str
) -> None:
    text = html(http, path.format(site=open_site["id"]))
    for host in CDN_HOSTS:
        assert host not in text, f"{path} cite {host}"
    assets = Page(text).assets
    assert assets, f"{path} ne charge aucune ressource"
    for asset in assets:
        url = urljoin(base_url + path, asset)
        assert url.startswith(f"{base_url}/static/"), f"{path} charge {asset} hors de /static"
        r = http.get(url)
        assert r.status_code == 200, f"{path} : {asset} répond {r.status_code}"
        assert r.content
        if url.endswith(".css"):
            # What a stylesheet loads itself (Leaflet's marker and layer images) is served too.
            for ref in re.findall(r"url\(['\"]?([^'\")]+)", r.text):
                if not ref.startswith(("data:", "#")):
                    assert http.get(urljoin(url, ref)).status_code == 200, f"{asset} : {ref} absent"


def _admin_page(pages, users: dict):
    """A Chromium page (Playwright) sending the national administrator's Basic credentials.

    A browser is never challenged for Basic credentials (anonymous visitors are sent to
    /connexion), so they go as a header with every request.
    """
    admin = users["national-admin-nation"]
    return pages.open(admin.username, admin.token)


def test_item_map_draws_offline_in_a_browser(pages, screenshot, open_site: dict, users: dict) -> None:
    page = _admin_page(pages, users)
    response = page.goto(f"/collections/sites/items/{open_site['id']}?f=html")
    assert response is not None and response.status == 200
    page.wait_for_selector("#items-map.leaflet-container .leaflet-marker-icon")
    # No base map is configured: Leaflet asked for no tile.
    assert page.locator("img.leaflet-tile").count() == 0
    screenshot(page, "element")
    assert not pages.console_errors


def test_items_map_clusters_offline_in_a_browser(pages, screenshot, users: dict) -> None:
    page = _admin_page(pages, users)
    response = page.goto("/collections/sites/items?f=html&limit=100")
    assert response is not None and response.status == 200
    page.wait_for_selector("#items-map.leaflet-container")
    page.wait_for_selector(".marker-cluster, .leaflet-marker-icon")
    assert "Nombre de personnes" in page.content()
    screenshot(page, "elements")
    assert not pages.console_errors


# -- pygeoapi's own pages, in French ---------------------------------------------------------------

# Words of pygeoapi's English templates that our French ones replace (visible text only); the
# standards keep their names (« OGC API – Processes »).
ENGLISH = re.compile(
    r"\b(Home|Terms of service|License|View the|API Definition|Conformance|Provider|Contact point|"
    r"Address|Email|Telephone|Data collections|Record collections|Name|(?<!API – )Processes|Jobs?|Job ID|"
    r"Process ID|Start|Duration|Progress|Status|Limit|default|Prev|Next|Inputs|Outputs|Title|"
    r"Data Type|Execution modes|Synchronous|Asynchronous|Links|Browse jobs|Job status|"
    r"Started processing|Finished processing|Parameters|Results|This document|Powered by)\b"
)
NAVIGATION = [
    "Accueil", "Carte", "Tableau de bord", "Actions", "Activité", "Données ouvertes", "Collections", "Processus", "API",
]  # fmt: skip
# Every page's <title>: the page's own, then the service (RGAA 8.6).
SERVICE = " · Résorption"


class Text(HTMLParser):
    """The visible text of a page (no script, style or title), and the navigation bar's links."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.navigation: list[str] = []
        self._skip = 0
        self._in_nav = False
        self._nav_text = ""
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title"):
            self._skip += 1
        if tag == "a" and "fr-nav__link" in (dict(attrs).get("class") or ""):
            self._in_nav, self._nav_text = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        if tag == "a" and self._in_nav:
            self.navigation.append(" ".join(self._nav_text.split()))
            self._in_nav = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)
        if self._in_nav:
            self._nav_text += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


@pytest.fixture(scope="module")
def job_id(http: requests.Session) -> str:
    """A finished background job of the national administrator."""
    r = http.post(
        "/processes/territory-statistics/execution",
        json={
            "inputs": {
                "level": "departement",
                "code": "33",
                "start": "2022-01-01",
                "end": "2023-01-01",
                "step": "year",
            }
        },
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 201, r.text
    job = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    for _ in range(120):
        if http.get(f"/jobs/{job}", params={"f": "json"}).json()["status"] in ("successful", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError("la tâche ne s'est pas terminée")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["Voir les collections de ce service", "Définition de l'API", "Conformité", "Licence"]),
        ("/collections", ["Collections de données", "Nom", "Sites"]),
        (
            "/conformance",
            ["Classes de conformité", "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"],
        ),
        ("/processes", ["Processus de ce service", "Statistiques d'un territoire dans le temps"]),
        (
            "/processes/territory-statistics",
            ["Entrées", "Sorties", "Modes d'exécution", "Obligatoire", "Exécuter ce processus (POST, JSON)"],
        ),
        ("/jobs", ["Tâches de fond", "territory-statistics", "Terminée"]),
        ("/jobs/{job}", ["État de la tâche", "Terminée", "Avancement", "Liens"]),
    ],
)
def test_pygeoapi_pages_are_french(
    http: requests.Session, job_id: str, path: str, expected: list[str]
) -> None:
    page = Text(html(http, path.format(job=job_id)))
    for words in expected:
        assert words in page.text, f"{path} : « {words} » manque"
    leftover = ENGLISH.findall(page.text)
    assert not leftover, f"{path} garde de l'anglais : {leftover}"
    assert page.navigation == NAVIGATION
    assert "Se déconnecter" in page.text and "national-admin-nation" in page.text


def test_anonymous_navigation_offers_to_sign_in(anonymous: requests.Session) -> None:
    page = Text(html(anonymous, "/"))
    assert page.navigation == NAVIGATION
    assert "Se connecter" in page.text and "Se déconnecter" not in page.text
    assert not ENGLISH.findall(page.text)


def test_french_pages_in_a_browser(pages, screenshot, users: dict, job_id: str) -> None:
    admin = users["national-admin-nation"]
    page = pages.open(admin.username, admin.token)
    # Chromium sends Basic credentials once challenged: /jobs challenges anonymous visitors.
    for path in (
        "/jobs?f=html",
        "/?f=html",
        "/collections?f=html",
        "/processes/territory-statistics?f=html",
        f"/jobs/{job_id}?f=html",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert page.locator("header .fr-nav__link[aria-current=page]").count() <= 1
        name = path.split("?")[0].replace(job_id, "tache").strip("/").replace("/", "-")
        screenshot(page, name or "accueil")
    assert not pages.console_errors


# -- errors for people in a browser ----------------------------------------------------------

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# (path, status for an external observer of Gironde) over every kind of page: ours
# (/carte, /tableau-de-bord, /actions, /administration, downloads) and pygeoapi's (collections,
# items, processes, jobs, tiles), with the error coming from the app, a view or pygeoapi.
ERROR_PAGES = [
    ("/cette-page-nexiste-pas", 404),
    ("/carte/sites/999999999", 404),
    ("/collections/inconnue", 404),
    ("/collections/inconnue/items", 404),
    ("/collections/sites/items/999999999", 404),
    ("/collections/sites/items/{outside}", 404),  # outside the scope: the same as missing
    ("/collections/sites/items?ooga=booga", 400),
    ("/collections/sites/items?f=html&limit=abc", 400),
    ("/collections/sites/tiles/WebMercatorQuad/99/1/1", 400),
    ("/processes/inconnu", 404),
    ("/jobs/inconnue", 404),
    ("/tableau-de-bord/departement-93", 404),
    ("/tableau-de-bord/departement-93.csv", 404),
    ("/actions/999999999", 404),
    ("/actions/nouvelle", 403),
    ("/administration/utilisateurs", 403),
    ("/administration/demandes", 403),
]


def test_browsers_get_french_dsfr_error_pages(base_url: str, users: dict, db: psycopg.Connection) -> None:
    """A person in a browser (Accept: text/html) gets an error as a DSFR page in French with the
    status (403, 404, 400), on every kind of page; signed out, they are sent to /connexion (never a
    401 JSON); a program (Accept JSON, or f=json) gets the OGC exception of the same status. The
    page says no more than the JSON: a site outside the scope is « introuvable » like a missing one."""
    outside = db.execute(
        "SELECT id FROM resorption.sites WHERE departement_code = '93' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    observer = users["external-observer-departement-33"]
    for template, status in ERROR_PAGES:
        path = template.format(outside=outside)
        page = requests.get(
            base_url + path, headers={**observer.headers, "Accept": BROWSER_ACCEPT}, timeout=60
        )
        assert page.status_code == status, (path, page.status_code, page.text[:300])
        assert page.headers["Content-Type"].startswith("text/html"), (path, page.headers["Content-Type"])
        assert '<html lang="fr"' in page.text and 'class="fr-header' in page.text, path
        if not path.startswith(("/administration/", "/tableau-de-bord/")):  # (their own pages)
            assert 'id="erreur"' in page.text and f'data-statut="{status}"' in page.text, path
        assert "Exception" not in page.text and "Not Found" not in page.text, path
        if "f=html" in path or path.startswith(("/administration/", "/tableau-de-bord/")):
            continue  # the page was asked for by name; those pages have no JSON form
        program = requests.get(
            base_url + path, headers={**observer.headers, "Accept": "application/json"}, timeout=60
        )
        assert program.status_code == status, path
        assert program.headers["Content-Type"].startswith("application/json"), path
        assert program.json()["code"], path
        separator = "&" if "?" in path else "?"
        if "f=" not in path and "/administration/" not in path and not path.endswith(".csv"):
            asked = requests.get(
                f"{base_url}{path}{separator}f=json",
                headers={**observer.headers, "Accept": BROWSER_ACCEPT},
                timeout=60,
            )
            assert asked.headers["Content-Type"].startswith("application/json"), path
    # Outside the scope and missing: the same page but for the id it names.
    hidden = requests.get(
        f"{base_url}/collections/sites/items/{outside}",
        headers={**observer.headers, "Accept": BROWSER_ACCEPT},
        timeout=60,
    ).text
    missing = requests.get(
        f"{base_url}/collections/sites/items/999999999",
        headers={**observer.headers, "Accept": BROWSER_ACCEPT},
        timeout=60,
    ).text

    def main(text: str) -> str:
        body = text[text.index('id="erreur"') : text.index("</main>")]
        return re.sub(r"[0-9a-f]{32}", "", body)

    assert main(hidden).replace(str(outside), "ID") == main(missing).replace("999999999", "ID")
    # Signed out: the sign-in form, then back to the page asked for.
    for path in (
        "/tableau-de-bord/departement-33",
        "/actions/nouvelle",
        "/collections/sites/items/1",
        "/jobs",
    ):
        r = requests.get(
            base_url + path, headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False, timeout=60
        )
        assert r.status_code == 303 and "/connexion?suivant=" in r.headers["Location"], path
        if not path.startswith("/collections/") and path != "/jobs":
            continue  # pages (no JSON form): a program is sent to the sign-in form too
        api = requests.get(base_url + path, headers={"Accept": "application/json"}, timeout=60)
        assert api.status_code == 401 and api.headers["Content-Type"].startswith("application/json"), path
