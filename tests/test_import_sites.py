"""Importing sites from spreadsheets (`import-sites` and `resorption import sites`), through the HTTP API.

A round trip of the export changes nothing; edited cells update; new rows create; bad rows
are refused with French reasons and, by default, nothing of the file is written; rows
outside the caller's territory are refused by the same checks as the editing routes.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyogrio
import pytest
import requests

from resorption.app import create_app
from resorption.settings import Settings
from tests.fix_users import TestUser

REF = "IMPORT-TEST-"
POP = "Habitants – Nombre de personnes"
LAT, LON = "Identification et localisation – Latitude", "Identification et localisation – Longitude"
REF_COL = "Identification et localisation – Référence externe"


@pytest.fixture
def cleanup(database_url: str) -> Iterator[None]:
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE external_ref LIKE %s", (REF + "%",))


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings.from_env(database_url)


def run(base_url: str, user: TestUser, process: str, **inputs: Any) -> requests.Response:
    return requests.post(
        f"{base_url}/processes/{process}/execution",
        json={"inputs": inputs},
        headers=user.headers,
        timeout=300,
    )


def export_csv(base_url: str, user: TestUser, filter: str) -> tuple[list[str], list[dict[str, str]]]:
    r = run(base_url, user, "export-sites", format="csv", filter=filter)
    assert r.status_code == 200, r.text
    reader = csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";")
    return list(reader.fieldnames or []), list(reader)


def to_csv(header: list[str], rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, header, delimiter=";")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()


def import_(base_url: str, user: TestUser, content: bytes, **options: Any) -> dict[str, Any]:
    r = run(base_url, user, "import-sites", file=base64.b64encode(content).decode(), format="csv", **options)
    assert r.status_code == 200, r.text
    return r.json()


def test_round_trip_changes_nothing_then_edits_update(
    base_url: str, users: dict, db: psycopg.Connection
) -> None:
    user = users["correspondent-departement-33"]
    header, rows = export_csv(base_url, user, "departement_code = '33' AND status = 'open'")
    assert rows
    dry = import_(base_url, user, to_csv(header, rows), dry_run=True)
    assert dry["summary"]["unchanged"] == len(rows), [r for r in dry["rows"] if r["outcome"] != "unchanged"]
    site = int(rows[0]["Identification et localisation – Identifiant"])
    before = db.execute("SELECT population_total FROM resorption.sites WHERE id = %s", (site,)).fetchone()[0]
    rows[0][POP] = str(before + 7)
    report = import_(base_url, user, to_csv(header, rows))
    assert report["committed"] and report["summary"]["updated"] == 1
    assert report["rows"][0] == {
        "row": 2,
        "outcome": "updated",
        "outcome_label": "modifié",
        "site": site,
        "reason": None,
    }
    after = db.execute("SELECT population_total FROM resorption.sites WHERE id = %s", (site,)).fetchone()[0]
    assert after == before + 7


def _new_row(header: list[str], ref: str, **cells: str) -> dict[str, str]:
    row = dict.fromkeys(header, "")
    row.update(
        {
            REF_COL: REF + ref,
            LAT: "44,8378",
            LON: "-0,5792",
            POP: "12",
            "Cycle de vie – Date de signalement": "01/03/2024",
            "Cycle de vie – Statut": "Existant",
        }
    )
    row.update(cells)
    return row


def test_new_and_bad_rows(base_url: str, users: dict, db: psycopg.Connection, cleanup: None) -> None:
    user = users["correspondent-departement-33"]
    header, _ = export_csv(base_url, user, "id = 0")
    rows = [
        _new_row(header, "NEW"),
        _new_row(header, "BADENUM", **{"Cycle de vie – Statut": "Ouvert"}),
        _new_row(header, "BADPOP", **{"Habitants – Nombre de ménages": "40"}),
        _new_row(
            header, "BADCOMMUNE", **{"Identification et localisation – Code INSEE de la commune": "99999"}
        ),
        _new_row(header, "OUTSIDE", **{LAT: "48,9362", LON: "2,3574"}),  # Seine-Saint-Denis
    ]
    report = import_(base_url, user, to_csv(header, rows))
    outcomes = {r["row"]: r for r in report["rows"]}
    assert outcomes[2]["outcome"] == "created" and not report["committed"]
    assert "Existant" in outcomes[3]["reason"] and "Statut" in outcomes[3]["reason"]
    assert "ménages" in outcomes[4]["reason"]
    assert "99999" in outcomes[5]["reason"] and "inconnue" in outcomes[5]["reason"]
    assert "hors de votre territoire" in outcomes[6]["reason"]
    assert "Rien n'a été enregistré" in report["message"]
    count = "SELECT count(*) FROM resorption.sites WHERE external_ref LIKE %s"
    assert db.execute(count, (REF + "%",)).fetchone()[0] == 0

    kept = import_(base_url, user, to_csv(header, rows), keep_valid=True)
    assert kept["committed"] and kept["summary"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 4,
    }
    assert db.execute(count, (REF + "%",)).fetchone()[0] == 1
    # Matched by its external reference, the same row is now unchanged.
    again = import_(base_url, user, to_csv(header, rows[:1]))
    assert again["rows"][0]["outcome"] == "unchanged"


def test_refused_rows_among_hundreds_leave_the_others_written_once(
    base_url: str, users: dict, db: psycopg.Connection, cleanup: None
) -> None:
    """Rows are written by chunks of a hundred under one savepoint; a refused row sends its
    chunk back, row by row: every other row of the file is written once, with one version
    and one audit row, whichever chunk the refused rows fall in."""
    user = users["correspondent-departement-33"]
    header, _ = export_csv(base_url, user, "id = 0")
    rows = [_new_row(header, f"MANY-{n:03}") for n in range(250)]
    rows[0] = _new_row(header, "MANY-000", **{"Habitants – Nombre de ménages": "40"})
    rows[99] = _new_row(header, "MANY-099", **{LAT: "48,9362", LON: "2,3574"})  # Seine-Saint-Denis
    rows[100] = _new_row(header, "MANY-100", **{"Cycle de vie – Statut": "Ouvert"})
    rows[249] = _new_row(
        header, "MANY-249", **{"Identification et localisation – Code INSEE de la commune": "99999"}
    )
    report = import_(base_url, user, to_csv(header, rows), keep_valid=True)
    assert report["committed"] and report["summary"] == {
        "created": 246,
        "updated": 0,
        "unchanged": 0,
        "rejected": 4,
    }
    assert [r["row"] for r in report["rows"] if r["outcome"] == "rejected"] == [2, 101, 102, 251]
    assert [r["row"] for r in report["rows"]] == list(range(2, 252))
    written = db.execute(
        "SELECT count(*), count(DISTINCT external_ref), "
        "(SELECT count(*) FROM resorption.sites_history h WHERE h.id = ANY(array_agg(s.id))), "
        "(SELECT count(*) FROM resorption.audit_log a WHERE a.collection = 'sites' "
        " AND a.detail->>'source' = 'import' AND a.item_id = ANY(array_agg(s.id::text))) "
        "FROM resorption.sites s WHERE external_ref LIKE %s",
        (REF + "MANY-%",),
    ).fetchone()
    assert written == (246, 246, 246, 246)


def test_a_long_import_is_refused_in_a_request_and_runs_as_a_job(
    base_url: str, settings: Settings, users: dict, db: psycopg.Connection, cleanup: None
) -> None:
    """Past RESORPTION_SYNC_IMPORT_MAX_ROWS rows, an import is a job's work: refused in a
    request before anything is written, it runs as a job that reports its progress."""
    limited = replace(settings, limits=replace(settings.limits, sync_import_max_rows=3))
    client = create_app(limited).test_client()
    user = users["correspondent-departement-33"]
    header, _ = export_csv(base_url, user, "id = 0")
    content = to_csv(header, [_new_row(header, f"JOB-{n}") for n in range(5)])
    body = {"inputs": {"file": base64.b64encode(content).decode(), "format": "csv"}}
    path = "/processes/import-sites/execution"
    refused = client.post(path, json=body, headers=user.headers)
    assert refused.status_code == 400, refused.get_data(as_text=True)
    said = refused.get_json()
    assert said["code"] == "RespondAsyncRequired"
    assert "Ce fichier compte 5 lignes de sites" in said["description"]
    assert "Prefer: respond-async" in said["description"]
    count = "SELECT count(*) FROM resorption.sites WHERE external_ref LIKE %s"
    assert db.execute(count, (REF + "JOB-%",)).fetchone()[0] == 0

    started = client.post(path, json=body, headers={**user.headers, "Prefer": "respond-async"})
    assert started.status_code == 201, started.get_data(as_text=True)
    job = "/" + started.headers["Location"].split("/", 3)[3]
    deadline = time.monotonic() + 60
    while (status := client.get(job, headers=user.headers, query_string={"f": "json"}).get_json())[
        "status"
    ] not in ("successful", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    report = client.get(f"{job}/results", headers=user.headers, query_string={"f": "json"}).get_json()
    assert report["summary"]["created"] == 5 and report["committed"], report
    assert db.execute(count, (REF + "JOB-%",)).fetchone()[0] == 5


def test_each_written_row_is_one_version_and_one_audit_row(
    base_url: str, users: dict, db: psycopg.Connection, cleanup: None
) -> None:
    """The import writes through the one write path: a created or updated row makes one new
    version of its site (however many statements the write runs) and one audit row."""
    user = users["correspondent-departement-33"]
    header, _ = export_csv(base_url, user, "id = 0")
    versions = "SELECT count(*) FROM resorption.sites_history WHERE id = %s"
    audited = (
        "SELECT action, detail->>'source', detail->>'row' FROM resorption.audit_log "
        "WHERE username = %s AND collection = 'sites' AND item_id = %s ORDER BY id"
    )
    created = import_(base_url, user, to_csv(header, [_new_row(header, "ONEVERSION")]))
    assert created["rows"][0]["outcome"] == "created", created
    site = created["rows"][0]["site"]
    assert db.execute(versions, (site,)).fetchone()[0] == 1
    assert db.execute(audited, (user.username, str(site))).fetchall() == [("create", "import", "2")]

    updated = import_(base_url, user, to_csv(header, [_new_row(header, "ONEVERSION", **{POP: "13"})]))
    assert updated["rows"][0]["outcome"] == "updated", updated
    assert db.execute(versions, (site,)).fetchone()[0] == 2
    assert db.execute(audited, (user.username, str(site))).fetchall() == [
        ("create", "import", "2"),
        ("update", "import", "2"),
    ]
    unchanged = import_(base_url, user, to_csv(header, [_new_row(header, "ONEVERSION", **{POP: "13"})]))
    assert unchanged["rows"][0]["outcome"] == "unchanged"
    assert db.execute(versions, (site,)).fetchone()[0] == 2
    # and one event of the outbox each (MQTT, Server-Sent Events), linking that version
    events = db.execute(
        "SELECT o.operation, o.fields, o.version_id = h.version_id FROM resorption.outbox o "
        "LEFT JOIN resorption.sites_history h ON h.version_id = o.version_id "
        "WHERE o.collection = 'sites' AND o.item_id = %s ORDER BY o.id",
        (site,),
    ).fetchall()
    assert [(op, ok) for op, _, ok in events] == [("create", True), ("update", True)], events
    assert "population_total" in events[1][1]


def test_without_write_right_the_import_is_refused(base_url: str, users: dict) -> None:
    r = run(
        base_url,
        users["intervener-departement-33"],
        "import-sites",
        file=base64.b64encode(b"id;status\n1;open\n").decode(),
        format="csv",
    )
    assert r.status_code == 403 and "modifier" in r.json()["description"]


def test_unknown_columns_refuse_the_file(base_url: str, users: dict) -> None:
    r = run(
        base_url,
        users["correspondent-departement-33"],
        "import-sites",
        file=base64.b64encode(b"id;Commentaire\n1;x\n").decode(),
        format="csv",
    )
    assert r.status_code == 400 and "Commentaire" in r.json()["description"]


def test_command_line(database_url: str, users: dict, tmp_path: Path, base_url: str, cleanup: None) -> None:
    user = users["correspondent-departement-33"]
    header, _ = export_csv(base_url, user, "id = 0")
    path = tmp_path / "sites.csv"
    path.write_bytes(to_csv(header, [_new_row(header, "CLI")]))
    command = [str(Path(sys.executable).parent / "resorption"), "import", "sites", str(path)]
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [*command, "--dry-run", "--utilisateur", user.username],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "créé" in done.stdout and "Essai à blanc" in done.stderr
    done = subprocess.run(
        [*command, "--utilisateur", user.username], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT departement_code FROM resorption.sites WHERE external_ref = %s", (REF + "CLI",)
        ).fetchone()
    assert row == ("33",)


@pytest.mark.parametrize(
    ("hidden", "fake"),
    [
        ("Propriétaire – Propriétaire", "Propriétaire – Locataire"),  # « Section – Colonne »
        ("owner_name", "owner_nickname"),  # a field's name
    ],
)
def test_a_column_the_caller_may_not_read_is_told_like_an_unknown_one(
    base_url: str, users: dict, database_url: str, tmp_path: Path, hidden: str, fake: str
) -> None:
    """The owner's column, for a partner who may not read owners: the same answer as a column that
    does not exist, saying nothing of the schema nor of the caller's rights."""
    user = users["institutional-partner-departement-33"]

    def refusal(column: str) -> str:
        content = f"id;Statut;{column}\n1;Existant;x\n".encode()
        r = run(base_url, user, "import-sites", file=base64.b64encode(content).decode(), format="csv")
        assert r.status_code == 400, r.text
        return r.json()["description"]

    told = refusal(hidden)
    assert told.replace(hidden, "X") == refusal(fake).replace(fake, "X")
    assert "colonnes inconnues" in told and "droits" not in told
    # The command line says the same.
    path = tmp_path / "sites.csv"
    command = [str(Path(sys.executable).parent / "resorption"), "import", "sites", str(path), "--dry-run"]
    answers = []
    for column in (hidden, fake):
        path.write_text(f"id;Statut;{column}\n1;Existant;x\n", encoding="utf-8")
        done = subprocess.run(
            [*command, "--utilisateur", user.username],
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        answers.append(" ".join(done.stderr.split()).replace(column, "X"))  # lines wrap by width
    assert answers[0] == answers[1] and "colonnes inconnues" in answers[0]


# -- GeoPackage, and files read as they go ------------------------------------------------------


def _gpkg_export(base_url: str, user: TestUser, crs: str, filter: str) -> bytes:
    r = run(base_url, user, "export-collection", collection="sites", format="gpkg", crs=crs, filter=filter)
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:2154"])
def test_a_geopackage_of_the_export_comes_back_unchanged_then_edits_update(
    base_url: str, users: dict, db: psycopg.Connection, tmp_path: Path, crs: str
) -> None:
    """The GeoPackage of export-collection (its fields' names, its points, in 4326 or Lambert-93)
    imports as it is; an edited value updates its site."""
    user = users["correspondent-departement-33"]
    where = "departement_code = '33' AND status = 'open'"
    content = _gpkg_export(
        base_url, user, f"http://www.opengis.net/def/crs/EPSG/0/{crs.split(':')[1]}", where
    )
    (count,) = db.execute(f"SELECT count(*) FROM resorption.sites WHERE {where}").fetchone()
    r = run(
        base_url, user, "import-sites", file=base64.b64encode(content).decode(), format="gpkg", dry_run=True
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["summary"]["unchanged"] == count > 0, [
        x for x in report["rows"] if x["outcome"] != "unchanged"
    ]

    path = tmp_path / "sites.gpkg"
    path.write_bytes(content)
    meta, _, geometries, values = pyogrio.raw.read(path)
    names = list(meta["fields"])
    first = int(values[names.index("id")][0])
    before = db.execute("SELECT population_total FROM resorption.sites WHERE id = %s", (first,)).fetchone()[0]
    population = values[names.index("population_total")].copy()
    population[0] = before + 3
    values[names.index("population_total")] = population
    # Written back with the file's own types (GDAL reads nullable booleans as floats).
    masks: list[np.ndarray | None] = []
    for i, dtype in enumerate(meta["dtypes"]):
        if str(dtype) == "bool" and values[i].dtype.kind == "f":
            masks.append(np.isnan(values[i]))
            values[i] = np.nan_to_num(values[i]).astype(bool)
        else:
            masks.append(None)
    edited = tmp_path / "edited.gpkg"
    pyogrio.raw.write(
        edited,
        geometries,
        values,
        names,
        field_mask=masks,
        driver="GPKG",
        geometry_type="Point",
        crs=meta["crs"],
        layer="sites",
    )
    r = run(
        base_url, user, "import-sites", file=base64.b64encode(edited.read_bytes()).decode(), format="gpkg"
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["committed"] and report["summary"]["updated"] == 1, report["summary"]
    assert db.execute("SELECT population_total FROM resorption.sites WHERE id = %s", (first,)).fetchone()[
        0
    ] == (before + 3)


def test_a_file_that_is_not_a_geopackage_is_refused_in_french(base_url: str, users: dict) -> None:
    user = users["correspondent-departement-33"]
    r = run(base_url, user, "import-sites", file=base64.b64encode(b"pas un fichier").decode(), format="gpkg")
    assert r.status_code == 400
    assert "GeoPackage" in r.json()["description"]
