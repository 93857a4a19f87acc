"""Spreadsheet formula injection: text that looks like a formula comes out inert in every file.

Sites (and an action) named like formulas (`=HYPERLINK(…)`, and the `+ - @`, tab and
carriage return variants) are written through the API, then read back from every file we
make, with openpyxl and csv: the XLSX and CSV of `export-sites`, the XLSX of
`export-actions` and the items' `f=csv`. Each holds the name as text behind an apostrophe
(OWASP), never as a formula (openpyxl writes any text starting with "=" as one), while
numbers stay numbers, negative ones included. Re-importing the export changes nothing.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from openpyxl import load_workbook

from tests.fix_users import TestUser

ADMIN = "national-admin-nation"
BORDEAUX = (-0.5792, 44.8378)
FORMULA = 'HYPERLINK("http://x","y")'
# Each formula prefix OWASP names; a tab or a carriage return is skipped by some spreadsheets
# before the "=" that follows it.
NAMES = [f"={FORMULA}", f"+{FORMULA}", f"-{FORMULA}", f"@{FORMULA}", f"\t={FORMULA}", f"\r={FORMULA}"]
NAME_HEADER = "Identification et localisation – Nom du site"
LONGITUDE_HEADER = "Identification et localisation – Longitude"


def post(base_url: str, user: TestUser, path: str, **kwargs: Any) -> requests.Response:
    return requests.post(base_url + path, headers=user.headers, timeout=120, **kwargs)


def execute(base_url: str, user: TestUser, process: str, **inputs: Any) -> requests.Response:
    r = post(base_url, user, f"/processes/{process}/execution", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    return r


@pytest.fixture(scope="module")
def hostile(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[dict[int, str]]:
    """Sites of Gironde named like formulas (site id → name), deleted at the end as the owner."""
    admin = users[ADMIN]
    sites: dict[int, str] = {}
    try:
        for name in NAMES:
            feature = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
                "properties": {"name": name, "declared_at": "2024-03-01", "population_total": 12},
            }
            r = post(base_url, admin, "/collections/sites/items", json=feature)
            assert r.status_code == 201, r.text
            sites[int(r.headers["Location"].rsplit("/", 1)[1])] = name
        with psycopg.connect(database_url) as conn:
            stored = dict(
                conn.execute("SELECT id, name FROM resorption.sites WHERE id = ANY(%s)", (list(sites),))
            )
        assert stored == sites, "the names are stored as they were sent"
        yield sites
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM resorption.sites WHERE id = ANY(%s)", (list(sites),))


def _filter(sites: dict[int, str]) -> str:
    return f"id IN ({', '.join(str(i) for i in sites)})"


def _inert(name: str) -> str:
    return "'" + name


def test_xlsx_export_of_sites_holds_text_not_formulas(
    base_url: str, users: dict[str, TestUser], hostile: dict[int, str]
) -> None:
    r = execute(base_url, users[ADMIN], "export-sites", format="xlsx", filter=_filter(hostile))
    sheet = load_workbook(io.BytesIO(r.content)).active
    labels = [c.value for c in sheet[2]]
    ident, name, longitude = (labels.index(x) for x in ("Identifiant", "Nom du site", "Longitude"))
    rows = list(sheet.iter_rows(min_row=3))
    assert len(rows) == len(hostile)
    for row in rows:
        cell = row[name]
        assert cell.data_type == "s", (cell.value, cell.data_type)
        assert cell.value == _inert(hostile[row[ident].value])
        # Numbers stay numbers: a negative longitude is not text.
        assert row[longitude].data_type == "n" and row[longitude].value == pytest.approx(BORDEAUX[0])


def test_csv_export_of_sites_quotes_formulas_only(
    base_url: str, users: dict[str, TestUser], hostile: dict[int, str]
) -> None:
    r = execute(base_url, users[ADMIN], "export-sites", format="csv", filter=_filter(hostile))
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert sorted(row[NAME_HEADER] for row in rows) == sorted(_inert(n) for n in hostile.values())
    for row in rows:
        assert row[LONGITUDE_HEADER] == "-0,5792", "a negative number is written as a number"
        assert row["Habitants – Nombre de personnes"] == "12"


def test_items_csv_quotes_formulas_only(http: requests.Session, hostile: dict[int, str]) -> None:
    r = http.get("/collections/sites/items", params={"f": "csv", "filter": _filter(hostile)})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert {int(row["id"]): row["name"] for row in rows} == {i: _inert(n) for i, n in hostile.items()}
    assert {row["population_total"] for row in rows} == {"12"}


def test_xlsx_export_of_actions_holds_text_not_formulas(
    base_url: str, users: dict[str, TestUser], database_url: str
) -> None:
    admin = users[ADMIN]
    lon, lat = BORDEAUX
    ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat + 0.01], [lon, lat]]
    names = {f"={FORMULA}", f"-{FORMULA}"}
    created = []
    try:
        for name in names:
            action = {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"name": name, "started_at": "2024-01-01", "topics": ["schooling"]},
            }
            r = post(base_url, admin, "/collections/actions/items", json=action)
            assert r.status_code == 201, r.text
            created.append(int(r.headers["Location"].rsplit("/", 1)[1]))
        r = execute(base_url, admin, "export-actions")
        workbook = load_workbook(io.BytesIO(r.content))
        for sheet in (workbook["National"], *(s for s in workbook if s.title.startswith("33"))):
            labels = [c.value for c in sheet[1]]
            ident, name = labels.index("Identifiant"), labels.index("Nom de l'action")
            cells = {row[ident].value: row[name] for row in sheet.iter_rows(min_row=2)}
            for action_id in created:
                cell = cells[action_id]
                assert cell.data_type == "s" and cell.value.startswith("'") and cell.value[1:] in names
            assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM resorption.actions WHERE id = ANY(%s)", (created,))


def test_reimporting_the_export_changes_no_name(
    base_url: str, users: dict[str, TestUser], hostile: dict[int, str]
) -> None:
    """The import takes off the apostrophe the export puts in: a round trip changes nothing."""
    admin = users[ADMIN]
    for fmt in ("csv", "xlsx"):
        exported = execute(base_url, admin, "export-sites", format=fmt, filter=_filter(hostile)).content
        r = post(
            base_url,
            admin,
            "/processes/import-sites/execution",
            json={"inputs": {"file": base64.b64encode(exported).decode(), "format": fmt, "dry_run": True}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["summary"]["unchanged"] == len(hostile), r.json()["rows"]


def test_dashboard_csv_figures_stay_numbers(base_url: str, users: dict[str, TestUser]) -> None:
    """The dashboard's CSV goes through the same writer: its figures are numbers, none quoted."""
    r = requests.get(
        f"{base_url}/tableau-de-bord/departement-33.csv", headers=users[ADMIN].headers, timeout=120
    )
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) > 1
    for row in rows[1:]:
        assert row[0][:2] in ("19", "20")  # an ISO date
        assert all(cell == "" or cell.replace(",", "").isdigit() for cell in row[1:]), row
