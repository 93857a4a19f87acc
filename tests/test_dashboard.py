"""The dashboard of a territory (`/tableau-de-bord/…`): the figures of territory-statistics as charts and CSV.

A départemental user opens their dashboard in a real Chromium (offline): the figures shown are
those the API's territory-statistics process returns for the same user, territory and period,
the charts are drawn, and the CSV carries the same numbers. Outside their scope, nothing: a 404.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.parse

import pytest
import requests
from playwright.sync_api import Page

from tests.fix_users import TestUser

OPERATOR = "operator-departement-33"
PROCESS = "/processes/territory-statistics/execution"


def session(base_url: str, user: TestUser | None) -> requests.Session:
    """A requests session as `user` (anonymous for None), paths relative to the server."""
    s = requests.Session()
    if user is not None:
        s.headers["Authorization"] = f"Bearer {user.token}"
    s.request = _relative(s.request, base_url)  # type: ignore[method-assign]
    return s


def _relative(send, base_url: str):
    def request(method: str, url: str, *args, **kwargs):
        kwargs.setdefault("timeout", 120)
        return send(method, base_url + url if url.startswith("/") else url, *args, **kwargs)

    return request


def api_statistics(
    s: requests.Session, level: str, code: str | None, start: str, end: str, step: str
) -> dict:
    """What the territory-statistics process answers through the API."""
    inputs = {"level": level, "start": start, "end": end, "step": step}
    if code:
        inputs["code"] = code
    r = s.post(PROCESS, json={"inputs": inputs})
    assert r.status_code == 200, r.text
    return r.json()


def digits(text: str) -> int:
    """« 12 345 » → 12345 (French thousands separators), « −3 » → -3."""
    sign = -1 if text.strip().startswith(("−", "-")) else 1
    return sign * int(re.sub(r"\D", "", text))


def canvas_is_drawn(page: Page, canvas_id: str) -> bool:
    """Whether a canvas has at least a few non-transparent pixels."""
    return page.evaluate(
        """id => {
            const c = document.getElementById(id);
            const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let drawn = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) drawn++; }
            return c.width > 0 && c.height > 0 && drawn > 100;
        }""",
        canvas_id,
    )


@pytest.fixture(scope="module")
def operator(users: dict[str, TestUser]) -> TestUser:
    """An association's operator in Gironde: reads the sites of the 33 only."""
    return users[OPERATOR]


def test_departemental_user_sees_their_dashboard(
    pages, screenshot, base_url: str, operator: TestUser
) -> None:
    page = pages.open(operator.username, operator.token)
    response = page.goto("/tableau-de-bord")
    assert response is not None and response.status == 200
    assert page.url.startswith(f"{base_url}/tableau-de-bord/departement-33")
    assert page.title() == "Tableau de bord — Gironde (33) · Résorption"
    page.wait_for_function("() => Chart.instances && Object.keys(Chart.instances).length === 5")

    start = page.input_value("#debut")
    end = page.input_value("#fin")
    step = {"mois": "month", "trimestre": "quarter", "annee": "year"}[page.input_value("#pas")]
    expected = api_statistics(session(base_url, operator), "departement", "33", start, end, step)
    last = expected["series"][-1]
    for key in ("sites", "people", "minors", "european_people"):
        shown = page.locator(f".dashboard-figure[data-key='{key}']").inner_text()
        assert digits(shown) == last[key], key
    assert last["sites"] > 0, "la Gironde de démonstration a des sites ouverts"

    rows = page.locator("#dashboard-table tbody tr")
    assert rows.count() == len(expected["series"])
    for i, point in enumerate(reversed(expected["series"])):
        cells = {c.get_attribute("data-key"): c for c in rows.nth(i).locator("td").all()}
        assert cells["date"].get_attribute("data-value") == point["date"]
        assert digits(cells["sites"].inner_text()) == point["sites"]
        assert digits(cells["people"].inner_text()) == point["people"]
        assert digits(cells["minors"].inner_text()) == point["minors"]
        assert digits(cells["closures.sites"].inner_text()) == point["closures"]["sites"]
        assert digits(cells["closures.people"].inner_text()) == point["closures"]["people"]

    for chart in ("chart-sites", "chart-people", "chart-living", "chart-closures", "chart-solutions"):
        assert canvas_is_drawn(page, chart), chart

    # The picker offers their département only.
    options = page.locator("#territoire option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["departement-33"]
    # The navigation bar says who is signed in.
    assert operator.username in page.locator("header").inner_text()
    assert (
        page.locator("header .fr-header__tools a", has_text="Se déconnecter").count() == 1
    )  # (the DSFR copies it into the mobile menu)
    screenshot(page, "gironde")
    assert not pages.console_errors


def test_changing_period_and_step_in_the_page(pages, screenshot, base_url: str, operator: TestUser) -> None:
    page = pages.open(operator.username, operator.token)
    page.goto("/tableau-de-bord/departement-33")
    page.fill("#debut", "2021-01-01")
    page.fill("#fin", "2024-12-31")
    page.select_option("#pas", "trimestre")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/tableau-de-bord/departement-33\?"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query == {"debut": ["2021-01-01"], "fin": ["2024-12-31"], "pas": ["trimestre"]}
    expected = api_statistics(
        session(base_url, operator), "departement", "33", "2021-01-01", "2024-12-31", "quarter"
    )
    assert page.locator("#dashboard-table tbody tr").count() == len(expected["series"])
    page.wait_for_function("() => Object.keys(Chart.instances).length === 5")
    assert canvas_is_drawn(page, "chart-people")
    screenshot(page, "gironde-trimestres")
    assert not pages.console_errors


def test_csv_has_the_same_figures(base_url: str, operator: TestUser) -> None:
    s = session(base_url, operator)
    r = s.get(
        "/tableau-de-bord/departement-33.csv",
        params={"debut": "2020-01-01", "fin": "2024-06-30", "pas": "trimestre"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="tableau-de-bord-departement-33-2020-01-01-2024-06-30.csv"'
    )
    assert r.content.startswith(b"\xef\xbb\xbf"), "Excel lit l'UTF-8 grâce au BOM"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    expected = api_statistics(s, "departement", "33", "2020-01-01", "2024-06-30", "quarter")["series"]
    assert len(rows) == len(expected)
    closures = 0
    for row, point in zip(rows, expected, strict=True):
        assert row["Date"] == point["date"]
        assert int(row["Sites ouverts"]) == point["sites"]
        assert int(row["Personnes"]) == point["people"]
        assert int(row["Mineurs"]) == point["minors"]
        assert int(row["Personnes d'origine européenne"]) == point["european_people"]
        assert int(row["Sites au statut « Existant »"]) == point["by_status"]["open"]
        assert int(row["Sites fermés pendant le pas"]) == point["closures"]["sites"]
        assert int(row["Personnes des sites fermés"]) == point["closures"]["people"]
        closures += point["closures"]["sites"]
        for solution in point["closures"]["solutions"]:
            if solution["solution"] == "social_housing":
                assert int(row["Logement social : personnes"]) == solution["people"]
        share = point["living_conditions"]["water"]["good"]
        text = row["Eau : part des sites « Bon » (%)"]
        if share is None:
            assert text == ""
        else:
            assert float(text.replace(",", ".")) == pytest.approx(share * 100)
            assert "." not in text, "virgule décimale pour Excel en français"
    assert closures > 0, "la période couvre des fermetures"


def test_csv_from_the_query_parameter(base_url: str, operator: TestUser) -> None:
    r = session(base_url, operator).get(
        "/tableau-de-bord/departement-33", params={"f": "csv", "pas": "annee"}
    )
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith(
        'attachment; filename="tableau-de-bord-departement-33-'
    )
    assert r.content.decode("utf-8-sig").startswith("Date;Sites ouverts;Personnes;Mineurs;")


@pytest.mark.parametrize(
    "territory", ["departement-93", "region-75", "region-11", "nation", "departement-99"]
)
def test_outside_the_scope_nothing_is_shown(pages, base_url: str, operator: TestUser, territory: str) -> None:
    s = session(base_url, operator)
    r = s.get(f"/tableau-de-bord/{territory}")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Tableau de bord introuvable" in r.text
    assert "dashboard-figure" not in r.text and "dashboard-data" not in r.text
    # The picker still offers what they may open.
    assert 'value="departement-33"' in r.text and 'value="departement-93"' not in r.text
    csv_response = s.get(f"/tableau-de-bord/{territory}.csv")
    assert csv_response.status_code == 404
    assert "territoires que vous pouvez consulter" in csv_response.json()["description"]
    picked = s.get("/tableau-de-bord", params={"territoire": territory}, allow_redirects=False)
    assert picked.status_code == 404


def test_another_departement_in_the_browser(pages, screenshot, operator: TestUser) -> None:
    page = pages.open(operator.username, operator.token)
    response = page.goto("/tableau-de-bord/departement-93")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Tableau de bord introuvable"
    assert page.locator("canvas").count() == 0
    assert page.locator("#territoire option").evaluate_all("os => os.map(o => o.value)") == ["departement-33"]
    screenshot(page, "seine-saint-denis")
    # Choosing from the picker goes back to what they may read.
    page.click("button[type=submit]")
    page.wait_for_url("**/tableau-de-bord/departement-33")
    # Chromium logs the 404 of the page itself, and nothing else.
    assert pages.console_errors == [
        "Failed to load resource: the server responded with a status of 404 (NOT FOUND)"
    ]


def test_sign_in_comes_back_to_the_dashboard(pages, screenshot, operator: TestUser) -> None:
    page = pages.open()
    page.goto("/tableau-de-bord/departement-33?pas=annee")
    assert "/connexion?suivant=" in page.url
    page.fill("input[name=identifiant]", operator.username)
    page.fill("input[name=mot_de_passe]", operator.token)
    page.click("button[type=submit]")
    page.wait_for_url("**/tableau-de-bord/departement-33?pas=annee")
    assert page.locator("h1").inner_text() == "Tableau de bord — Gironde (33)"
    page.wait_for_function("() => Object.keys(Chart.instances).length === 5")
    # The navigation bar knows the user of the session cookie as well.
    assert operator.username in page.locator("header").inner_text()
    screenshot(page, "apres-connexion")
    assert not pages.console_errors


def test_anonymous_is_sent_to_sign_in(base_url: str) -> None:
    s = session(base_url, None)
    r = s.get("/tableau-de-bord/departement-33", params={"pas": "annee"}, allow_redirects=False)
    assert r.status_code == 303
    assert r.headers["Location"] == "/connexion?suivant=%2Ftableau-de-bord%2Fdepartement-33%3Fpas%3Dannee"
    r = s.get("/tableau-de-bord", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/connexion?suivant=")
    r = s.get("/tableau-de-bord/departement-33.csv")
    assert r.status_code == 401
    assert "Authentification requise" in r.json()["description"]


def test_national_reader_picks_any_territory(base_url: str, users: dict[str, TestUser]) -> None:
    s = session(base_url, users["national-admin-nation"])
    r = s.get("/tableau-de-bord", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/tableau-de-bord/nation")
    page = s.get("/tableau-de-bord/region-75", params={"pas": "annee"})
    assert page.status_code == 200
    assert "Tableau de bord — Nouvelle-Aquitaine" in page.text
    for value in ("nation", "region-11", "region-75", "departement-33", "departement-93", "departement-976"):
        assert f'value="{value}"' in page.text
    picked = s.get(
        "/tableau-de-bord", params={"territoire": "departement-93", "pas": "annee"}, allow_redirects=False
    )
    assert picked.headers["Location"].endswith("/tableau-de-bord/departement-93?pas=annee")


def test_a_commune_area_opens_its_departement(base_url: str, users: dict[str, TestUser]) -> None:
    r = session(base_url, users["operator-commune-33063"]).get("/tableau-de-bord", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/tableau-de-bord/departement-33")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"debut": "01/01/2022"}, "écrivez-la AAAA-MM-JJ"),
        ({"pas": "semaine"}, "pas=mois, pas=trimestre ou pas=annee"),
        ({"debut": "2024-01-01", "fin": "2023-01-01"}, "inversez-les"),
        ({"fin": "2999-01-01"}, "dans le futur"),
        ({"debut": "1990-01-01", "pas": "mois"}, "pas plus long"),
    ],
)
def test_a_bad_period_says_what_to_change(
    base_url: str, operator: TestUser, params: dict, message: str
) -> None:
    r = session(base_url, operator).get("/tableau-de-bord/departement-33.csv", params=params)
    assert r.status_code == 400
    assert message in r.json()["description"]
