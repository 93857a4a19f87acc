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


def test_national_figures_are_the_sums_of_the_published_regions(
    anonymous: requests.Session, db: psycopg.Connection
) -> None:
    """The rule of the national line (web/public_pages._total): for every measure, the sum of
    the published regional figures, so that the national figure minus the published regions is
    always 0 and no suppressed region can be recovered from it; « s.s. » (not 0) when every region
    hides the figure; the page states the rule and counts the regions left out."""
    page = anonymous.get("/donnees-ouvertes").text
    assert "somme des chiffres publiés des régions" in page and 'id="regle-total"' in page
    closings = page[page.index('id="tableau-fermetures"') : page.index('id="tableau-regions"')]
    closed_rows = re.findall(
        r'<tr><th scope="row">[^<]*</th><td class="res-text-end">(.*?)</td>\s*<td class="res-text-end">(\d+)</td></tr>',
        closings,
    )
    measures = ["open_sites", "population", "minors", "households"]
    closed = [
        "closed_resorbed", "closed_by_justice", "closed_by_pref_admin",
        "closed_by_city_admin", "closed_other", "closed_unknown",
    ]  # fmt: skip
    assert len(closed_rows) == len(closed)
    columns = ", ".join(measures + closed)
    regions = db.execute(f"SELECT {columns} FROM resorption.opendata_regions").fetchall()
    for i, measure in enumerate(measures + closed):
        published = [row[i] for row in regions if row[i] is not None]
        expected = french(sum(published) if published else None)
        hidden = len(regions) - len(published)
        if measure in measures:
            shown = re.search(rf'data-mesure="{measure}">(.*?)</p>', page)
            assert shown and shown.group(1) == expected, measure
        else:
            figure, count = closed_rows[closed.index(measure)]
            assert figure == expected and int(count) == hidden, measure
    # The demo data hides some regional figures, and at least one closing status is hidden in
    # most regions: the national line then shows less than the truth, never the truth minus a
    # published part.
    assert any(None in row for row in regions)


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
