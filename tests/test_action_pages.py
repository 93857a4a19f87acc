"""The action pages for people who do not use GIS: the list `/actions`, the sheet
`/actions/<id>` with its journal, the form `/actions/nouvelle` and `/actions/<id>/modifier`
with the footprint drawn on the map, in a real browser (Debian's Chromium) against the real
server and PostGIS.

Every read is the reader's as the user (another département: no row, a 404 on the sheet);
every write the write path's (the same French errors by field as the API, `If-Match`).
The actions a test creates are deleted when it ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from playwright.sync_api import Page, expect

from resorption.demo.accounts import DEMO_PASSWORD, ensure_demo_accounts
from tests.fix_users import POLICY, TestUser

GIRONDE_SQUARE = [[[-0.58, 44.83], [-0.57, 44.83], [-0.57, 44.84], [-0.58, 44.84], [-0.58, 44.83]]]
SAINT_DENIS_SQUARE = [[[2.35, 48.93], [2.36, 48.93], [2.36, 48.94], [2.35, 48.94], [2.35, 48.93]]]
CORRESPONDENT = "correspondent-departement-33"  # writes actions in 33, reads the finances
OPERATOR = "operator-departement-33"  # writes actions in 33, no finances
NEIGHBOUR = "operator-departement-93"  # reads nothing of 33


def headers(user: TestUser | None, **more: str) -> dict[str, str]:
    return {**(user.headers if user else {}), **more}


@pytest.fixture
def created(database_url: str) -> Iterator[list[int]]:
    """The actions a test created (by the API or the form), deleted as the owner."""
    actions: list[int] = []
    yield actions
    with psycopg.connect(database_url) as conn:
        for identifier in actions:
            conn.execute("DELETE FROM resorption.actions WHERE id = %s", (identifier,))


def new_action(base_url: str, created: list[int], users: dict[str, TestUser], square: list, name: str) -> int:
    feature = {
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [square]},
        "properties": {"name": name, "started_at": "2023-01-01", "topics": ["schooling", "health"]},
    }
    r = requests.post(
        f"{base_url}/collections/actions/items",
        json=feature,
        headers=headers(users["national-admin-nation"]),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    identifier = int(r.headers["Location"].rsplit("/", 1)[1])
    created.append(identifier)
    return identifier


def test_the_list_shows_only_the_actions_read_filtered_and_paged(
    base_url: str, users: dict[str, TestUser], created: list[int]
) -> None:
    ours = new_action(base_url, created, users, GIRONDE_SQUARE, "Médiation scolaire des pages (33)")
    theirs = new_action(base_url, created, users, SAINT_DENIS_SQUARE, "Action des pages (93)")
    correspondent = users[CORRESPONDENT]
    r = requests.get(f"{base_url}/actions", headers=headers(correspondent), timeout=60)
    assert r.status_code == 200 and "no-store" in r.headers["Cache-Control"]
    # What the API says this user reads is what the list counts.
    api = requests.get(
        f"{base_url}/collections/actions/items",
        params={"f": "json", "limit": 1},
        headers=headers(correspondent),
        timeout=60,
    ).json()
    assert f'data-count="{api["numberMatched"]}"' in r.text
    r = requests.get(
        f"{base_url}/actions",
        params={"thematique": "schooling", "territoire": "33", "etat": "en_cours"},
        headers=headers(correspondent),
        timeout=60,
    )
    assert f'href="{base_url}/actions/{ours}"' in r.text
    assert f"/actions/{theirs}" not in r.text
    # Another topic leaves it out; a nonsense filter is ignored, never an error.
    r = requests.get(
        f"{base_url}/actions",
        params={"thematique": "housing", "territoire": "33"},
        headers=headers(correspondent),
        timeout=60,
    )
    assert f'/actions/{ours}"' not in r.text
    r = requests.get(
        f"{base_url}/actions",
        params={"territoire": "33') OR (1=1", "debut": "-3"},
        headers=headers(correspondent),
        timeout=60,
    )
    assert r.status_code == 200
    # The neighbour's list never names the Gironde's action, whatever the filter.
    neighbour = users[NEIGHBOUR]
    for params in ({}, {"territoire": "33"}, {"thematique": "schooling"}):
        r = requests.get(f"{base_url}/actions", params=params, headers=headers(neighbour), timeout=60)
        assert r.status_code == 200 and "Médiation scolaire des pages" not in r.text
    r = requests.get(
        f"{base_url}/actions", params={"territoire": "33"}, headers=headers(neighbour), timeout=60
    )
    assert 'data-count="0"' in r.text
    # Anonymous: to the sign-in page.
    r = requests.get(f"{base_url}/actions", allow_redirects=False, timeout=60)
    assert r.status_code in (302, 303) and "/connexion" in r.headers["Location"]


def test_the_sheet_shows_what_the_reader_gives(
    base_url: str, users: dict[str, TestUser], created: list[int], database_url: str
) -> None:
    action = new_action(base_url, created, users, GIRONDE_SQUARE, "Action de la fiche")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO resorption.action_finances (action_id, year, funding_type, budget) "
            "VALUES (%s, 2025, 'state', 4321)",
            (action,),
        )
    correspondent, operator, neighbour = users[CORRESPONDENT], users[OPERATOR], users[NEIGHBOUR]
    page = requests.get(f"{base_url}/actions/{action}", headers=headers(correspondent), timeout=60)
    assert page.status_code == 200
    assert "Financements" in page.text and "4321" in page.text
    assert f"/collections/action_changes/items?action_id={action}" in page.text
    assert f"/actions/{action}/resultats" in page.text and 'id="modifier-action"' in page.text
    # Without the finances group: no funding on the sheet.
    page = requests.get(f"{base_url}/actions/{action}", headers=headers(operator), timeout=60)
    assert page.status_code == 200 and "4321" not in page.text and "Financements" not in page.text
    # Out of scope: the same 404 as an action that does not exist, for every page.
    for path in (f"/actions/{action}", f"/actions/{action}/modifier", "/actions/999999999"):
        r = requests.get(base_url + path, headers=headers(neighbour), timeout=60)
        assert r.status_code == 404, (path, r.status_code)
        assert "Action de la fiche" not in r.text
    r = requests.post(
        f"{base_url}/actions/{action}",
        data={"message": "Intrusion", "visibility": "everyone"},
        headers=headers(neighbour),
        timeout=60,
    )
    assert r.status_code == 404
    r = requests.post(
        f"{base_url}/actions/{action}/modifier",
        data={"name": "Renommée par un voisin"},
        headers=headers(neighbour),
        timeout=60,
    )
    assert r.status_code == 404
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT name, (SELECT count(*) FROM resorption.action_comments WHERE action_id = a.id) "
            "FROM resorption.actions a WHERE id = %s",
            (action,),
        ).fetchone() == ("Action de la fiche", 0)


def test_the_form_says_every_problem_by_field_and_refuses_a_stale_version(
    base_url: str, users: dict[str, TestUser], created: list[int]
) -> None:
    action = new_action(base_url, created, users, GIRONDE_SQUARE, "Action du formulaire")
    correspondent = users[CORRESPONDENT]
    r = requests.post(
        f"{base_url}/actions/nouvelle",
        data={
            "name": "Sans dates",
            "started_at": "2024-05-01",
            "ended_at": "2023-01-01",
            "footprint": "{pas du json",
        },
        headers=headers(correspondent),
        timeout=60,
    )
    assert r.status_code == 400
    assert "Rien n&#39;a été enregistré" in r.text or "Rien n'a été enregistré" in r.text
    assert 'id="geometry-error"' in r.text
    # A version read before someone else's change: nothing written, 412.
    item = requests.get(
        f"{base_url}/collections/actions/items/{action}",
        params={"f": "json"},
        headers=headers(correspondent),
        timeout=60,
    )
    old = item.headers["ETag"]
    r = requests.patch(
        f"{base_url}/collections/actions/items/{action}",
        json={"properties": {"goals": "Changé entre-temps"}},
        headers=headers(correspondent, **{"Content-Type": "application/merge-patch+json", "If-Match": old}),
        timeout=60,
    )
    assert r.status_code == 204, r.text
    r = requests.post(
        f"{base_url}/actions/{action}/modifier",
        data={
            "name": "Écrasement",
            "started_at": "2023-01-01",
            "version": old,
            "footprint": json.dumps({"type": "MultiPolygon", "coordinates": [GIRONDE_SQUARE]}),
        },
        headers=headers(correspondent),
        timeout=60,
    )
    assert r.status_code == 412 and "modifiée par quelqu" in r.text
    name = requests.get(
        f"{base_url}/collections/actions/items/{action}",
        params={"f": "json"},
        headers=headers(correspondent),
        timeout=60,
    ).json()["properties"]["name"]
    assert name == "Action du formulaire"


def draw_square(page: Page) -> None:
    """Four clicks on the map, the last a double click: one closed polygon."""
    page.locator("#action-carte").scroll_into_view_if_needed()
    box = page.locator("#action-carte").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-40, -40), (40, -40), (40, 40)):
        page.mouse.click(x + dx, y + dy)
    page.mouse.dblclick(x - 40, y + 40)
    expect(page.locator("#action-carte")).to_have_attribute("data-polygons", "1")


def test_a_correspondent_lists_creates_edits_and_writes_in_the_journal(
    pages: Any,
    screenshot: Any,
    base_url: str,
    users: dict[str, TestUser],
    created: list[int],
    database_url: str,
) -> None:
    correspondent = users[CORRESPONDENT]
    page = pages.open(correspondent.username, correspondent.token)
    assert page.goto("/actions").status == 200
    screenshot(page, "liste")
    page.click("#creer-action")
    page.wait_for_url("**/actions/nouvelle")
    page.fill("#name", "Accompagnement vers l'emploi (test)")
    page.fill("#started_at", "2024-03-01")
    page.check("#topics-training_employment")
    page.select_option("#place_type", "on_site")
    # The map starts on the Gironde, whose outline is drawn.
    expect(page.locator("#action-carte")).to_have_attribute("data-ready", "1")
    draw_square(page)
    # Undo: one vertex of a new polygon, then removed.
    box = page.locator("#action-carte").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] - 60, box["y"] + 60)
    expect(page.locator("#action-carte")).to_have_attribute("data-vertices", "1")
    page.click("#emprise-annuler")
    expect(page.locator("#action-carte")).to_have_attribute("data-vertices", "0")
    footprint = json.loads(page.input_value("#footprint"))
    assert footprint["type"] == "MultiPolygon" and len(footprint["coordinates"]) == 1
    assert len(footprint["coordinates"][0][0]) == 5  # four vertices, closed
    screenshot(page, "dessin")
    with page.expect_navigation():
        page.click("#action-form button[type=submit]")
    assert re.search(r"/actions/\d+\?enregistre=creee$", page.url), page.url
    action = int(re.search(r"/actions/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    created.append(action)
    expect(page.locator("#enregistre")).to_have_text("L'action est créée.")
    assert page.locator("path.action-emprise").count() == 1
    screenshot(page, "fiche")
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT name, topics::text[], ST_NumGeometries(footprint), created_by FROM resorption.actions "
            "WHERE id = %s",
            (action,),
        ).fetchone()
    assert row is not None and row[0] == "Accompagnement vers l'emploi (test)"
    assert row[1] == ["training_employment"] and row[2] == 1 and row[3] == correspondent.username

    # Edit: the form carries the version it was filled from (If-Match).
    page.click("#modifier-action")
    page.wait_for_url(f"**/actions/{action}/modifier")
    assert page.input_value("input[name=version]")
    page.fill("#goals", "Dix contrats de travail avant la fin de l'année.")
    page.fill("#ended_at", "2020-01-01")  # before the start: refused, said by its field
    with page.expect_navigation():
        page.click("#action-form button[type=submit]")
    assert page.inner_text("#ended_at-error") == "la date de fin précède la date de début"
    assert "Date de fin : la date de fin précède la date de début" in page.inner_text("#form-errors")
    # What was typed stays in the form.
    assert page.input_value("#goals") == "Dix contrats de travail avant la fin de l'année."
    screenshot(page, "erreur")
    assert [e for e in pages.console_errors if "status of 400" not in e] == []
    pages.console_errors.clear()
    page.fill("#ended_at", "2026-12-31")
    with page.expect_navigation():
        page.click("#action-form button[type=submit]")
    assert page.url.endswith("?enregistre=modifiee")
    assert "Dix contrats de travail" in page.inner_text("#action-fiche")

    # The journal: a message with a tag, then shown newest first.
    page.fill("#journal-message", "Rencontre avec l'employeur partenaire : trois entretiens prévus.")
    tag = page.locator("#journal-form input[name=tags]").first
    tag.check()
    with page.expect_navigation():
        page.click("#journal-form button[type=submit]")
    assert "enregistre=message" in page.url
    expect(page.locator("#journal-messages li").first).to_contain_text("trois entretiens prévus")
    screenshot(page, "journal")
    assert not pages.console_errors
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT created_by, cardinality(tags) FROM resorption.action_comments WHERE action_id = %s",
            (action,),
        ).fetchall() == [(correspondent.username, 1)]


def test_a_geojson_file_gives_the_footprint(
    pages: Any, base_url: str, users: dict[str, TestUser], created: list[int], tmp_path: Any
) -> None:
    correspondent = users[CORRESPONDENT]
    page = pages.open(correspondent.username, correspondent.token)
    page.goto("/actions/nouvelle")
    path = tmp_path / "emprise.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Polygon", "coordinates": GIRONDE_SQUARE},
                    }
                ],
            }
        )
    )
    page.set_input_files("#emprise-fichier", str(path))
    expect(page.locator("#action-carte")).to_have_attribute("data-polygons", "1")
    page.fill("#name", "Action importée (test)")
    page.fill("#started_at", "2024-01-01")
    # Without a topic: refused, said by its field; the imported footprint stays in the form.
    with page.expect_navigation():
        page.click("#action-form button[type=submit]")
    assert page.inner_text("#topics-error") == "au moins une thématique est obligatoire"
    expect(page.locator("#action-carte")).to_have_attribute("data-polygons", "1")
    page.check("#topics-housing")
    with page.expect_navigation():
        page.click("#action-form button[type=submit]")
    assert "enregistre=creee" in page.url, page.inner_text("#action-formulaire")
    action = int(re.search(r"/actions/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    created.append(action)
    # The département comes from the footprint.
    assert "33" in page.inner_text("#action-fiche")


def test_an_observer_sees_no_button_and_a_forged_post_is_refused(
    pages: Any,
    screenshot: Any,
    base_url: str,
    users: dict[str, TestUser],
    created: list[int],
    database_url: str,
) -> None:
    ensure_demo_accounts(database_url, POLICY)
    action = new_action(base_url, created, users, SAINT_DENIS_SQUARE, "Action observée (93)")
    page = pages.open("demo-observateur-93", DEMO_PASSWORD)
    assert page.goto("/actions").status == 200
    assert page.locator("#creer-action").count() == 0
    assert page.goto(f"/actions/{action}").status == 200
    assert page.locator("#modifier-action").count() == 0
    screenshot(page, "fiche")
    auth = ("demo-observateur-93", DEMO_PASSWORD)
    for path in ("/actions/nouvelle", f"/actions/{action}/modifier"):
        assert requests.get(base_url + path, auth=auth, timeout=60).status_code == 403
        r = requests.post(
            base_url + path,
            data={
                "name": "Forgée",
                "started_at": "2024-01-01",
                "footprint": json.dumps({"type": "MultiPolygon", "coordinates": [SAINT_DENIS_SQUARE]}),
            },
            auth=auth,
            timeout=60,
        )
        assert r.status_code == 403 and "Forgée" not in r.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM resorption.actions WHERE name = 'Forgée'").fetchone() == (
            0,
        )
    assert not pages.console_errors
