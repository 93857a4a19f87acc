"""The public pages (web/public_pages.py): open data for everyone, and the footer's mandatory pages.

/donnees-ouvertes reads the suppressed open-data views only (sql/070_opendata.sql) through the
one reader: every figure it prints is one the views publish, a suppressed figure prints as
« s.s. » and never as a number, no site is named, the page is the same for an anonymous visitor
and for the national administrator (the views do not depend on the reader), and it is dated by
the day of its figures, never by the time of an edit.
"""

from __future__ import annotations

import html as html_lib
import re

import psycopg
import requests

from resorption.clock import today
from resorption.web.public_pages import french_day

ROW = re.compile(r'<tr data-code="(?P<code>[^"]+)">(?P<cells>.*?)</tr>', re.S)
CELL = re.compile(r'<td class="res-text-end">(.*?)</td>', re.S)
SUPPRESSED = '<abbr title="secret statistique : chiffre masqué">s.s.</abbr>'


def french(value: int | None) -> str:
    return SUPPRESSED if value is None else f"{value:,}".replace(",", " ")


def rows_of(page: str) -> dict[str, list[str]]:
    """The figures of each region's row (open sites, people, minors, households, closings)."""
    table = page[page.index('id="tableau-regions"') : page.index('id="tableau-departements"')]
    return {m["code"]: [c.strip() for c in CELL.findall(m["cells"])] for m in ROW.finditer(table)}


def main_of(page: str) -> str:
    return page[page.index('<main id="contenu"') : page.index("</main>")]


def test_open_data_page_prints_only_published_figures(
    anonymous: requests.Session, http: requests.Session, db: psycopg.Connection
) -> None:
    r = anonymous.get("/donnees-ouvertes")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/html")
    page = r.text
    shown = rows_of(page)
    regions = db.execute(
        "SELECT code, open_sites, population, minors, households FROM resorption.opendata_regions ORDER BY code"
    ).fetchall()
    assert regions and any(None in row for row in regions), "les données de démo doivent masquer des chiffres"
    for code, *figures in regions:
        assert shown[code][:4] == [french(v) for v in figures], code
    # Nationally: the sum of the published regional figures, no more.
    total = sum(row[1] for row in regions if row[1] is not None)
    national = re.search(r'data-mesure="open_sites">(.*?)</p>', page)
    assert national and national.group(1) == french(total)
    assert len(shown) == len(regions)
    departements = db.execute("SELECT count(*) FROM resorption.opendata_departements").fetchone()[0]
    assert page.count("<tr data-code=") == len(regions) + departements


def test_open_data_page_names_no_site_and_dates_its_figures_by_the_day(
    anonymous: requests.Session, db: psycopg.Connection
) -> None:
    page = anonymous.get("/donnees-ouvertes").text
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", main_of(page)))
    names = [n for (n,) in db.execute("SELECT DISTINCT name FROM resorption.sites WHERE length(name) > 12")]
    assert names
    assert not [n for n in names if n in text]
    assert f"au {french_day(today())}" in text
    assert not re.search(r"\b\d{1,2}[:h]\d{2}\b", text), "aucune heure de modification"


def test_open_data_page_is_the_same_for_everyone(anonymous: requests.Session, http: requests.Session) -> None:
    """The national administrator reads every site, yet gets the same suppressed figures."""
    assert rows_of(anonymous.get("/donnees-ouvertes").text) == rows_of(http.get("/donnees-ouvertes").text)


def test_footer_links_to_pages_that_say_what_the_service_does(anonymous: requests.Session) -> None:
    landing = anonymous.get("/", params={"f": "html"}).text
    footer = landing[landing.index('<footer class="fr-footer"') :]
    for path, words in [
        (
            "/accessibilite",
            ["Déclaration d’accessibilité", "non conforme", "axe-core", "Défenseur des droits"],
        ),
        ("/mentions-legales", ["Mentions légales", "Éditeur", "bidonvilles"]),
        ("/donnees-personnelles", ["Données personnelles", "CNIL", "cookie"]),
    ]:
        assert f'href="{anonymous.base_url}{path}"' in footer or f'href="{path}"' in footer, path
        r = anonymous.get(path)
        assert r.status_code == 200, path
        for expected in words:
            assert expected in r.text, f"{path} : « {expected} » manque"
