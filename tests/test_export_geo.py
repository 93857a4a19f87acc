"""Exports through OGC API Processes: `export-collection` (GeoPackage, FlatGeobuf, GeoJSON) and
`export-actions` (XLSX), for real users over HTTP, opened with pyogrio (GDAL), Debian's `ogrinfo`
and openpyxl, and compared with what the items endpoint gives the same user for the same query.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from openpyxl import load_workbook
from pyogrio import raw
from shapely import from_wkb

from resorption.bulk import narrow
from resorption.identity import Principal
from resorption.policy import Scope
from tests.api import all_features
from tests.fix_users import POLICY
from tests.fix_users import TestUser as User  # pytest would collect a `Test…` name

LAMBERT_93 = "http://www.opengis.net/def/crs/EPSG/0/2154"
GPKG = "application/geopackage+sqlite3"
FLATGEOBUF = "application/flatgeobuf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OPERATOR_33 = "operator-departement-33"
OPERATOR_93 = "operator-departement-93"
ADMIN = "national-admin-nation"
# Around Bordeaux, in CRS84.
BORDEAUX_BBOX = [-0.8, 44.7, -0.4, 45.0]


def make_user(db: psycopg.Connection, username: str, role: str, area: str) -> User:
    """A user of one département with a token (the suite's users hold only Gironde's and national ones)."""
    organisation = db.execute("SELECT id FROM resorption.organisations ORDER BY id LIMIT 1").fetchone()[0]
    user_id = db.execute(
        "INSERT INTO resorption.users (username, organisation_id, role, options, area_level, area_code) "
        "VALUES (%s, %s, %s, '{}', 'departement', %s) RETURNING id",
        (username, organisation, role, area),
    ).fetchone()[0]
    token = "rsp_" + secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at) "
        "VALUES (%s, %s, %s, 'tests', now() + interval '1 day')",
        (user_id, hashlib.sha256(token.encode()).digest(), token[:8]),
    )
    return User(username, role, frozenset(), "departement", area, token)


@pytest.fixture(scope="module")
def operator_93(users: dict[str, User]) -> User:
    """An operator of Seine-Saint-Denis."""
    return users[OPERATOR_93]


def execute(
    base_url: str, user: User | None, process: str, inputs: dict[str, Any], **headers: str
) -> requests.Response:
    """POST an execution of `process` as `user` (None: anonymous)."""
    return requests.post(
        f"{base_url}/processes/{process}/execution",
        json={"inputs": inputs},
        headers={**(user.headers if user else {}), **headers},
        timeout=120,
    )


def items(base_url: str, user: User, collection: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every feature the items endpoint gives `user` for `params`."""
    with requests.Session() as session:
        session.headers.update(user.headers)
        return all_features(session, f"{base_url}/collections/{collection}/items", params)


def read_file(content: bytes, tmp_path: Path, extension: str) -> dict[str, Any]:
    """Open an exported file with pyogrio: its fields, rows by id, geometries by id, CRS."""
    path = tmp_path / f"export.{extension}"
    path.write_bytes(content)
    meta, _, geometries, values = raw.read(str(path))
    names = list(meta["fields"])
    rows = [dict(zip(names, (v[i] for v in values), strict=True)) for i in range(len(geometries))]
    return {
        "path": path,
        "fields": names,
        "crs": meta["crs"],
        "rows": {int(r["id"]): r for r in rows},
        "geometries": {
            int(r["id"]): from_wkb(g) if g is not None else None
            for r, g in zip(rows, geometries, strict=True)
        },
    }


def _ok(r: requests.Response, media_type: str) -> bytes:
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].split(";")[0] == media_type
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    return r.content


def _readable(base_url: str, user: User, collection: str) -> list[str]:
    r = requests.get(
        f"{base_url}/collections/{collection}/schema", params={"f": "json"}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    return [name for name in r.json()["properties"] if name != "geometry"]


def _audit(db: psycopg.Connection, username: str, collection: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT groups, detail FROM resorption.audit_log WHERE username = %s AND action = 'export' "
        "AND collection = %s ORDER BY at",
        (username, collection),
    ).fetchall()


# -- export-collection -------------------------------------------------------------------


def test_geopackage_holds_what_the_items_endpoint_gives_the_user(
    base_url: str, users: dict[str, User], tmp_path: Path, db: psycopg.Connection
) -> None:
    """An operator of Gironde exports open sites in Lambert-93: the same sites, fields, values and
    places as /items gives them, and no field they may not read; the export is audited."""
    user = users[OPERATOR_33]
    query = {"filter": "status = 'open' AND population_total >= 5"}
    r = execute(base_url, user, "export-collection", {"collection": "sites", "crs": LAMBERT_93, **query})
    exported = read_file(_ok(r, GPKG), tmp_path, "gpkg")
    served = items(base_url, user, "sites", {**query, "crs": LAMBERT_93})

    assert served and sorted(exported["rows"]) == sorted(f["id"] for f in served)
    assert {f["properties"]["departement_code"] for f in served} == {"33"}
    assert exported["fields"] == _readable(base_url, user, "sites")
    assert "owner_name" not in exported["fields"]
    assert 'EPSG",2154' in exported["crs"] or exported["crs"] == "EPSG:2154"
    for feature in served:
        row = exported["rows"][feature["id"]]
        for name in ("name", "status", "commune_code", "population_total", "is_reinstallation"):
            value = row[name]
            if isinstance(value, float) and math.isnan(value):
                value = None
            expected = feature["properties"][name]
            assert value == expected or (isinstance(expected, bool) and value == float(expected)), name
        declared = row["declared_at"]
        assert str(declared)[:10] == feature["properties"]["declared_at"]
        x, y = feature["geometry"]["coordinates"]
        point = exported["geometries"][feature["id"]]
        assert math.hypot(point.x - x, point.y - y) < 0.05

    groups, detail = _audit(db, user.username, "sites")[-1]
    assert detail["format"] == "gpkg" and detail["features"] == len(served) and detail["crs"] == 2154
    assert groups == []


def test_flatgeobuf_with_bbox_and_datetime_matches_items_and_ogrinfo(
    base_url: str, users: dict[str, User], tmp_path: Path
) -> None:
    """The national administrator exports actions around Bordeaux at a date, as FlatGeobuf: the same
    actions as /items, with the finances they may read; Debian's GDAL opens the file too."""
    user = users[ADMIN]
    query = {"bbox": ",".join(map(str, BORDEAUX_BBOX)), "datetime": "2023-01-01/.."}
    inputs = {
        "collection": "actions",
        "format": "flatgeobuf",
        "bbox": BORDEAUX_BBOX,
        "datetime": query["datetime"],
    }
    exported = read_file(
        _ok(execute(base_url, user, "export-collection", inputs), FLATGEOBUF), tmp_path, "fgb"
    )
    served = items(base_url, user, "actions", query)
    assert served and sorted(exported["rows"]) == sorted(f["id"] for f in served)
    assert "budget_total" in exported["fields"] and "finances" in exported["fields"]
    for feature in served:
        row = exported["rows"][feature["id"]]
        assert row["name"] == feature["properties"]["name"]
        assert json.loads(row["site_ids"]) == feature["properties"]["site_ids"]
        footprint = exported["geometries"][feature["id"]]
        assert footprint.geom_type == "MultiPolygon"
        assert footprint.bounds[0] >= -180 and footprint.bounds[2] <= 180  # EPSG:4326, longitude first

    info = subprocess.run(
        ["ogrinfo", "-so", "-al", str(exported["path"])], capture_output=True, text=True, check=True
    ).stdout
    assert f"Feature Count: {len(served)}" in info
    assert "Geometry: Multi Polygon" in info and 'GEOGCRS["WGS 84"' in info


def test_geojson_is_rfc7946(operator_93: User, base_url: str, users: dict[str, User]) -> None:
    """GeoJSON in EPSG:4326: longitude first, no `crs` member, the user's sites only."""
    user = operator_93
    r = execute(base_url, user, "export-collection", {"collection": "sites", "format": "geojson"})
    body = json.loads(_ok(r, "application/geo+json"))
    assert "crs" not in body
    features = body["features"]
    assert {f["properties"]["departement_code"] for f in features} == {"93"}
    assert len(features) == len(items(base_url, user, "sites", {}))
    lon, lat = features[0]["geometry"]["coordinates"]
    assert 2 < lon < 3 and 48 < lat < 49  # Seine-Saint-Denis


def test_users_outside_the_scope_export_nothing_of_it(
    operator_93: User, base_url: str, users: dict[str, User], tmp_path: Path
) -> None:
    """An operator of Seine-Saint-Denis asking for Gironde's sites gets an empty file, and a
    collection it may not read does not exist for it."""
    user = operator_93
    r = execute(
        base_url, user, "export-collection", {"collection": "sites", "filter": "departement_code = '33'"}
    )
    assert read_file(_ok(r, GPKG), tmp_path, "gpkg")["rows"] == {}
    r = execute(base_url, user, "export-collection", {"collection": "sites", "bbox": BORDEAUX_BBOX})
    assert read_file(_ok(r, GPKG), tmp_path, "gpkg")["rows"] == {}
    # A property it may not read is refused like an unknown one.
    r = execute(base_url, user, "export-collection", {"collection": "sites", "filter": "owner_name = 'x'"})
    assert r.status_code == 400 and "owner_name" in r.json()["description"]


def test_export_needs_the_export_right(base_url: str, users: dict[str, User]) -> None:
    """An intervener (no export right) is refused in French; anonymous callers must sign in."""
    for process, inputs in (("export-collection", {"collection": "sites"}), ("export-actions", {})):
        r = execute(base_url, users["intervener-departement-33"], process, inputs)
        assert r.status_code == 403, r.text
        assert "exporter" in r.json()["description"]
        assert execute(base_url, None, process, inputs).status_code == 401


def test_export_inputs_are_checked(base_url: str, users: dict[str, User]) -> None:
    user = users[OPERATOR_33]
    for inputs, word in (
        ({"collection": "nope"}, "collection"),
        ({"collection": "sites", "format": "shp"}, "format"),
        ({"collection": "sites", "crs": "EPSG:27572"}, "27572"),
        ({"collection": "sites", "bbox": "1,2"}, "bbox"),
        ({"collection": "sites", "filter": "status = "}, "CQL2"),
    ):
        r = execute(base_url, user, "export-collection", inputs)
        assert r.status_code == 400, (inputs, r.text)
        assert word in r.json()["description"], r.json()


def _wait(base_url: str, user: User, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        r = requests.get(location, params={"f": "json"}, headers=user.headers, timeout=60)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("successful", "failed") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.3)


def test_a_large_export_runs_as_a_private_job(
    operator_93: User, base_url: str, users: dict[str, User], tmp_path: Path
) -> None:
    """Exporting every commune runs in the background; only its owner downloads the file."""
    owner = users[OPERATOR_33]
    r = execute(
        base_url,
        owner,
        "export-collection",
        {"collection": "communes", "filter": "departement_code = '33'", "crs": LAMBERT_93},
        Prefer="respond-async",
    )
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    status = _wait(base_url, owner, location)
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    results = f"{location}/results"
    content = _ok(requests.get(results, headers=owner.headers, timeout=60), GPKG)
    exported = tmp_path / "communes.gpkg"
    exported.write_bytes(content)
    _, _, geometries, _ = raw.read(str(exported))
    assert len(geometries) > 500  # Gironde has over 500 communes

    for other in (operator_93, users["operator-opts-departement-33"]):
        assert requests.get(results, headers=other.headers, timeout=60).status_code == 404
    assert requests.get(results, timeout=60).status_code == 401


# -- export-actions ----------------------------------------------------------------------


def _workbook(r: requests.Response) -> Any:
    return load_workbook(io.BytesIO(_ok(r, XLSX)), read_only=True)


def _sheet(book: Any, title: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    rows = list(book[title].iter_rows(values_only=True))
    return list(rows[0]), rows[1:]


def test_actions_spreadsheet_of_the_national_administrator(
    base_url: str, users: dict[str, User], db: psycopg.Connection
) -> None:
    """Every action on the National sheet, each on the sheet of each of its départements, finances
    in columns and on their own sheet; French headers and labels."""
    user = users[ADMIN]
    book = _workbook(execute(base_url, user, "export-actions", {}))
    served = items(base_url, user, "actions", {})
    headers, rows = _sheet(book, "National")
    assert headers[:2] == ["Identifiant", "Nom de l'action"]
    assert {"Budget total (€)", "Dépenses totales (€)", "Sites concernés", "Pilotes", "Opérateurs"} <= set(
        headers
    )
    assert sorted(r[0] for r in rows) == sorted(f["id"] for f in served)
    # French labels of codes.
    place = headers.index("Lieu de l'action")
    assert {r[place] for r in rows} <= {
        "Sur site",
        "Espace temporaire d'insertion",
        "Logement",
        "Autre",
        None,
    }

    by_departement: dict[str, set[int]] = {}
    for code, action in db.execute("SELECT departement_code, action_id FROM resorption.action_departements"):
        by_departement.setdefault(code, set()).add(action)
    sheets = [s for s in book.sheetnames if s not in ("National", "Financements")]
    assert sorted(s.split(" - ")[0] for s in sheets) == sorted(by_departement)
    gironde = next(s for s in sheets if s.startswith("33 - "))
    assert gironde == "33 - Gironde"
    assert {r[0] for r in _sheet(book, gironde)[1]} == by_departement["33"]

    finance_headers, finance_rows = _sheet(book, "Financements")
    assert finance_headers[:4] == [
        "Identifiant de l'action",
        "Nom de l'action",
        "Année",
        "Type de financement",
    ]
    in_db = db.execute("SELECT count(*) FROM resorption.action_finances").fetchone()[0]
    assert len(finance_rows) == in_db > 0
    groups, detail = _audit(db, user.username, "actions")[-1]
    assert groups == ["finances"] and detail["actions"] == len(served)


def test_actions_spreadsheet_of_an_operator_holds_only_its_departement(
    operator_93: User, base_url: str, users: dict[str, User], db: psycopg.Connection
) -> None:
    """An operator of Seine-Saint-Denis: only the actions working there, one département sheet, and
    no finances anywhere (absent, not blank)."""
    user = operator_93
    book = _workbook(execute(base_url, user, "export-actions", {}))
    assert book.sheetnames == ["National", "93 - Seine-Saint-Denis"]
    headers, rows = _sheet(book, "National")
    assert not {"Budget total (€)", "Dépenses totales (€)", "Financements par année"} & set(headers)
    expected = {
        r[0]
        for r in db.execute(
            "SELECT action_id FROM resorption.action_departements WHERE departement_code = '93'"
        )
    }
    assert expected and {r[0] for r in rows} == expected
    assert sorted(r[0] for r in rows) == sorted(f["id"] for f in items(base_url, user, "actions", {}))
    assert {r[0] for r in _sheet(book, "93 - Seine-Saint-Denis")[1]} == expected
    groups, detail = _audit(db, user.username, "actions")[-1]
    assert groups == [] and detail["departements"] == ["93"]


def test_export_processes_are_described_in_french(base_url: str) -> None:
    for process, title in (
        ("export-collection", "Exporter une collection"),
        ("export-actions", "Exporter les actions"),
    ):
        r = requests.get(f"{base_url}/processes/{process}", params={"f": "json"}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["title"].startswith(title)
        assert set(body["jobControlOptions"]) == {"sync-execute", "async-execute"}
    inputs = requests.get(f"{base_url}/processes/export-collection", params={"f": "json"}, timeout=60).json()
    assert inputs["inputs"]["format"]["schema"]["enum"] == ["gpkg", "flatgeobuf", "geojson"]


@pytest.mark.parametrize(
    ("role", "area", "expected"),
    [
        ("national_admin", None, Scope(nation=True)),
        ("correspondent", "33", Scope(nation=True)),  # export: nation
        ("operator", "33", Scope(nation=False, departements=frozenset({"33"}))),
        ("operator", None, Scope(nation=True)),
        ("intervener", "33", Scope(nation=False)),
        ("external_observer", None, Scope(nation=False)),
    ],
)
def test_export_scope_follows_the_policy(role: str, area: str | None, expected: Scope) -> None:
    """Where each role exports, and how it narrows the read scope of the export's transaction."""
    principal = Principal(
        username="x",
        role=role,
        area_level="departement" if area else "nation",
        area_code=area,
        area_departements=frozenset({area}) if area else None,
    )
    scope = POLICY.export_scope(principal)
    assert scope == expected
    read = POLICY.scope(principal, "sites")
    narrowed = narrow(read, scope)
    assert narrowed.departements <= (read.departements | scope.departements)
    assert narrowed.nation == (read.nation and scope.nation)


def test_features_a_utm_zone_cannot_hold_keep_their_attributes_without_geometry(
    base_url: str, users: dict[str, User], tmp_path: Path, db: psycopg.Connection
) -> None:
    """Every site in Mayotte's CRS (as FlatGeobuf): those of the Americas (Guiana, Antilles), beyond the
    zone (longitudes -45° to 135°), come without a geometry, as on /items; the others projected."""
    user = users[ADMIN]
    inputs = {"collection": "sites", "format": "flatgeobuf", "crs": "EPSG:4471"}
    exported = read_file(
        _ok(execute(base_url, user, "export-collection", inputs), FLATGEOBUF), tmp_path, "fgb"
    )
    longitudes = dict(db.execute("SELECT id, ST_X(location) FROM resorption.sites").fetchall())
    assert sorted(exported["rows"]) == sorted(longitudes)
    for identifier, geometry in exported["geometries"].items():
        assert (geometry is None) == (longitudes[identifier] < -45), identifier
    assert any(lon < -45 for lon in longitudes.values())
