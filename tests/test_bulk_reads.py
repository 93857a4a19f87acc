"""The export right governs every bulk read, through the database scope, for every role.

A bulk read is an export: the export processes, items in a file format (`f=csv`) and pages
larger than the bulk threshold. Those who may export read them within their export scope
(row-level security with their read scopes narrowed to it); the others get a French 403 for
files, and pages reduced to the threshold (which they can follow by `next`, one page at a
time). The QGIS project asks for pages of the size the caller's right allows.

Most tests run against a second server on the session's database, with a small threshold
(so that the demo's sites make big pages) and a policy where correspondents export only
their area while they read the nation: what such a département-scoped exporter gets in bulk
shows that the export scope, not the read scope, decides. Expectations are read from that
policy file, independently of resorption.policy and resorption.bulk.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml
from openpyxl import load_workbook

from resorption.errors import ConfigurationError
from resorption.settings import Settings
from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import AREA, POLICY, TestUser, _username, user_cases

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 100
# The shipped policy, but correspondents export only their area (they read the nation).
RAW = yaml.safe_load((ROOT / "config" / "access-policy.yml").read_text(encoding="utf-8"))
RAW["roles"]["correspondent"]["export"] = "area"
CASES = user_cases(POLICY)
IDS = [_username(*case) for case in CASES]
NARROW_EXPORTER = _username("correspondent", frozenset(), "departement", AREA)


def scope_of(rule: str, options: frozenset[str], level: str) -> str:
    """'nation', 'area' or 'none' for a rule of the policy file."""
    if rule.startswith("option:"):
        rule = "area" if rule.split(":", 1)[1] in options else "none"
    return "nation" if rule == "area" and level == "nation" else rule


def read_scope(user: TestUser, collection: str) -> str:
    return scope_of(RAW["roles"][user.role][collection]["read"], user.options, user.area_level)


def export_scope(user: TestUser) -> str:
    return scope_of(RAW["roles"][user.role]["export"], user.options, user.area_level)


def bulk_scope(user: TestUser, collection: str) -> str:
    """Where a bulk read reaches: the read scope narrowed to the export scope."""
    scopes = {read_scope(user, collection), export_scope(user)}
    return "none" if "none" in scopes else "area" if "area" in scopes else "nation"


def ids_in(db: psycopg.Connection, collection: str, scope: str) -> set[int]:
    if collection == "sites":
        query = "SELECT id FROM resorption.sites"
        if scope == "area":
            query += " WHERE departement_code = %(area)s"
    else:
        query = "SELECT id FROM resorption.actions"
        if scope == "area":
            query = "SELECT action_id FROM resorption.action_departements WHERE departement_code = %(area)s"
    return {r[0] for r in db.execute(query, {"area": AREA})}


@pytest.fixture(scope="module")
def narrow_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server on the session's database: bulk threshold 100, correspondents export their area."""
    runtime = tmp_path_factory.mktemp("bulk")
    policy = runtime / "access-policy.yml"
    policy.write_text(yaml.safe_dump(RAW, allow_unicode=True), encoding="utf-8")
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
        "RESORPTION_POLICY": str(policy),
        "RESORPTION_BULK_THRESHOLD": str(THRESHOLD),
    }
    with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port) as url:
        yield url


def get(url: str, user: TestUser, path: str, **params: Any) -> requests.Response:
    return requests.get(url + path, params=params, headers=user.headers, timeout=120)


@pytest.fixture(params=CASES, ids=IDS)
def user(request: pytest.FixtureRequest, users: dict[str, TestUser]) -> TestUser:
    return users[_username(*request.param)]


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_files_need_the_export_right_and_stay_in_its_scope(
    narrow_url: str, db: psycopg.Connection, user: TestUser, collection: str
) -> None:
    r = get(narrow_url, user, f"/collections/{collection}/items", f="csv", limit=10_000)
    if read_scope(user, collection) == "none":
        assert r.status_code == 404
        return
    if export_scope(user) == "none":
        assert r.status_code == 403, r.text
        description = r.json()["description"]
        assert "Votre rôle ne vous permet pas d'exporter" in description and "page par page" in description
        assert "features" not in r.text
        return
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert {int(row["id"]) for row in rows} == ids_in(db, collection, bulk_scope(user, collection))


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_big_pages_follow_the_export_right(
    narrow_url: str, db: psycopg.Connection, user: TestUser, collection: str
) -> None:
    params = {"limit": 10_000, "skipGeometry": "true", "properties": "name"}
    r = get(narrow_url, user, f"/collections/{collection}/items", **params)
    if read_scope(user, collection) == "none":
        assert r.status_code == 404
        return
    assert r.status_code == 200, r.text
    body = r.json()
    returned = {f["id"] for f in body["features"]}
    if export_scope(user) == "none":
        # Reduced to the threshold, not refused: the rest is one `next` link away.
        readable = ids_in(db, collection, read_scope(user, collection))
        assert returned <= readable
        assert len(returned) == min(THRESHOLD, len(readable))
        if len(readable) > THRESHOLD:
            following = next(link["href"] for link in body["links"] if link["rel"] == "next")
            second = requests.get(following, headers=user.headers, timeout=120).json()
            assert len(second["features"]) == min(THRESHOLD, len(readable) - THRESHOLD)
            assert not {f["id"] for f in second["features"]} & returned
        return
    assert returned == ids_in(db, collection, bulk_scope(user, collection))


def test_a_departement_scoped_exporter_never_gets_rows_outside_its_export_area(
    narrow_url: str, db: psycopg.Connection, users: dict[str, TestUser]
) -> None:
    """A correspondent of Gironde reads the nation but exports Gironde: every bulk path stays there."""
    user = users[NARROW_EXPORTER]
    gironde = ids_in(db, "sites", "area")
    everywhere = ids_in(db, "sites", "nation")
    # Reading page by page is not exporting: the nation, 100 sites at a time.
    page = get(narrow_url, user, "/collections/sites/items", limit=THRESHOLD, properties="name").json()
    assert len(page["features"]) == THRESHOLD and not {f["id"] for f in page["features"]} <= gironde
    # A big page, a file, and each export process: Gironde only.
    big = get(narrow_url, user, "/collections/sites/items", limit=5_000, properties="name").json()
    assert {f["id"] for f in big["features"]} == gironde
    text = get(narrow_url, user, "/collections/sites/items", f="csv", limit=5_000).text
    assert {int(row["id"]) for row in csv.DictReader(io.StringIO(text, newline=""))} == gironde
    outside = min(everywhere - gironde)
    one = get(narrow_url, user, f"/collections/sites/items/{outside}", f="csv")
    assert one.status_code == 404, "a single item as a file is an export too"

    def execute(process: str, **inputs: Any) -> requests.Response:
        r = requests.post(
            f"{narrow_url}/processes/{process}/execution",
            json={"inputs": inputs},
            headers=user.headers,
            timeout=300,
        )
        assert r.status_code == 200, r.text
        return r

    sheet = load_workbook(io.BytesIO(execute("export-sites").content)).active
    labels = [c.value for c in sheet[2]]
    exported = {row[labels.index("Identifiant")] for row in sheet.iter_rows(min_row=3, values_only=True)}
    assert exported == gironde
    refused = requests.post(
        f"{narrow_url}/processes/export-sites/execution",
        json={"inputs": {"territoire": "93"}},
        headers=user.headers,
        timeout=120,
    )
    assert refused.status_code == 403 and "hors de votre territoire" in refused.json()["description"]
    geojson = execute("export-collection", collection="sites", format="geojson").json()
    assert {f["properties"].get("id", f.get("id")) for f in geojson["features"]} == gironde
    actions = load_workbook(io.BytesIO(execute("export-actions").content))["National"]
    labels = [c.value for c in actions[1]]
    exported = {row[labels.index("Identifiant")] for row in actions.iter_rows(min_row=2, values_only=True)}
    assert exported == ids_in(db, "actions", "area")


def page_size(url: str, user: TestUser) -> set[int]:
    """The page sizes of the layers of the caller's QGIS project."""
    r = get(url, user, "/qgis/projet.qgz")
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        qgs = archive.read(archive.namelist()[0]).decode("utf-8")
    return {int(size) for size in re.findall(r"pageSize='(\d+)'", qgs)}


def test_the_qgis_project_asks_for_pages_the_caller_may_have(
    base_url: str, narrow_url: str, users: dict[str, TestUser]
) -> None:
    # The shipped policy and threshold (1,000): exporters read big pages, the others pages of 1,000.
    assert page_size(base_url, users["national-admin-nation"]) == {5_000}
    assert page_size(base_url, users[_username("operator", frozenset(), "departement", AREA)]) == {5_000}
    assert page_size(base_url, users[_username("intervener", frozenset(), "departement", AREA)]) == {1_000}
    assert page_size(base_url, users[_username("external_observer", frozenset(), "nation", None)]) == {1_000}
    # Someone whose export reaches less than it reads asks for pages served as they are.
    assert page_size(narrow_url, users[NARROW_EXPORTER]) == {THRESHOLD}
    assert page_size(narrow_url, users["national-admin-nation"]) == {5_000}


def test_the_bulk_threshold_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESORPTION_BULK_THRESHOLD", "0")
    with pytest.raises(ConfigurationError, match="RESORPTION_BULK_THRESHOLD doit être au moins 1"):
        Settings.from_env("postgresql://localhost/x")
