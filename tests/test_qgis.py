"""QGIS's own OAPIF provider (Debian's QGIS 3.22) reads our sites and actions completely and correctly,
and only what its user may read.

python3-qgis is importable only from Debian's Python, not from the project's venv,
so the client runs as a subprocess (`tests/clients/qgis_load.py`) with
`/usr/bin/python3`, offscreen, with a throw-away HOME. It signs in the way QGIS users
do: HTTP Basic with their username and an API token, set on the layer's URI (the
"Basic" tab of the connection dialog). Its JSON report is compared with our API and
with the database. A machine without QGIS fails here: it never skips.

Three QGIS runs: the national administrator (every row and field) loads sites and
actions; an operator of one département loads sites and must get that département's
sites only, without the owner; a QGIS without credentials must be refused.

QGIS does not show the GeoJSON `id` of an integer-keyed feature as an attribute (its
GeoJSON reader makes it the feature id, and QGIS's feature cache renumbers features),
so each QGIS feature is matched to its API feature through a property unique in the
data (asserted), then compared on coordinates and attributes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from shapely.geometry import shape

from tests.api import all_features, number_matched
from tests.fix_users import AREA
from tests.fix_users import TestUser as User  # pytest would collect a `Test…` name

QGIS_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).parent / "clients" / "qgis_load.py"
LAMBERT_93 = "http://www.opengis.net/def/crs/EPSG/0/2154"
# Small enough that QGIS fetches several pages of each collection.
PAGE_SIZE = 50
TOLERANCE_M = 0.05
ADMIN = "national-admin-nation"
# Reads the sites of its département only, and no owner.
OPERATOR = f"operator-departement-{AREA}"
# The operator's département holds fewer sites than PAGE_SIZE: smaller pages, so that it pages
# too (not 10, the size of the one page QGIS 3.22 asks for to probe the layer when it opens it).
OPERATOR_PAGE_SIZE = 20


@dataclass(frozen=True)
class Expected:
    """What QGIS should see in one collection."""

    table: str
    wkb_type: str
    # A property unique in the demo data, to recognise each QGIS feature.
    key: str
    # Scalar properties QGIS must read exactly as our API serves them.
    compared: tuple[str, ...]


EXPECTED = {
    "sites": Expected(
        table="resorption.sites",
        wkb_type="Point",
        key="external_ref",
        compared=(
            "name",
            "commune_code",
            "commune_name",
            "departement_name",
            "status",
            "declared_at",
            "population_total",
            "population_minors",
            "is_reinstallation",
        ),
    ),
    "actions": Expected(
        table="resorption.actions",
        wkb_type="MultiPolygon",
        key="reference",
        compared=("name", "started_at", "ended_at", "place_type", "departement_code", "people_followed"),
    ),
}


def _run_qgis(
    base_url: str, home: Path, user: User | None, page_size: int, collections: list[str]
) -> dict[str, Any]:
    """Run the QGIS client script as `user` (Basic: username and API token), or without
    credentials; fail with its stderr when it does not produce a report."""
    home.mkdir(mode=0o700, exist_ok=True)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    # Debian's Python must not pick up the venv's packages.
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "OAPIF_USERNAME", "OAPIF_PASSWORD"):
        env.pop(name, None)
    if user is not None:
        # In the environment rather than on the command line, where any process could read the token.
        env.update(OAPIF_USERNAME=user.username, OAPIF_PASSWORD=user.token)
    command = [QGIS_PYTHON, str(SCRIPT), base_url, str(page_size), *collections]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError:
        pytest.fail(f"{QGIS_PYTHON} est introuvable : installez python3 et python3-qgis (Debian).")
    if done.returncode != 0:
        pytest.fail(
            f"le client QGIS a échoué (code {done.returncode}).\n"
            f"commande : {' '.join(command)}\n"
            f"--- stderr ---\n{done.stderr}\n--- stdout ---\n{done.stdout[:2000]}"
        )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"rapport QGIS illisible :\n{done.stdout[:2000]}\n--- stderr ---\n{done.stderr}")
    assert report["qgis_version"].startswith("3."), report["qgis_version"]
    return report["collections"]


@pytest.fixture(scope="module")
def qgis(base_url: str, users: dict[str, User], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What QGIS, signed in as the national administrator, read from each collection."""
    return _run_qgis(base_url, tmp_path_factory.mktemp("qgis-home"), users[ADMIN], PAGE_SIZE, list(EXPECTED))


@pytest.fixture(scope="module")
def qgis_operator(
    base_url: str, users: dict[str, User], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """What QGIS, signed in as an operator of one département, read from `sites`."""
    home = tmp_path_factory.mktemp("qgis-home-operator")
    return _run_qgis(base_url, home, users[OPERATOR], OPERATOR_PAGE_SIZE, ["sites"])["sites"]


@pytest.fixture(scope="module")
def qgis_anonymous(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What QGIS without credentials made of `sites`."""
    home = tmp_path_factory.mktemp("qgis-home-anonymous")
    return _run_qgis(base_url, home, None, PAGE_SIZE, ["sites"])["sites"]


@pytest.fixture(scope="module")
def api_features(http: requests.Session) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Our API's features per collection, in CRS84 and in Lambert-93."""
    return {
        c: {
            "crs84": all_features(http, f"/collections/{c}/items"),
            "l93": all_features(http, f"/collections/{c}/items", {"crs": LAMBERT_93}),
        }
        for c in EXPECTED
    }


def _valid(layer: dict[str, Any]) -> dict[str, Any]:
    assert layer["valid"], f"QGIS n'a pas pu ouvrir {layer['uri']} : {layer.get('error')} {layer['log']}"
    assert layer["errors"] == [], layer["errors"]
    return layer


def _layer(qgis: dict[str, Any], collection: str) -> dict[str, Any]:
    return _valid(qgis[collection])


def _item_page_offsets(layer: dict[str, Any], collection: str, page_size: int) -> list[int]:
    """Offsets of the items pages of `page_size` features QGIS fetched, in order."""
    offsets = []
    for exchange in layer["requests"]:
        parts = urlsplit(exchange["url"])
        query = parse_qs(parts.query)
        if parts.path.endswith(f"/collections/{collection}/items") and query.get("limit") == [str(page_size)]:
            offsets.append(int(query.get("offset", ["0"])[0]))
    return offsets


def _readable(base_url: str, user: User, collection: str) -> list[str]:
    """The properties `user` may read, from our /schema, in order."""
    r = requests.get(
        f"{base_url}/collections/{collection}/schema", params={"f": "json"}, headers=user.headers, timeout=60
    )
    assert r.status_code == 200, r.text
    return [name for name in r.json()["properties"] if name != "geometry"]


def _by_key(
    collection: str, layer: dict[str, Any], features: list[dict[str, Any]]
) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """Each API feature id → (API feature, the QGIS feature with the same key property)."""
    key = EXPECTED[collection].key
    api_keys = [f["properties"][key] for f in features]
    assert None not in api_keys, f"{key} manque à des {collection}"
    assert len(set(api_keys)) == len(api_keys), f"{key} n'identifie pas les {collection}"
    qgis_by_key: dict[Any, dict[str, Any]] = {}
    for feature in layer["features"]:
        value = feature["attributes"][key]
        assert value not in qgis_by_key, f"QGIS a lu deux fois {key} = {value}"
        qgis_by_key[value] = feature
    missing = [f["id"] for f in features if f["properties"][key] not in qgis_by_key]
    assert not missing, f"{len(missing)} {collection} absents de QGIS, par exemple {missing[:10]}"
    return {f["id"]: (f, qgis_by_key[f["properties"][key]]) for f in features}


@pytest.mark.parametrize("collection", EXPECTED)
def test_qgis_opens_the_layer_with_its_schema(
    qgis: dict[str, Any], base_url: str, users: dict[str, User], collection: str
) -> None:
    """The layer is valid, in WGS 84, of the right geometry type, with every readable property."""
    layer = _layer(qgis, collection)
    assert layer["crs"] == "EPSG:4326"
    assert layer["wkb_type"] == EXPECTED[collection].wkb_type
    assert [f["name"] for f in layer["fields"]] == _readable(base_url, users[ADMIN], collection)


def test_qgis_sees_readable_site_properties(qgis: dict[str, Any]) -> None:
    """A few properties a QGIS user relies on, with usable types."""
    fields = {f["name"]: f["type"] for f in _layer(qgis, "sites")["fields"]}
    assert fields["population_total"] == "Integer"
    assert fields["status"] == "String"
    assert fields["commune_name"] == "String"
    assert fields["declared_at"] == "Date"
    assert fields["owner_name"] == "String"  # sensitive: the national administrator reads it


@pytest.mark.parametrize("collection", EXPECTED)
def test_qgis_pages_through_next_links(qgis: dict[str, Any], http: requests.Session, collection: str) -> None:
    """QGIS asks for pages of PAGE_SIZE and follows our `next` links to the last one."""
    layer = _layer(qgis, collection)
    matched = number_matched(http, collection)
    assert matched > PAGE_SIZE
    # One request per page, the first one QGIS's own, the others our `next` links.
    offsets = _item_page_offsets(layer, collection, PAGE_SIZE)
    assert offsets == list(range(0, matched, PAGE_SIZE)), layer["requests"]
    assert math.ceil(matched / PAGE_SIZE) > 1


@pytest.mark.parametrize("collection", EXPECTED)
def test_qgis_signs_every_request_with_basic_credentials(qgis: dict[str, Any], collection: str) -> None:
    """The layer's username and token go with every request, `next` links included, and are accepted."""
    layer = _layer(qgis, collection)
    unsigned = [e for e in layer["requests"] if e["user"] != ADMIN or e["status"] != 200]
    assert not unsigned, unsigned


@pytest.mark.parametrize("collection", EXPECTED)
def test_qgis_reads_every_feature(
    qgis: dict[str, Any],
    api_features: dict[str, dict[str, list[dict[str, Any]]]],
    http: requests.Session,
    db: psycopg.Connection,
    collection: str,
) -> None:
    """QGIS counts and reads as many features as numberMatched and the database, each one once."""
    layer = _layer(qgis, collection)
    in_db = db.execute(f"SELECT count(*) FROM {EXPECTED[collection].table}").fetchone()[0]
    matched = number_matched(http, collection)
    assert len(layer["features"]) == layer["provider_feature_count"] == matched == in_db
    pairs = _by_key(collection, layer, api_features[collection]["crs84"])
    assert sorted(pairs) == sorted(r[0] for r in db.execute(f"SELECT id FROM {EXPECTED[collection].table}"))


@pytest.mark.parametrize("collection", EXPECTED)
def test_qgis_reads_attributes_as_served(
    qgis: dict[str, Any], api_features: dict[str, dict[str, list[dict[str, Any]]]], collection: str
) -> None:
    """Names, codes, dates, numbers and booleans arrive in QGIS unchanged."""
    pairs = _by_key(collection, _layer(qgis, collection), api_features[collection]["crs84"])
    differences = [
        (fid, name, api["properties"][name], seen["attributes"][name])
        for fid, (api, seen) in pairs.items()
        for name in EXPECTED[collection].compared
        if api["properties"][name] != seen["attributes"][name]
    ]
    assert not differences, f"{len(differences)} différences (id, propriété, API, QGIS) : {differences[:10]}"


def test_qgis_places_sites_where_our_api_does_in_lambert93(
    qgis: dict[str, Any], api_features: dict[str, dict[str, list[dict[str, Any]]]]
) -> None:
    """QGIS's own reprojection of our CRS84 points matches what we serve with crs=EPSG:2154."""
    pairs = _by_key("sites", _layer(qgis, "sites"), api_features["sites"]["crs84"])
    l93 = {f["id"]: f["geometry"]["coordinates"] for f in api_features["sites"]["l93"]}
    assert sorted(l93) == sorted(pairs)
    far = []
    for fid, (_, seen) in pairs.items():
        assert seen["geometry"]["type"] == "Point", (fid, seen["geometry"])
        (x, y), (ex, ey) = seen["geometry"]["xy"], l93[fid]
        if math.hypot(x - ex, y - ey) > TOLERANCE_M:
            far.append((fid, [x, y], [ex, ey]))
    assert not far, f"{len(far)} sites à plus de {TOLERANCE_M} m (id, QGIS, API) : {far[:10]}"


def test_qgis_reads_action_footprints_as_polygons(
    qgis: dict[str, Any], api_features: dict[str, dict[str, list[dict[str, Any]]]]
) -> None:
    """Every footprint is a non-empty MultiPolygon whose Lambert-93 area and bounds match our API's."""
    pairs = _by_key("actions", _layer(qgis, "actions"), api_features["actions"]["crs84"])
    l93 = {f["id"]: shape(f["geometry"]) for f in api_features["actions"]["l93"]}
    assert sorted(l93) == sorted(pairs)
    for fid, (_, seen) in pairs.items():
        geometry = seen["geometry"]
        assert geometry["type"] == "MultiPolygon", (fid, geometry)
        assert geometry["area"] > 0, (fid, geometry)
        served = l93[fid]
        assert served.geom_type == "MultiPolygon" and len(served.geoms) == geometry["parts"], fid
        assert geometry["area"] == pytest.approx(served.area, rel=1e-4), fid
        assert geometry["bounds"] == pytest.approx(list(served.bounds), abs=TOLERANCE_M), fid


def test_qgis_user_of_one_departement_loads_only_its_sites(
    qgis_operator: dict[str, Any], base_url: str, users: dict[str, User], db: psycopg.Connection
) -> None:
    """An operator of Gironde, signed in with Basic credentials, gets exactly Gironde's sites, page
    after page, and neither the owner's fields nor any other field they may not read."""
    layer = _valid(qgis_operator)
    in_db = sorted(
        r[0]
        for r in db.execute("SELECT external_ref FROM resorption.sites WHERE departement_code = %s", (AREA,))
    )
    assert len(in_db) > OPERATOR_PAGE_SIZE
    assert len(layer["features"]) == layer["provider_feature_count"] == len(in_db)
    assert {f["attributes"]["departement_code"] for f in layer["features"]} == {AREA}
    assert sorted(f["attributes"]["external_ref"] for f in layer["features"]) == in_db
    fields = [f["name"] for f in layer["fields"]]
    assert "owner_name" not in fields
    assert fields == _readable(base_url, users[OPERATOR], "sites")
    # Page after page, every request signed (our `next` links included) and accepted.
    offsets = _item_page_offsets(layer, "sites", OPERATOR_PAGE_SIZE)
    assert offsets == list(range(0, len(in_db), OPERATOR_PAGE_SIZE)), layer["requests"]
    unsigned = [e for e in layer["requests"] if e["user"] != OPERATOR or e["status"] != 200]
    assert not unsigned, unsigned


def test_qgis_without_credentials_cannot_open_sites(qgis_anonymous: dict[str, Any]) -> None:
    """Without credentials QGIS 3.22 gets our 401 and its Basic challenge when it asks for the
    collection's description, says so, and leaves the layer invalid: it never receives a site."""
    layer = qgis_anonymous
    assert not layer["valid"], layer
    assert "features" not in layer
    sites = [e for e in layer["requests"] if urlsplit(e["url"]).path.startswith("/collections/sites")]
    assert sites, layer["requests"]
    assert all(e["user"] is None for e in layer["requests"]), layer["requests"]
    assert all(e["status"] == 401 for e in sites), sites
    assert all(e["challenge"].startswith('Basic realm="') for e in sites), sites
    assert not [e for e in sites if "/items" in e["url"]], sites
    assert any("Host requires authentication" in message for message in layer["log"]), layer["log"]
