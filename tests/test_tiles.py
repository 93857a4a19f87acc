"""OGC API – Tiles: Mapbox vector tiles through the HTTP API, decoded as a map client would.

What each caller gets is compared with the database read as its owner (no row-level
security), filtered here by the scope the test expects: a tile holds exactly the sites of
the caller's scope that fall in it, only the attributes a map needs, and never a field of
a sensitive group.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import psycopg
import pytest
import requests
from psycopg import sql

from tests.fix_users import CATALOG, TestUser

MVT = "application/vnd.mapbox-vector-tile"
TILES = "/collections/{}/tiles/WebMercatorQuad/{}/{}/{}"
SITE_ATTRIBUTES = {"id", "name", "status", "population_total"}
CLUSTER_ATTRIBUTES = {"count", "population", "status"}
SENSITIVE = {name for c in ("sites", "actions") for name, f in CATALOG[c].fields.items() if f.group.sensitive}
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
# The margin kept around a detailed tile, as a fraction of its width (64 of 4096 units).
MARGIN = 64 / 4096


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """(z, row, col) of the WebMercatorQuad tile holding a point."""
    n = 2**z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, row, col


def get_tile(
    base_url: str, user: TestUser | None, collection: str, z: int, row: int, col: int, **kwargs: Any
) -> requests.Response:
    headers = {**(user.headers if user else {}), **kwargs.pop("headers", {})}
    return requests.get(
        base_url + TILES.format(collection, z, row, col), headers=headers, timeout=60, **kwargs
    )


def features(response: requests.Response, layer: str) -> list[dict[str, Any]]:
    """The features of a tile's layer; none for 204 No Content."""
    if response.status_code == 204:
        assert not response.content
        return []
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == MVT
    decoded = mapbox_vector_tile.decode(response.content)
    # (communes also carry their label points from zoom 10: tile_layers.Layer.labels_from)
    assert set(decoded) <= {layer, f"{layer}_noms", layer.removesuffix("_noms")}, decoded.keys()
    return decoded.get(layer, {}).get("features", [])


def sites_in_tile(
    db: psycopg.Connection, z: int, row: int, col: int, margin: float, departement: str | None
) -> list[tuple[int, int]]:
    """(id, population_total or 0) of the sites in a tile, of one département or of all."""
    return db.execute(
        "SELECT id, coalesce(population_total, 0) FROM resorption.sites "
        "WHERE location && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326) "
        "AND (%s::text IS NULL OR departement_code = %s)",
        (z, col, row, margin, departement, departement),
    ).fetchall()


@pytest.fixture(scope="module")
def operator_93(users: dict[str, TestUser]) -> TestUser:
    """An operator of Seine-Saint-Denis: a neighbour who must see nothing of Gironde."""
    return users["operator-departement-93"]


@pytest.fixture(scope="module")
def gironde(db: psycopg.Connection) -> tuple[float, float]:
    """A point where Gironde has demo sites: the Gironde site with the most Gironde neighbours."""
    lon, lat = db.execute(
        "SELECT ST_X(s.location), ST_Y(s.location) FROM resorption.sites s "
        "WHERE s.departement_code = '33' ORDER BY (SELECT count(*) FROM resorption.sites o "
        "WHERE o.departement_code = '33' AND ST_DWithin(o.location, s.location, 0.3)) DESC, s.id LIMIT 1"
    ).fetchone()
    return lon, lat


# -- who sees what -------------------------------------------------------------------------


def test_a_gironde_operator_gets_the_gironde_sites_of_the_tile_and_only_allowed_attributes(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection, gironde: tuple[float, float]
) -> None:
    z, row, col = tile_of(*gironde, 10)
    r = get_tile(base_url, users["operator-departement-33"], "sites", z, row, col)
    got = features(r, "sites")
    expected = {i for i, _ in sites_in_tile(db, z, row, col, MARGIN, "33")}
    assert expected, "la tuile choisie doit contenir des sites de Gironde"
    assert {f["id"] for f in got} == expected
    assert {f["properties"]["id"] for f in got} == expected
    for f in got:
        assert set(f["properties"]) <= SITE_ATTRIBUTES
        assert {"id", "status"} <= set(f["properties"])
        assert f["geometry"]["type"] == "Point"


def test_an_operator_of_another_departement_gets_no_gironde_site(
    base_url: str, operator_93: TestUser, db: psycopg.Connection, gironde: tuple[float, float]
) -> None:
    outsider = operator_93
    for z in (5, 8, 10, 14):
        z, row, col = tile_of(*gironde, z)
        assert sites_in_tile(db, z, row, col, MARGIN, "33"), "la tuile doit contenir des sites"
        assert sites_in_tile(db, z, row, col, MARGIN, "93") == []
        assert features(get_tile(base_url, outsider, "sites", z, row, col), "sites") == []
        # Nor the actions of Gironde.
        assert features(get_tile(base_url, outsider, "actions", z, row, col), "actions") == []


def test_a_national_reader_sees_sites_of_every_departement_in_the_tile(
    base_url: str, users: dict[str, TestUser], operator_93: TestUser, db: psycopg.Connection
) -> None:
    # Paris and the inner suburbs: several départements in one detailed tile.
    z, row, col = tile_of(2.40, 48.88, 9)
    expected = sites_in_tile(db, z, row, col, MARGIN, None)
    got = features(get_tile(base_url, users["national-admin-nation"], "sites", z, row, col), "sites")
    assert {f["id"] for f in got} == {i for i, _ in expected}
    departements = {
        d
        for (d,) in db.execute(
            "SELECT DISTINCT departement_code FROM resorption.sites WHERE id = ANY(%s)",
            ([i for i, _ in expected],),
        )
    }
    assert len(departements) > 1
    local = features(get_tile(base_url, operator_93, "sites", z, row, col), "sites")
    assert {f["id"] for f in local} == {i for i, _ in sites_in_tile(db, z, row, col, MARGIN, "93")}
    assert 0 < len(local) < len(got)


def test_anonymous_callers_get_territories_but_must_sign_in_for_sites_and_actions(
    base_url: str, gironde: tuple[float, float]
) -> None:
    z, row, col = tile_of(*gironde, 6)
    for collection in ("sites", "actions"):
        r = get_tile(base_url, None, collection, z, row, col)
        assert r.status_code == 401, r.text
        assert "WWW-Authenticate" in r.headers
        assert "Authentification" in r.json()["description"]
        assert requests.get(f"{base_url}/collections/{collection}/tiles", timeout=30).status_code == 401
    departements = features(get_tile(base_url, None, "departements", z, row, col), "departements")
    assert "33" in {f["properties"]["code"] for f in departements}
    for f in departements:
        assert set(f["properties"]) == {"code", "name"}
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert features(get_tile(base_url, None, "regions", z, row, col), "regions")


def test_a_collection_without_tiles_is_404(base_url: str, users: dict[str, TestUser]) -> None:
    r = get_tile(base_url, users["national-admin-nation"], "site_changes", 5, 11, 15)
    assert r.status_code == 404
    assert "tuiles" in r.json()["description"]


@pytest.mark.parametrize("zoom", [6, 10, 14])
def test_no_sensitive_attribute_for_any_user(
    base_url: str, users: dict[str, TestUser], gironde: tuple[float, float], zoom: int
) -> None:
    z, row, col = tile_of(*gironde, zoom)
    for user in users.values():
        for collection in ("sites", "actions"):
            r = get_tile(base_url, user, collection, z, row, col)
            if r.status_code == 404:  # a collection this role may not read
                continue
            for f in features(r, collection):
                assert not set(f["properties"]) & SENSITIVE, (user.username, f["properties"])
                assert set(f["properties"]) <= SITE_ATTRIBUTES | CLUSTER_ATTRIBUTES | {"place_type"}


def test_anonymous_callers_cannot_read_the_versions_of_sites_and_actions(db: psycopg.Connection) -> None:
    """The versions behind the ETags are rows too: row-level security hides those of protected data."""
    with db.transaction():
        owner_sees = db.execute(
            "SELECT count(*) FROM resorption.collection_changes WHERE collection IN ('sites', 'actions')"
        ).fetchone()[0]
        db.execute("SET LOCAL ROLE resorption_anonymous")
        anonymous_sees = db.execute(
            "SELECT collection, count(*) FROM resorption.collection_changes GROUP BY 1"
        ).fetchall()
        db.execute("SELECT set_config('resorption.sites_scope', '33', true)")
        reader_sees = db.execute(
            "SELECT count(*) FROM resorption.collection_changes WHERE collection = 'sites'"
        ).fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("INSERT INTO resorption.collection_changes (collection) VALUES ('sites')")
    assert owner_sees > 0
    assert {c for c, _ in anonymous_sees} <= {"regions", "departements", "communes"}
    assert reader_sees > 0


def test_folding_the_versions_keeps_every_etag(
    base_url: str, users: dict[str, TestUser], gironde: tuple[float, float], db: psycopg.Connection
) -> None:
    """The purger folds the versions into one row per collection and département: each caller's
    ETag of each tile stays the same (a client's cached tile stays valid), the rows shrink, and
    the next write changes the versions of those who read it, as before."""
    z, row, col = tile_of(*gironde, 14)
    readers = [
        users["national-admin-nation"],
        users["operator-departement-33"],
        users["operator-departement-93"],
    ]

    def etags() -> list[str]:
        return [
            get_tile(base_url, u, c, z, row, col).headers["ETag"]
            for u in readers
            for c in ("sites", "actions")
        ]

    db.execute(
        "INSERT INTO resorption.collection_changes (collection, departement_code) VALUES ('sites', '33')"
    )
    before, rows = etags(), db.execute("SELECT count(*) FROM resorption.collection_changes").fetchone()[0]
    assert db.execute("SELECT resorption.fold_collection_changes()").fetchone()[0] == rows
    folded = db.execute("SELECT count(*) FROM resorption.collection_changes").fetchone()[0]
    assert folded < rows
    assert (
        folded
        == db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT collection, departement_code FROM resorption.collection_changes) d"
        ).fetchone()[0]
    )
    assert etags() == before
    db.execute(
        "INSERT INTO resorption.collection_changes (collection, departement_code) VALUES ('sites', '33')"
    )
    after = etags()
    # the national reader's and the Gironde's sites tiles change; the 93's do not, nor the actions'
    assert [a != b for a, b in zip(after, before, strict=True)] == [True, False, True, False, False, False]


# -- clustering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, departement", [("national-admin-nation", None), ("operator-departement-33", "33")]
)
def test_low_zooms_cluster_the_sites_in_scope(
    base_url: str,
    users: dict[str, TestUser],
    db: psycopg.Connection,
    gironde: tuple[float, float],
    username: str,
    departement: str | None,
) -> None:
    z, row, col = tile_of(*gironde, 6)
    expected = sites_in_tile(db, z, row, col, 0.0, departement)
    clusters = features(get_tile(base_url, users[username], "sites", z, row, col), "sites")
    assert 0 < len(clusters) < len(expected)
    assert sum(c["properties"]["count"] for c in clusters) == len(expected)
    assert sum(c["properties"]["population"] for c in clusters) == sum(p for _, p in expected)
    for c in clusters:
        assert set(c["properties"]) == CLUSTER_ATTRIBUTES
        assert c["geometry"]["type"] == "Point"
        assert c["properties"]["status"] in CATALOG["sites"].fields["status"].enum


def test_zoom_9_shows_sites_one_by_one(
    base_url: str, users: dict[str, TestUser], gironde: tuple[float, float]
) -> None:
    z, row, col = tile_of(*gironde, 9)
    got = features(get_tile(base_url, users["national-admin-nation"], "sites", z, row, col), "sites")
    assert got and all("count" not in f["properties"] and "id" in f["properties"] for f in got)


# -- other layers -----------------------------------------------------------------------------


def test_actions_tiles_hold_their_footprints(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    lon, lat = db.execute(
        "SELECT ST_X(ST_PointOnSurface(footprint)), ST_Y(ST_PointOnSurface(footprint)) "
        "FROM resorption.actions WHERE footprint IS NOT NULL AND departement_code = '33' ORDER BY id LIMIT 1"
    ).fetchone()
    z, row, col = tile_of(lon, lat, 12)
    expected = {
        i
        for (i,) in db.execute(
            "SELECT id FROM resorption.actions WHERE footprint && "
            "ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326) AND departement_code = '33'",
            (z, col, row, MARGIN),
        )
    }
    got = features(get_tile(base_url, users["operator-departement-33"], "actions", z, row, col), "actions")
    assert expected and expected <= {f["id"] for f in got}
    for f in got:
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon"}
        assert set(f["properties"]) == {"id", "name", "place_type"}


def test_communes_appear_from_zoom_8(base_url: str, gironde: tuple[float, float]) -> None:
    r = get_tile(base_url, None, "communes", *tile_of(*gironde, 7))
    assert r.status_code == 204
    communes = features(get_tile(base_url, None, "communes", *tile_of(*gironde, 10)), "communes")
    assert communes and all(set(f["properties"]) == {"code", "name", "departement_code"} for f in communes)
    # From zoom 10, one label point per commune: a point with its code and name only.
    labels = features(get_tile(base_url, None, "communes", *tile_of(*gironde, 10)), "communes_noms")
    assert labels and all(set(f["properties"]) == {"code", "name"} for f in labels)
    assert all(f["geometry"]["type"] == "Point" for f in labels)
    assert not features(get_tile(base_url, None, "communes", *tile_of(*gironde, 9)), "communes_noms")


# -- caching ---------------------------------------------------------------------------------


def test_etag_then_304_and_per_user(
    base_url: str, users: dict[str, TestUser], gironde: tuple[float, float]
) -> None:
    z, row, col = tile_of(*gironde, 10)
    admin, operator = users["national-admin-nation"], users["operator-departement-33"]
    first = get_tile(base_url, admin, "sites", z, row, col)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    # A signed-in caller's tile is kept by no cache (response_headers); revalidation still answers.
    assert first.headers["Cache-Control"] == "private, no-store"
    again = get_tile(base_url, admin, "sites", z, row, col, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert not again.content
    assert again.headers["ETag"] == etag
    # Another scope sees other rows: its own ETag, so a cached tile never crosses users.
    other = get_tile(base_url, operator, "sites", z, row, col, headers={"If-None-Match": etag})
    assert other.status_code == 200
    assert other.headers["ETag"] != etag
    # Territories have versions too, readable by anonymous callers.
    public = get_tile(base_url, None, "departements", z, row, col)
    assert public.status_code == 200
    assert (
        get_tile(
            base_url, None, "departements", z, row, col, headers={"If-None-Match": public.headers["ETag"]}
        ).status_code
        == 304
    )
    # HEAD answers like GET, without the body.
    head = requests.head(base_url + TILES.format("departements", z, row, col), timeout=30)
    assert head.status_code == 200 and head.headers["ETag"] == public.headers["ETag"] and not head.content


def test_an_edit_changes_the_etag(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection, gironde: tuple[float, float]
) -> None:
    admin = users["national-admin-nation"]
    z, row, col = tile_of(*gironde, 10)
    site_id, name = db.execute(
        "SELECT id, name FROM resorption.sites WHERE location && "
        "ST_Transform(ST_TileEnvelope(%s, %s, %s), 4326) ORDER BY id LIMIT 1",
        (z, col, row),
    ).fetchone()
    before = get_tile(base_url, admin, "sites", z, row, col)
    departements_before = get_tile(base_url, admin, "departements", z, row, col).headers["ETag"]
    item = f"{base_url}/collections/sites/items/{site_id}"
    try:
        r = requests.patch(
            item, json={"properties": {"name": "Renommé pour les tuiles"}}, headers=admin.headers, timeout=60
        )
        assert r.status_code == 204, r.text
        after = get_tile(
            base_url, admin, "sites", z, row, col, headers={"If-None-Match": before.headers["ETag"]}
        )
        assert after.status_code == 200
        assert after.headers["ETag"] != before.headers["ETag"]
        renamed = {f["id"]: f["properties"].get("name") for f in features(after, "sites")}
        assert renamed[site_id] == "Renommé pour les tuiles"
        # Territories did not change: their tiles keep their ETag.
        assert get_tile(base_url, admin, "departements", z, row, col).headers["ETag"] == departements_before
    finally:
        r = requests.patch(item, json={"properties": {"name": name}}, headers=admin.headers, timeout=60)
        assert r.status_code == 204, r.text


# -- bad requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("sites/tiles/WebMercatorQuad/10/abc/3", 400, "tileRow"),
        ("sites/tiles/WebMercatorQuad/25/0/0", 400, "tileMatrix"),
        ("sites/tiles/WebMercatorQuad/-1/0/0", 400, "tileMatrix"),
        ("sites/tiles/WebMercatorQuad/2/4/0", 400, "tileRow"),
        ("sites/tiles/WebMercatorQuad/2/0/4", 400, "tileCol"),
        ("sites/tiles/WebMercatorQuad/2/0/99999999999999999999", 400, "tileCol"),
        ("sites/tiles/WorldCRS84Quad/2/0/0", 404, "WebMercatorQuad"),
        ("sites/tiles/WebMercatorQuad/2/0/0?f=png", 400, "f=mvt"),
        ("sites/tiles/WorldCRS84Quad", 404, "WebMercatorQuad"),
        ("inconnue/tiles/WebMercatorQuad/2/0/0", 404, "tuiles"),
    ],
)
def test_bad_tile_requests_get_a_french_ogc_exception(
    base_url: str, users: dict[str, TestUser], path: str, status: int, words: str
) -> None:
    r = requests.get(
        f"{base_url}/collections/{path}", headers=users["national-admin-nation"].headers, timeout=30
    )
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] in {"InvalidParameterValue", "NotFound"}
    assert words in body["description"]


# -- metadata ----------------------------------------------------------------------------------


def test_tilesets_metadata_link_everything_a_client_needs(
    base_url: str, http: requests.Session, gironde: tuple[float, float]
) -> None:
    collection = http.get("/collections/sites").json()
    tilesets_link = next(lk for lk in collection["links"] if lk["rel"] == OGC_REL + "tilesets-vector")
    assert tilesets_link["href"] == f"{base_url}/collections/sites/tiles"

    listing = http.get(tilesets_link["href"])
    assert listing.status_code == 200 and listing.headers["Content-Type"].startswith("application/json")
    (tileset_entry,) = listing.json()["tilesets"]
    assert tileset_entry["dataType"] == "vector"
    assert tileset_entry["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    tileset_href = next(lk["href"] for lk in tileset_entry["links"] if lk["rel"] == OGC_REL + "tileset")

    tileset = http.get(tileset_href).json()
    links = {lk["rel"]: lk for lk in tileset["links"]}
    assert links["self"]["href"] == tileset_href
    template = links["item"]
    assert template["type"] == MVT and template["templated"] is True
    assert (
        template["href"]
        == f"{base_url}/collections/sites/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
    )
    (layer,) = tileset["layers"]
    assert layer["id"] == "sites" and layer["geometryDimension"] == 0
    assert set(layer["propertiesSchema"]["properties"]) == SITE_ATTRIBUTES | {"count", "population"}

    assert http.get(f"{tileset_href}/metadata").json() == tileset
    scheme = http.get(links[OGC_REL + "tiling-scheme"]["href"]).json()
    assert scheme["id"] == "WebMercatorQuad" and len(scheme["tileMatrices"]) == 25
    sets = http.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]

    z, row, col = tile_of(*gironde, 10)
    url = template["href"].format(tileMatrix=z, tileRow=row, tileCol=col)
    assert http.get(url).headers["Content-Type"] == MVT
    assert http.get(url, params={"f": "mvt"}).status_code == 200

    conformance = http.get("/conformance").json()["conformsTo"]
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt"):
        assert f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}" in conformance


def test_every_tiled_collection_links_its_tiles(base_url: str, http: requests.Session) -> None:
    for collection in ("sites", "actions", "regions", "departements", "communes"):
        links = http.get(f"/collections/{collection}").json()["links"]
        assert any(lk["rel"] == OGC_REL + "tilesets-vector" for lk in links), collection
        tileset = http.get(f"/collections/{collection}/tiles/WebMercatorQuad")
        assert tileset.status_code == 200
        assert tileset.json()["layers"][0]["id"] == collection
    links = http.get("/collections/site_changes").json()["links"]
    assert not any(lk["rel"] == OGC_REL + "tilesets-vector" for lk in links)


def test_the_openapi_document_declares_the_tile_operations(http: requests.Session) -> None:
    paths = http.get("/openapi", params={"f": "json"}).json()["paths"]
    assert "/tileMatrixSets" in paths and "/tileMatrixSets/{tileMatrixSetId}" in paths
    for collection in ("sites", "actions", "regions", "departements", "communes"):
        base = f"/collections/{collection}/tiles"
        assert base in paths and f"{base}/{{tileMatrixSetId}}" in paths
        tile = paths[f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"]["get"]
        assert MVT in tile["responses"]["200"]["content"]
        assert {"204", "400", "404"} <= set(tile["responses"])


@pytest.mark.parametrize(
    "collection, index",
    [
        ("sites", "sites_location_idx"),
        ("actions", "actions_footprint_idx"),
        ("regions", "regions_geom_idx"),
        ("departements", "departements_geom_idx"),
        ("communes", "communes_geom_idx"),
    ],
)
@pytest.mark.parametrize("zoom", [6, 10])
def test_the_tile_envelope_uses_the_spatial_index(
    db: psycopg.Connection, gironde: tuple[float, float], collection: str, index: str, zoom: int
) -> None:
    """The envelope is transformed to the column's SRID, never the column: the GiST index applies.

    Sequential scans are discouraged so that the plan shows whether the index can be used at
    all (a transformed column could only be scanned), whatever the size of the test data. The
    plan is the one of a reader under row-level security: the index stays usable only because
    `&&` is leakproof (sql/005_row_security.sql).
    """
    from resorption.query import tile_statement
    from resorption.tile_layers import LAYERS

    layer = LAYERS[collection]
    z, row, col = tile_of(*gironde, zoom)
    statement, params = tile_statement(CATALOG[collection], layer, layer.properties, z, col, row)
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL ROLE resorption_read")
        db.execute(
            "SELECT set_config('resorption.sites_scope', '*', true), "
            "set_config('resorption.actions_scope', '*', true)"
        )
        plan = "\n".join(r[0] for r in db.execute(sql.SQL("EXPLAIN ") + statement, params))
    assert index in plan, plan


def test_gdal_places_the_sites_of_a_tile_where_they_are(
    base_url: str,
    users: dict[str, TestUser],
    db: psycopg.Connection,
    gironde: tuple[float, float],
    tmp_path: Path,
) -> None:
    """GDAL's MVT driver georeferences a tile saved as {z}/{x}/{y}.pbf: rows and columns are right."""
    z, row, col = tile_of(*gironde, 12)
    r = get_tile(base_url, users["national-admin-nation"], "sites", z, row, col)
    assert r.status_code == 200
    path = tmp_path / str(z) / str(col) / f"{row}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(r.content)
    out = tmp_path / "sites.geojson"
    subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "-t_srs", "EPSG:4326", "-lco", "RFC7946=YES", str(out), str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    placed = json.loads(out.read_text())["features"]
    assert {f["properties"]["mvt_id"] for f in placed} == {
        i for i, _ in sites_in_tile(db, z, row, col, MARGIN, None)
    }
    unit = 2 * 20037508.34 / (2**z * 4096)  # one tile unit, in Web Mercator metres
    for f in placed:
        lon, lat = f["geometry"]["coordinates"]
        off = db.execute(
            "SELECT ST_Distance(ST_Transform(location, 3857), ST_Transform(ST_Point(%s, %s, 4326), 3857)) "
            "FROM resorption.sites WHERE id = %s",
            (lon, lat, f["properties"]["mvt_id"]),
        ).fetchone()[0]
        assert off < unit, (f, off)
