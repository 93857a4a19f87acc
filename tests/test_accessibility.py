"""Accessibility measured: axe-core on every page type, signed in as each demo role.

What the issue asks (« Accessibility measured »): the State's services follow the RGAA (WCAG 2.1
AA). Each test here signs in through the sign-in form as one of the demo accounts
(`demo-national`, `demo-gironde`, `demo-observateur-93`), opens every type of page it may open
(the pages whose markup no role changes: with the national user only), runs axe-core (npm
`axe-core`, vendored for the tests only under tests/vendor/axe-core/, never served) on the
WCAG 2 A/AA rules, and fails on any violation of impact « serious » or
« critical ». A summary per page (violations by impact, with the rules and how many nodes; the
checks axe leaves to a human) is printed at the end of the test report
(`pytest_terminal_summary` in conftest.py) and written to tests/output/accessibilite.md. Every page
is also screenshotted (tests/output/screenshots/test_axe_*), in the light and the dark theme.

axe runs through Playwright's `evaluate`, which the page's CSP does not cover: the pages
themselves still load no inline code (the `pages` fixture fails a test on any CSP report).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from playwright.sync_api import Page, expect

from resorption.demo.accounts import DEMO_PASSWORD
from resorption.mail_server import Received
from tests.fix_browser import Pages
from tests.test_site_forms import demo, sign_in, wait_map  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
REPORT = Path(os.environ.get("RESORPTION_TEST_OUTPUT", ROOT / "tests" / "output")) / "accessibilite.md"
# The rules of WCAG 2.0, 2.1 and 2.2, levels A and AA (axe's tags).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING = {"serious", "critical"}
ROLES = ("demo-national", "demo-gironde", "demo-observateur-93")
# Every result of the session, for the report: (role, page, violations, incomplete).
RESULTS: list[tuple[str, str, list[dict[str, Any]], int]] = []


def axe(page: Page) -> dict[str, Any]:
    """axe-core's results for the page as it is now (WCAG 2 A/AA rules only)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations", "incomplete"]}
    return page.evaluate("options => window.axe.run(document, options)", options)


def summary(violations: list[dict[str, Any]]) -> str:
    """« serious: color-contrast (3) » lines, one per violation."""
    return "; ".join(f"{v['impact']}: {v['id']} ({len(v['nodes'])})" for v in violations) or "aucune"


def check(page: Page, role: str, name: str, screenshot: Any) -> None:
    """Run axe on the page, record its results, screenshot it (light and dark), fail on serious ones."""
    page.wait_for_load_state("networkidle")
    results = axe(page)
    violations = results["violations"]
    RESULTS.append((role, name, violations, len(results["incomplete"])))
    screenshot(page, name)  # the test's name already says the role
    failing = [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"][:5]],
        }
        for v in violations
        if v["impact"] in FAILING
    ]
    assert not failing, f"{name} ({role}) : {json.dumps(failing, ensure_ascii=False, indent=1)}"


def dark(
    page: Page, role: str, name: str, screenshot: Any, ready: Callable[[Page], None] | None = None
) -> None:
    """The same page in the DSFR's dark theme, as the display settings store it (the page
    reloads: charts and maps read their colours at load), checked again; then back to light."""
    page.evaluate("() => localStorage.setItem('scheme', 'dark')")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-fr-theme", "dark")
    if ready is not None:
        ready(page)
    page.wait_for_timeout(300)  # the theme's transitions
    check(page, role, f"{name}-sombre", screenshot)
    page.evaluate("() => localStorage.setItem('scheme', 'light')")


def write_report() -> str:
    """The per-page summary as Markdown (also printed at the end of the test report)."""
    lines = [
        "# Accessibilité mesurée (axe-core, WCAG 2 A/AA)",
        "",
        "| rôle | page | violations (impact : règle (éléments)) | à vérifier à la main |",
        "|---|---|---|---|",
    ]
    lines += [f"| {role} | {name} | {summary(v)} | {incomplete} |" for role, name, v, incomplete in RESULTS]
    text = "\n".join(lines) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    return text


def _first(db: psycopg.Connection, sql: str, *params: Any) -> Any:
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def _ids(db: psycopg.Connection, role: str) -> dict[str, Any]:
    """A site, an action and a job the role may open (the demo data has them all)."""
    where = {"demo-national": "true", "demo-gironde": "departement_code = '33'"}.get(
        role, "departement_code = '93'"
    )
    site = _first(
        db, f"SELECT id FROM resorption.sites WHERE {where} AND status = 'open' ORDER BY id LIMIT 1"
    )
    action = db.execute(f"SELECT id FROM resorption.actions WHERE {where} ORDER BY id LIMIT 1").fetchone()
    return {"site": site, "action": action[0] if action else None}


def _job(base_url: str, auth: requests.auth.AuthBase, departement: str) -> str:
    """A finished background job of the user (the statistics of their département)."""
    inputs = {
        "level": "departement",
        "code": departement,
        "start": "2024-01-01",
        "end": "2025-01-01",
        "step": "year",
    }
    r = requests.post(
        f"{base_url}/processes/territory-statistics/execution",
        json={"inputs": inputs},
        headers={"Prefer": "respond-async"},
        auth=auth,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    job = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    for _ in range(120):
        status = requests.get(f"{base_url}/jobs/{job}", params={"f": "json"}, auth=auth, timeout=60).json()[
            "status"
        ]
        if status in ("successful", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError("la tâche ne s'est pas terminée")


def sheet_open(page: Page, site: int) -> None:
    expect(page.locator("#fiche .fiche")).to_have_attribute("data-site-id", str(site))
    expect(page.locator("#fiche .fiche-historique li").first).not_to_have_text("Chargement…")


def test_axe_sign_in_and_public_pages(pages: Pages, screenshot: Any) -> None:
    """The pages anyone opens: sign-in, open data, accessibility, legal notice, personal data."""
    page = pages.open()
    for name, path in [
        ("connexion", "/connexion"),
        ("donnees-ouvertes", "/donnees-ouvertes"),
        ("accessibilite", "/accessibilite"),
        ("mentions-legales", "/mentions-legales"),
        ("donnees-personnelles", "/donnees-personnelles"),
    ]:
        page.goto(path)
        check(page, "anonyme", name, screenshot)
    dark(page, "anonyme", "donnees-personnelles", screenshot)
    page.goto("/donnees-ouvertes")
    dark(page, "anonyme", "donnees-ouvertes", screenshot)
    page.goto("/connexion")
    dark(page, "anonyme", "connexion", screenshot)


@pytest.mark.parametrize("role", ROLES)
def test_axe_every_page_type(
    role: str,
    base_url: str,
    pages: Pages,
    demo: dict,  # noqa: F811  (the fixture imported above)
    db: psycopg.Connection,
    screenshot: Any,
) -> None:
    ids = _ids(db, role)
    page = sign_in(pages, role, DEMO_PASSWORD)
    wait_map(page)
    check(page, role, "carte", screenshot)
    # The national user's pages are the richest: the dark theme (the same style sheet for every
    # role) and the pages whose markup no role changes are checked with them only.
    richest = role == "demo-national"
    if richest:
        dark(page, role, "carte", screenshot, wait_map)
    page.get_by_role("button", name="Liste").click()
    expect(page.locator("#carte-liste table tbody tr").first).to_be_visible()
    check(page, role, "carte-liste", screenshot)

    page.goto(f"/carte?site={ids['site']}")
    sheet_open(page, ids["site"])
    check(page, role, "fiche-site", screenshot)
    if richest:
        dark(page, role, "fiche-site", screenshot, lambda p: sheet_open(p, ids["site"]))

    paths = [
        ("accueil", "/"),
        ("declarer", "/carte/sites/nouveau"),
        ("tableau-de-bord", "/tableau-de-bord"),
        ("tableau-de-bord-actions", "/tableau-de-bord/actions"),
        ("activites", "/activites"),
        ("actions", "/actions"),
        ("elements", "/collections/sites/items?f=html"),
        ("element", f"/collections/sites/items/{ids['site']}?f=html"),
        ("taches", "/jobs?f=html"),
    ]
    if richest:
        # A role changes at most how many entries these list (~45 s of CI for the two other roles).
        paths += [
            ("collections", "/collections?f=html"),
            ("collection", "/collections/sites?f=html"),
            ("queryables", "/collections/sites/queryables?f=html"),
            ("processus", "/processes?f=html"),
            ("processus-un", "/processes/territory-statistics?f=html"),
            ("conformite", "/conformance?f=html"),
            ("donnees-ouvertes", "/donnees-ouvertes"),
            ("deconnexion", "/deconnexion"),
        ]
    if ids["action"] is not None:
        paths += [
            ("action", f"/actions/{ids['action']}"),
            ("action-resultats", f"/actions/{ids['action']}/resultats"),
        ]
    if role != "demo-observateur-93":
        paths.append(("action-formulaire", "/actions/nouvelle"))
    job = _job(base_url, demo[role], "93" if role == "demo-observateur-93" else "33")
    paths += [("tache", f"/jobs/{job}?f=html"), ("tache-resultats", f"/jobs/{job}/results?f=html")]
    for name, path in paths:
        answer = page.goto(path)
        assert answer is not None and answer.status in (200, 403), f"{path}: {answer and answer.status}"
        check(page, role, name, screenshot)
    if richest:
        page.goto("/tableau-de-bord")
        dark(page, role, "tableau-de-bord", screenshot)
        page.goto(f"/collections/sites/items/{ids['site']}?f=html")
        dark(page, role, "element", screenshot)


def test_axe_map_with_commune_names(
    pages: Pages,
    demo: dict,  # noqa: F811  (the fixture imported above: the demo accounts exist)
    screenshot: Any,
) -> None:
    """/carte zoomed in (from zoom 12): commune outlines and names from the communes' vector
    tiles, each commune named once, the names hidden from screen readers (the list view says
    each site's commune), and the map still without serious violation."""
    page = sign_in(pages, "demo-gironde", DEMO_PASSWORD)
    wait_map(page)
    names = page.locator(".res-nom-commune")
    for _ in range(6):
        if names.count():
            break
        page.locator(".leaflet-control-zoom-in").click()
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(400)  # names are drawn once the tiles are in (carte.js)
    page.wait_for_timeout(500)
    labels = page.evaluate(
        "() => [...document.querySelectorAll('.res-nom-commune')].map(l => {"
        " const span = l.querySelector('span[aria-hidden=\"true\"]');"
        " return span ? [span.dataset.code, span.textContent] : [null, l.textContent]; })"
    )
    assert labels, "aucun nom de commune sur la carte"
    codes = [code for code, _ in labels]
    texts = [text for _, text in labels]
    assert None not in codes, "un nom lu par les lecteurs d'écran"
    assert len(set(codes)) == len(codes), "une commune nommée deux fois"
    assert {"Bordeaux", "Mérignac"} & set(texts), texts[:20]
    check(page, "demo-gironde", "carte-noms-communes", screenshot)


def test_axe_api_documentation(pages: Pages, screenshot: Any) -> None:
    """Swagger UI (vendored swagger-ui-dist) on its DSFR page, an operation opened: no serious
    violation (its badges, links and the servers' list are fixed by our CSS and swagger.js)."""
    page = pages.open()
    page.goto("/openapi?f=html")
    expect(page.locator("header.fr-header")).to_be_visible()
    expect(page.locator("#navigation-principale [aria-current='page']")).to_have_text("API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=30_000)
    page.locator(".swagger-ui .opblock-summary-control").first.click()
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    check(page, "anonyme", "api", screenshot)
    dark(
        page, "anonyme", "api", screenshot,
        lambda p: expect(p.locator(".swagger-ui .opblock").first).to_be_visible(timeout=30_000),
    )  # fmt: skip


def test_axe_error_pages(
    pages: Pages,
    demo: dict,  # noqa: F811  (the fixture imported above: the demo accounts exist)
    screenshot: Any,
) -> None:
    """The DSFR error pages a person meets (403, 404 of our pages and of pygeoapi's, 400)."""
    page = sign_in(pages, "demo-observateur-93", DEMO_PASSWORD)
    for name, path, status in [
        ("erreur-403", "/actions/nouvelle", 403),
        ("erreur-404", "/cette-page-nexiste-pas", 404),
        ("erreur-404-element", "/collections/sites/items/999999999?f=html", 404),
        ("erreur-404-tache", "/jobs/inconnue?f=html", 404),
        ("erreur-400", "/collections/sites/items?f=html&limit=abc", 400),
    ]:
        answer = page.goto(path)
        assert answer is not None and answer.status == status, (path, answer and answer.status)
        expect(page.locator("#erreur h1")).to_be_visible()
        check(page, "demo-observateur-93", name, screenshot)
    dark(page, "demo-observateur-93", "erreur-400", screenshot)


def _link(message: Received, path: str) -> str:
    text = message.message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(rf"https?://\S+{path}/[A-Za-z0-9_-]+", text)
    assert found, text
    return found.group(0)


def test_axe_account_pages(
    pages: Pages,
    demo: dict,  # noqa: F811  (the fixture imported above)
    deliver: Callable[..., list[Received]],
    screenshot: Any,
) -> None:
    """The account pages, each in the state a person meets it: the access request (empty, refused
    with the typed values kept, sent), the forgotten password, the charter, the requests of the
    national administrator with one pending, the users and a user's page, the activation link
    (and its refusal of a weak password), « Mon compte » of each demo role (with a new token
    shown once), the demo's mail pages and a received e-mail."""
    tag = secrets.token_hex(3)
    email = f"axe-{tag}@horizon.test"
    deliver()  # whatever other tests left in the outbox
    page = pages.open()
    for name, path in [
        ("demande-acces", "/demande-acces"),
        ("mot-de-passe-oublie", "/mot-de-passe-oublie"),
        ("charte", "/charte"),
    ]:
        page.goto(path)
        check(page, "anonyme", name, screenshot)

    # the request refused (the browser's own checks off: the server's message is measured)
    page.goto("/demande-acces")
    page.get_by_label("Prénom et nom").fill("Alex Martin")
    page.get_by_label("Adresse électronique professionnelle").fill(email)
    page.get_by_label("Organisation (service, collectivité, association)").fill("Association Horizon")
    page.get_by_label("Territoire (département où vous intervenez)").select_option("33")
    page.get_by_label("Rôle souhaité").select_option("intervener")
    page.get_by_label("Motif (votre mission, ce dont vous avez besoin)").fill("Court")
    page.evaluate("() => { document.querySelector('#demande-acces').noValidate = true; }")
    page.get_by_role("button", name="Envoyer la demande").click()
    expect(page.locator("#erreur")).to_be_visible()
    expect(page.get_by_label("Prénom et nom")).to_have_value("Alex Martin")
    check(page, "anonyme", "demande-acces-erreur", screenshot)
    page.get_by_label("Motif (votre mission, ce dont vous avez besoin)").fill(
        "J'accompagne les familles du site de la Jallère pour la scolarisation."
    )
    page.wait_for_timeout(3200)  # a person takes a few seconds; the form refuses robots' haste silently
    page.get_by_role("button", name="Envoyer la demande").click()
    expect(page.locator("#demande-envoyee")).to_be_visible()
    check(page, "anonyme", "demande-envoyee", screenshot)
    page.goto("/demande-acces")
    dark(page, "anonyme", "demande-acces", screenshot)

    page.goto("/mot-de-passe-oublie")
    page.get_by_label("Adresse électronique de votre compte").fill(f"personne-{tag}@horizon.test")
    page.get_by_role("button", name="Recevoir un lien").click()
    expect(page.locator("#oubli-envoye")).to_be_visible()
    check(page, "anonyme", "mot-de-passe-oublie-envoye", screenshot)

    # the national administrator: the pending request, accepted; the users; the user's page
    admin = sign_in(pages, "demo-national", DEMO_PASSWORD, "/administration/demandes")
    request = admin.locator("article.demande", has_text=email)
    expect(request).to_be_visible()
    check(admin, "demo-national", "demandes", screenshot)
    dark(admin, "demo-national", "demandes", screenshot)
    admin.reload()
    admin.locator("article.demande", has_text=email).get_by_label("Identifiant").fill(f"axe-{tag}")
    admin.locator("article.demande", has_text=email).get_by_role(
        "button", name="Accepter et envoyer le lien d'activation"
    ).click()
    expect(admin.locator("#fiche-utilisateur")).to_contain_text(email)
    check(admin, "demo-national", "utilisateur", screenshot)
    admin.goto("/administration/utilisateurs")
    check(admin, "demo-national", "utilisateurs", screenshot)

    # the activation link: the charter and a password, a weak one refused, then the right one
    activation = [
        m
        for m in deliver()
        if email in m.rcpt_tos and m.message["Subject"] == "Activez votre compte Résorption"
    ]
    assert len(activation) == 1
    person = pages.open()
    person.goto(_link(activation[0], "/activation"))
    expect(person.locator("#identifiant")).to_have_text(f"axe-{tag}")
    check(person, "anonyme", "activation", screenshot)
    person.get_by_label("J'ai lu la charte d'utilisation et je l'accepte.").check()
    person.get_by_label("Mot de passe", exact=True).fill("motdepasse123")
    person.get_by_label("Confirmez le mot de passe").fill("motdepasse123")
    person.get_by_role("button", name="Activer mon compte").click()
    expect(person.locator("#erreur")).to_be_visible()
    check(person, "anonyme", "activation-erreur", screenshot)
    person.get_by_label("J'ai lu la charte d'utilisation et je l'accepte.").check()
    person.get_by_label("Mot de passe", exact=True).fill("Cabane-des-Pins-2026!")
    person.get_by_label("Confirmez le mot de passe").fill("Cabane-des-Pins-2026!")
    person.get_by_role("button", name="Activer mon compte").click()
    expect(person.locator("#lien-utilise")).to_be_visible()
    check(person, "anonyme", "lien-utilise", screenshot)

    # « Mon compte » of each demo role, and the administration refused to those who manage nothing
    for role in ROLES:
        mine = sign_in(pages, role, DEMO_PASSWORD, "/mon-compte")
        check(mine, role, "mon-compte", screenshot)
        if role == "demo-gironde":
            mine.get_by_label("Libellé").fill("QGIS bureau")
            mine.get_by_role("button", name="Créer un jeton").click()
            expect(mine.locator("#nouveau-jeton")).to_have_value(re.compile(r"^rsp_"))
            check(mine, role, "mon-compte-jeton", screenshot)
            mine.goto("/mon-compte")
            dark(mine, role, "mon-compte", screenshot)
        if role != "demo-national":
            answer = mine.goto("/administration/utilisateurs")
            assert answer is not None and answer.status == 403, answer and answer.status
            check(mine, role, "administration-refusee", screenshot)
        mine.goto("/charte")
        check(mine, role, "charte", screenshot)

    # the demo's mail pages: the list, a message, its HTML part (sandboxed: no CSP report)
    page.goto("/courriels")
    check(page, "anonyme", "courriels", screenshot)
    page.locator("#courriels a", has_text="Activez votre compte").first.click()
    expect(page.locator("#texte")).to_contain_text(f"axe-{tag}")
    check(page, "anonyme", "courriel", screenshot)
    page.get_by_role("link", name="Version HTML").click()
    button = page.get_by_role("link", name="Activer mon compte")
    expect(button).to_have_css("background-color", "rgb(0, 0, 145)")  # its inline styles apply
    screenshot(page, "courriel-html")  # no axe here: the sandbox lets no script run, not even axe
