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
from dataclasses import replace
from typing import Any

import psycopg
import pytest
import requests
from openpyxl import load_workbook

from resorption import job_files
from resorption.app import create_app
from resorption.settings import Settings, french_count
from tests.api import body_text
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


# -- the file of a job: kept beside it in parts, sent part by part, to its owner only ----------


def _finished(location: str, user: TestUser) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status = requests.get(location, headers=user.headers, params={"f": "json"}, timeout=30).json()
        if status["status"] in ("successful", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def _parts(db: psycopg.Connection, job_id: str) -> tuple[int, int]:
    count, size = db.execute(
        "SELECT count(*), coalesce(sum(octet_length(data)), 0) FROM resorption_jobs.job_files WHERE job_id = %s",
        (job_id,),
    ).fetchone()
    return count, size


def test_a_jobs_file_is_kept_in_parts_and_sent_to_its_owner_only(
    base_url: str, users: dict, db: psycopg.Connection
) -> None:
    owner = users["correspondent-departement-33"]
    r = export(base_url, owner, headers={"Prefer": "respond-async"}, territoire="33", format="csv")
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    job_id = location.rsplit("/", 1)[1]
    assert _finished(location, owner)["status"] == "successful"
    # The file is not in the job's row: beside it, in parts.
    (output,) = db.execute(
        "SELECT output FROM resorption_jobs.jobs WHERE identifier = %s", (job_id,)
    ).fetchone()
    assert output is None
    count, size = _parts(db, job_id)
    assert count >= 1 and size > 0
    result = requests.get(f"{location}/results", headers=owner.headers, timeout=60)
    assert result.status_code == 200
    assert result.headers.get("Transfer-Encoding") == "chunked"  # streamed, not sized in memory
    assert len(result.content) == size and result.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(result.content.decode("utf-8-sig")), delimiter=";"))
    assert rows and {row["Identification et localisation – Département"] for row in rows} == {"33"}

    # Another user of the territory, and a user of elsewhere, get what a missing job gets.
    missing = location.replace(job_id, "00000000-0000-11f0-8000-000000000000")
    for someone in (users["local-admin-departement-33"], users["operator-departement-93"]):
        theirs = requests.get(f"{location}/results", headers=someone.headers, timeout=30)
        absent = requests.get(f"{missing}/results", headers=someone.headers, timeout=30)
        assert theirs.status_code == absent.status_code == 404
        assert body_text(theirs).replace(job_id, "ID") == body_text(absent).replace(
            missing.rsplit("/", 1)[1], "ID"
        )
        assert "ETag" not in theirs.headers and "ETag" not in absent.headers
        assert set(theirs.headers) - {"Date"} == set(absent.headers) - {"Date"}
        assert theirs.headers["Content-Length"] == absent.headers["Content-Length"]
    # Their answers take as long (same statement under row-level security): interleaved
    # medians, within a factor generous enough for a shared machine.
    other = users["local-admin-departement-33"]
    durations: dict[str, list[float]] = {"theirs": [], "absent": []}
    for _ in range(15):
        for name, url in (("theirs", location), ("absent", missing)):
            started = time.perf_counter()
            requests.get(f"{url}/results", headers=other.headers, timeout=30)
            durations[name].append(time.perf_counter() - started)
    theirs_median, absent_median = (sorted(d)[len(d) // 2] for d in durations.values())
    assert 0.5 < theirs_median / absent_median < 2, durations

    # Deleting the job deletes its file.
    assert requests.delete(location, headers=owner.headers, timeout=30).status_code == 200
    assert _parts(db, job_id) == (0, 0)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings.from_env(database_url)


def test_a_file_of_many_parts_comes_back_whole(
    settings: Settings, users: dict, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of 4 KiB: the synchronous answer reads them back in order, the same bytes."""
    monkeypatch.setattr(job_files, "PART_BYTES", 4096)
    client = create_app(settings).test_client()
    r = client.post(PATH, json={"inputs": {"format": "csv"}}, headers=users["national-admin-nation"].headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    job_id = r.headers["Location"].rsplit("/", 1)[1]
    count, size = _parts(db, job_id)
    assert count > 3 and len(r.data) == size
    stored = b"".join(
        bytes(p)
        for (p,) in db.execute(
            "SELECT data FROM resorption_jobs.job_files WHERE job_id = %s ORDER BY part", (job_id,)
        )
    )
    assert r.data == stored
    (sites,) = db.execute("SELECT count(*) FROM resorption.sites").fetchone()
    assert len(list(csv.reader(io.StringIO(r.data.decode("utf-8-sig")), delimiter=";"))) == sites + 1


# -- a long export is a job ----------------------------------------------------------------------


def test_a_long_export_is_refused_in_a_request_and_runs_as_a_job(
    settings: Settings, users: dict, db: psycopg.Connection
) -> None:
    limited = replace(settings, limits=replace(settings.limits, sync_export_max_rows=3))
    client = create_app(limited).test_client()
    admin = users["national-admin-nation"]
    (sites,) = db.execute("SELECT count(*) FROM resorption.sites").fetchone()
    for path, inputs in (
        (PATH, {"format": "csv"}),
        ("/processes/export-collection/execution", {"collection": "sites", "format": "geojson"}),
        ("/processes/export-actions/execution", {}),
    ):
        refused = client.post(path, json={"inputs": inputs}, headers=admin.headers)
        assert refused.status_code == 400, refused.get_data(as_text=True)
        description = refused.get_json()["description"]
        assert "Prefer: respond-async" in description and "tâche de fond" in description
        assert refused.get_json()["code"] == "RespondAsyncRequired"
    said = client.post(PATH, json={"inputs": {"format": "csv"}}, headers=admin.headers).get_json()[
        "description"
    ]
    assert f"Cet export compte {french_count(sites)} sites" in said
    # Within the limit, a request still answers with the file.
    small = client.post(PATH, json={"inputs": {"format": "csv", "filter": "id < 0"}}, headers=admin.headers)
    assert small.status_code == 200
    # As a job, the same export runs to its end.
    r = client.post(
        PATH, json={"inputs": {"format": "csv"}}, headers={**admin.headers, "Prefer": "respond-async"}
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    location = r.headers["Location"]
    path = "/" + location.split("/", 3)[3]
    deadline = time.monotonic() + 60
    while (status := client.get(path, headers=admin.headers, query_string={"f": "json"}).get_json())[
        "status"
    ] not in ("successful", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status["status"] == "successful", status
    result = client.get(f"{path}/results", headers=admin.headers)
    assert len(list(csv.reader(io.StringIO(result.data.decode("utf-8-sig")), delimiter=";"))) == sites + 1


# -- the revisions that bring an existing database there ----------------------------------------


def test_revisions_0029_and_0030_move_kept_files_beside_their_jobs_and_count_the_outbox_lag(
    scratch_url: str,
) -> None:
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0028")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        # a database of before: files in their job's row, no parts, no lag function
        conn.execute("DROP TABLE resorption_jobs.job_files")
        conn.execute("DROP FUNCTION resorption.outbox_lag()")
        for ident, mimetype, output in (
            ("fichier", 'text/csv; name="sites.csv"', b"id;nom\r\n1;x\r\n"),
            ("json", "application/json", b'{"series": []}'),
        ):
            conn.execute(
                "INSERT INTO resorption_jobs.jobs (identifier, process_id, owner, status, progress, mimetype, "
                "output) VALUES (%s, 'export-sites', 'x', 'successful', 100, %s, %s)",
                (ident, mimetype, output),
            )
    upgrade(scratch_url)
    upgrade(scratch_url)  # at head: nothing to do
    with psycopg.connect(scratch_url) as conn:
        outputs = dict(conn.execute("SELECT identifier, output FROM resorption_jobs.jobs").fetchall())
        assert outputs["fichier"] is None and bytes(outputs["json"]) == b'{"series": []}'
        parts = conn.execute("SELECT job_id, part, data FROM resorption_jobs.job_files").fetchall()
        assert [(j, p, bytes(d)) for j, p, d in parts] == [("fichier", 0, b"id;nom\r\n1;x\r\n")]
        assert conn.execute("SELECT count(*) FROM resorption.outbox_lag()").fetchone()[0] == 0
