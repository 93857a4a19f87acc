"""The `export-sites` process: sites as XLSX or CSV, through the HTTP API, read with openpyxl and csv.

What the file holds depends on who asks, exactly as the items endpoint: no site outside the
caller's scope, no column of a sensitive group the caller may not read; the export right of
the role decides whether a file is made at all; a past date reads the history.
"""

from __future__ import annotations

import base64
import csv
import io
import time
from typing import Any

import psycopg
import pytest
import requests
from openpyxl import load_workbook

from tests.fix_users import TestUser

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PATH = "/processes/export-sites/execution"
OWNER, JUSTICE = "Propriétaire", "Procédures judiciaires et administratives"


def export(
    base_url: str, user: TestUser, headers: dict[str, str] | None = None, **inputs: Any
) -> requests.Response:
    """Run the export as `user`."""
    return requests.post(
        base_url + PATH, json={"inputs": inputs}, headers={**user.headers, **(headers or {})}, timeout=120
    )


def xlsx_rows(content: bytes) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Sections row, labels row, and each site as {label: value}."""
    sheet = load_workbook(io.BytesIO(content)).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    sections, labels = rows[0], rows[1]
    return sections, labels, [dict(zip(labels, r, strict=True)) for r in rows[2:]]


@pytest.fixture(scope="module")
def operator_93(users: dict[str, TestUser]) -> TestUser:
    """An operator of Seine-Saint-Denis, without options."""
    return users["operator-departement-93"]


def test_national_admin_gets_every_site_with_sensitive_sections(
    base_url: str, users: dict, db: psycopg.Connection
) -> None:
    r = export(base_url, users["national-admin-nation"])
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == XLSX
    assert r.headers["Content-Disposition"].startswith('attachment; filename="sites-')
    assert r.headers["Content-Disposition"].endswith('.xlsx"')
    sections, labels, rows = xlsx_rows(r.content)
    assert OWNER in sections and JUSTICE in sections and "Solutions à la fermeture" in sections
    assert {
        "Identifiant",
        "Commune",
        "Latitude",
        "Longitude",
        "Statut",
        "Propriétaire",
        "Juridiction",
    } <= set(labels)
    (count,) = db.execute("SELECT count(*) FROM resorption.sites").fetchone()
    assert len(rows) == count
    statuses = {row["Statut"] for row in rows}
    assert "Existant" in statuses and "open" not in statuses  # catalog labels, not codes
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet.freeze_panes == "C3" and sheet.auto_filter.ref.startswith("A2:")


def test_operator_sees_only_its_area_without_sensitive_columns(base_url: str, operator_93: TestUser) -> None:
    r = export(base_url, operator_93)
    assert r.status_code == 200, r.text
    sections, labels, rows = xlsx_rows(r.content)
    assert rows and {row["Département"] for row in rows} == {"93"}
    assert OWNER not in sections and JUSTICE not in sections
    assert "Propriétaire" not in labels and "Juridiction" not in labels
    # Another département is out of its territory.
    refused = export(base_url, operator_93, territoire="33")
    assert refused.status_code == 403 and "territoire" in refused.json()["description"]


def test_justice_columns_follow_the_option(base_url: str, users: dict) -> None:
    with_option = xlsx_rows(export(base_url, users["operator-opts-departement-33"], format="xlsx").content)
    without = xlsx_rows(export(base_url, users["operator-departement-33"]).content)
    assert JUSTICE in with_option[0] and OWNER not in with_option[0]
    assert JUSTICE not in without[0]
    assert {row["Département"] for row in with_option[2]} == {"33"}


def test_national_area_operator_exports_nation_but_territory_narrows(base_url: str, users: dict) -> None:
    r = export(base_url, users["national-admin-nation"], territoire="region:75", format="csv")
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    departements = {row["Identification et localisation – Département"] for row in rows}
    assert departements and departements <= {
        "16",
        "17",
        "19",
        "23",
        "24",
        "33",
        "40",
        "47",
        "64",
        "79",
        "86",
        "87",
    }


def test_without_export_right_the_export_is_refused(base_url: str, users: dict) -> None:
    r = export(base_url, users["intervener-departement-33"])
    assert r.status_code == 403
    assert "exporter" in r.json()["description"]
    assert requests.post(base_url + PATH, json={"inputs": {}}, timeout=30).status_code == 401


def test_csv_for_french_spreadsheets_and_filter(base_url: str, users: dict, db: psycopg.Connection) -> None:
    r = export(base_url, users["national-admin-nation"], format="csv", filter="population_total > 100")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].endswith('.csv"')
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    (count,) = db.execute("SELECT count(*) FROM resorption.sites WHERE population_total > 100").fetchone()
    assert len(rows) == count > 0
    assert all(int(row["Habitants – Nombre de personnes"]) > 100 for row in rows)
    assert "," in rows[0]["Identification et localisation – Latitude"]  # decimal comma


def test_a_past_date_reads_the_history(base_url: str, users: dict, db: psycopg.Connection) -> None:
    moment = "2022-01-01"
    expected = dict(
        db.execute(
            "SELECT id, population_total FROM resorption.sites_history "
            "WHERE valid @> '2022-01-01T23:59:59.999999Z'::timestamptz AND operation <> 'delete' "
            "AND departement_code = '33' AND declared_at <= '2022-01-01'"
            " AND (closed_at IS NULL OR closed_at >= '2022-01-01')"
        ).fetchall()
    )
    now = dict(db.execute("SELECT id, population_total FROM resorption.sites").fetchall())
    assert any(now.get(i) != p for i, p in expected.items())  # the test can tell past from present
    r = export(base_url, users["national-admin-nation"], datetime=moment, territoire="33")
    assert r.status_code == 200, r.text
    assert "sites-au-2022-01-01-" in r.headers["Content-Disposition"]
    _, _, rows = xlsx_rows(r.content)
    assert {row["Identifiant"]: row["Nombre de personnes"] for row in rows} == expected


def test_async_export_is_private_and_audited(base_url: str, users: dict, db: psycopg.Connection) -> None:
    owner = users["correspondent-departement-33"]
    r = export(base_url, owner, headers={"Prefer": "respond-async"}, territoire="33")
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    deadline = time.monotonic() + 60
    while (status := requests.get(location, headers=owner.headers, params={"f": "json"}, timeout=30).json())[
        "status"
    ] not in ("successful", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status["status"] == "successful", status
    result = requests.get(f"{location}/results", headers=owner.headers, timeout=60)
    assert result.status_code == 200
    assert result.headers["Content-Type"] == XLSX
    assert result.headers["Content-Disposition"].startswith('attachment; filename="sites-')
    assert len(xlsx_rows(result.content)[2]) > 0
    other = users["local-admin-departement-33"]
    assert requests.get(f"{location}/results", headers=other.headers, timeout=30).status_code == 404
    row = db.execute(
        "SELECT groups, detail FROM resorption.audit_log WHERE username = %s AND action = 'export' "
        "ORDER BY id DESC LIMIT 1",
        (owner.username,),
    ).fetchone()
    assert row is not None and set(row[0]) == {"owner", "justice"} and row[1]["territoire"] == "33"


def test_document_response_carries_the_file_in_base64(base_url: str, users: dict) -> None:
    """`"response": "document"` wraps the file in JSON (base64) instead of failing on its bytes."""
    r = requests.post(
        base_url + PATH,
        json={"inputs": {"format": "csv"}, "response": "document"},
        headers=users["national-admin-nation"].headers,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    (output,) = r.json()["outputs"]
    assert output["mediaType"].startswith("text/csv")
    assert base64.b64decode(output["value"]).startswith(b"\xef\xbb\xbf")
