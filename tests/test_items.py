"""Items and single items through the HTTP API, checked against the database."""

from __future__ import annotations

import psycopg
import pytest
import requests
from pyproj import Transformer

from tests.api import all_features

COLLECTIONS = ["sites", "actions", "regions", "departements", "communes"]


def count(db: psycopg.Connection, where: str = "TRUE", params: tuple = (), table: str = "sites") -> int:
    """Rows of a table matching a condition, straight from PostgreSQL."""
    return db.execute(f"SELECT count(*) FROM resorption.{table} t WHERE {where}", params).fetchone()[0]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_collection_is_listed_with_french_title(http: requests.Session, collection: str) -> None:
    r = http.get(f"/collections/{collection}", params={"f": "json"})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == collection
    assert body["title"] and body["description"]
    crs = body.get("crs", [])
    assert "http://www.opengis.net/def/crs/EPSG/0/2154" in crs


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_items_page_is_geojson(http: requests.Session, collection: str) -> None:
    r = http.get(f"/collections/{collection}/items", params={"limit": 3})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/geo+json")
    assert r.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"]) == 3
    assert {link["rel"] for link in body["links"]} >= {"self", "alternate", "next"}
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] in ("Point", "MultiPolygon")
        # QGIS shows properties, not the GeoJSON id: the identifier is both
        key = "id" if collection in ("sites", "actions") else "code"
        assert feature["properties"][key] == feature["id"]


def test_accept_any_gives_json(http: requests.Session) -> None:
    r = http.get("/collections/sites/items", headers={"Accept": "*/*"})
    assert r.status_code == 200
    assert r.json()["type"] == "FeatureCollection"


def test_html_items_and_item(http: requests.Session) -> None:
    r = http.get("/collections/sites/items", params={"f": "html", "limit": 5})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    first = http.get("/collections/sites/items", params={"limit": 1}).json()["features"][0]
    r = http.get(f"/collections/sites/items/{first['id']}", params={"f": "html"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


def test_paging_reaches_every_site_once(
    http: requests.Session, db: psycopg.Connection, base_url: str
) -> None:
    features = all_features(http, "/collections/sites/items", {"limit": 97})
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids)) == count(db)
    first = http.get("/collections/sites/items", params={"limit": 97}).json()
    assert first["numberMatched"] == count(db)
    # next links keep every parameter and use the public base URL
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert nxt.startswith(f"{base_url}/collections/sites/items?")
    assert "limit=97" in nxt and "offset=97" in nxt


def test_prev_link_on_later_pages(http: requests.Session) -> None:
    body = http.get("/collections/sites/items", params={"limit": 10, "offset": 20}).json()
    prev = next(link["href"] for link in body["links"] if link["rel"] == "prev")
    assert "offset=10" in prev


def test_numbers_on_last_page(http: requests.Session, db: psycopg.Connection) -> None:
    total = count(db)
    body = http.get("/collections/sites/items", params={"limit": 10, "offset": total - 3}).json()
    assert body["numberReturned"] == 3
    assert body["numberMatched"] == total
    assert "next" not in {link["rel"] for link in body["links"]}


def test_hits_counts_without_features(http: requests.Session, db: psycopg.Connection) -> None:
    body = http.get("/collections/sites/items", params={"resulttype": "hits", "status": "open"}).json()
    assert body["features"] == []
    assert body["numberMatched"] == count(db, "status = 'open'")


def test_one_item(http: requests.Session, db: psycopg.Connection) -> None:
    site_id, name, total = db.execute(
        "SELECT id, name, population_total FROM resorption.sites WHERE name IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    r = http.get(f"/collections/sites/items/{site_id}")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/geo+json")
    feature = r.json()
    assert feature["id"] == site_id
    assert feature["properties"]["name"] == name
    assert feature["properties"]["population_total"] == total
    assert any(link["rel"] == "collection" for link in feature["links"])


def test_territory_item_by_insee_code(http: requests.Session) -> None:
    r = http.get("/collections/departements/items/2A")
    assert r.status_code == 200
    assert r.json()["properties"]["name"] == "Corse-du-Sud"
    assert r.json()["properties"]["region_name"] == "Corse"
    assert http.get("/collections/communes/items/33063").json()["properties"]["name"] == "Bordeaux"


@pytest.mark.parametrize("identifier", ["999999999", "abc", "-1", "1.5", "0x10", "9" * 30])
def test_missing_item_is_404_in_french(http: requests.Session, identifier: str) -> None:
    r = http.get(f"/collections/sites/items/{identifier}")
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "NotFound"
    assert "n'existe pas" in body["description"]


def test_unknown_collection_is_404(http: requests.Session) -> None:
    r = http.get("/collections/bidonvilles/items")
    assert r.status_code == 404
    assert "n'existe pas" in r.json()["description"]


def test_properties_and_skip_geometry(http: requests.Session) -> None:
    body = http.get(
        "/collections/sites/items",
        params={"properties": "name,population_total", "skipGeometry": "true", "limit": 5},
    ).json()
    for feature in body["features"]:
        assert feature["geometry"] is None
        assert list(feature["properties"]) == ["name", "population_total"]


def test_sortby_descending_then_id(http: requests.Session, db: psycopg.Connection) -> None:
    expected = [
        row[0]
        for row in db.execute(
            "SELECT id FROM resorption.sites ORDER BY population_total DESC NULLS FIRST, id LIMIT 20"
        )
    ]
    body = http.get("/collections/sites/items", params={"sortby": "-population_total", "limit": 20}).json()
    assert [f["id"] for f in body["features"]] == expected


def test_sortby_several_keys(http: requests.Session, db: psycopg.Connection) -> None:
    expected = [
        row[0]
        for row in db.execute(
            "SELECT id FROM resorption.sites ORDER BY departement_code, declared_at DESC, id LIMIT 30"
        )
    ]
    body = http.get(
        "/collections/sites/items", params={"sortby": "+departement_code,-declared_at", "limit": 30}
    ).json()
    assert [f["id"] for f in body["features"]] == expected


def test_equality_filter_on_a_property(http: requests.Session, db: psycopg.Connection) -> None:
    body = http.get(
        "/collections/sites/items", params={"departement_code": "33", "resulttype": "hits"}
    ).json()
    assert body["numberMatched"] == count(db, "departement_code = '33'") > 0


def test_bbox_in_crs84(http: requests.Session, db: psycopg.Connection) -> None:
    # Gironde, roughly
    box = (-1.3, 44.2, 0.35, 45.6)
    expected = count(db, "ST_Intersects(location, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", box)
    body = http.get(
        "/collections/sites/items",
        params={"bbox": ",".join(map(str, box)), "resulttype": "hits"},
    ).json()
    assert body["numberMatched"] == expected > 0


def test_bbox_in_lambert93_is_densified(http: requests.Session, db: psycopg.Connection) -> None:
    """A Lambert-93 box's edges are curves in lon/lat: every site inside must come back."""
    box = (350000.0, 6400000.0, 480000.0, 6500000.0)
    expected = count(
        db, "ST_Intersects(ST_Transform(location, 2154), ST_MakeEnvelope(%s, %s, %s, %s, 2154))", box
    )
    body = http.get(
        "/collections/sites/items",
        params={
            "bbox": ",".join(map(str, box)),
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/2154",
            "resulttype": "hits",
        },
    ).json()
    assert body["numberMatched"] == expected > 0


def test_bbox_in_epsg4326_is_lat_lon(http: requests.Session, db: psycopg.Connection) -> None:
    expected = count(db, "ST_Intersects(location, ST_MakeEnvelope(-1.3, 44.2, 0.35, 45.6, 4326))")
    body = http.get(
        "/collections/sites/items",
        params={
            "bbox": "44.2,-1.3,45.6,0.35",
            "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
            "resulttype": "hits",
        },
    ).json()
    assert body["numberMatched"] == expected


@pytest.mark.parametrize(
    ("crs", "srid"),
    [
        ("http://www.opengis.net/def/crs/EPSG/0/2154", 2154),
        ("http://www.opengis.net/def/crs/EPSG/0/3857", 3857),
    ],
)
def test_output_crs_projected(http: requests.Session, crs: str, srid: int) -> None:
    plain = http.get("/collections/sites/items", params={"limit": 5, "departement_code": "33"}).json()
    projected = http.get(
        "/collections/sites/items", params={"limit": 5, "departement_code": "33", "crs": crs}
    )
    assert projected.headers["Content-Crs"] == f"<{crs}>"
    to_crs = Transformer.from_crs("OGC:CRS84", f"EPSG:{srid}", always_xy=True)
    for a, b in zip(plain["features"], projected.json()["features"], strict=True):
        x, y = to_crs.transform(*a["geometry"]["coordinates"])
        assert b["geometry"]["coordinates"] == pytest.approx([x, y], abs=0.05)
        assert "crs" not in b["geometry"]


@pytest.mark.parametrize(
    ("departement", "srid"), [("973", 2972), ("971", 5490), ("972", 5490), ("974", 2975), ("976", 4471)]
)
def test_output_crs_overseas(
    http: requests.Session, db: psycopg.Connection, departement: str, srid: int
) -> None:
    """A commune of each overseas département, in its own projected CRS, lands where PostGIS puts it."""
    code, xmin, ymin, xmax, ymax = db.execute(
        "SELECT code, ST_XMin(g), ST_YMin(g), ST_XMax(g), ST_YMax(g) FROM "
        "(SELECT code, ST_Transform(geom, %s) g FROM resorption.communes "
        " WHERE departement_code = %s ORDER BY code LIMIT 1) t",
        (srid, departement),
    ).fetchone()
    crs = f"http://www.opengis.net/def/crs/EPSG/0/{srid}"
    r = http.get(f"/collections/communes/items/{code}", params={"crs": crs})
    assert r.status_code == 200
    assert r.headers["Content-Crs"] == f"<{crs}>"
    points = [p for polygon in r.json()["geometry"]["coordinates"] for ring in polygon for p in ring]
    assert {round(x) for x, _ in points} >= {round(xmin), round(xmax)}
    for x, y in points:
        assert xmin - 0.01 <= x <= xmax + 0.01 and ymin - 0.01 <= y <= ymax + 0.01


def test_output_epsg4326_is_lat_lon(http: requests.Session) -> None:
    plain = http.get("/collections/sites/items", params={"limit": 1}).json()["features"][0]
    swapped = http.get(
        f"/collections/sites/items/{plain['id']}",
        params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
    ).json()
    lon, lat = plain["geometry"]["coordinates"]
    assert swapped["geometry"]["coordinates"] == [lat, lon]


def test_datetime_instant_returns_sites_existing_then(http: requests.Session, db: psycopg.Connection) -> None:
    """An instant reads the versions recorded by then (time travel, tests/test_history.py)."""
    expected = count(
        db,
        "valid @> TIMESTAMPTZ '2022-01-01T23:59:59.999999Z' AND operation <> 'delete' "
        "AND declared_at <= DATE '2022-01-01' AND (closed_at IS NULL OR closed_at >= DATE '2022-01-01')",
        table="sites_history",
    )
    body = http.get(
        "/collections/sites/items", params={"datetime": "2022-01-01", "resulttype": "hits"}
    ).json()
    assert body["numberMatched"] == expected > 0


def test_datetime_open_interval(http: requests.Session, db: psycopg.Connection) -> None:
    expected = count(db, "declared_at <= TIMESTAMPTZ '2020-06-30T00:00:00Z'")
    body = http.get(
        "/collections/sites/items", params={"datetime": "../2020-06-30T00:00:00Z", "resulttype": "hits"}
    ).json()
    assert body["numberMatched"] == expected > 0


def test_q_is_accent_insensitive_over_commune_names(http: requests.Session, db: psycopg.Connection) -> None:
    commune = db.execute(
        "SELECT c.name FROM resorption.sites s JOIN resorption.communes c ON c.code = s.commune_code "
        "WHERE c.name ~ '[éèê]' GROUP BY c.name ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    unaccented = db.execute("SELECT public.unaccent(%s)", (commune,)).fetchone()[0]
    expected = count(db, "search @@ plainto_tsquery('resorption.fr_unaccent', %s)", (commune,))
    for term in (commune, unaccented.lower()):
        body = http.get("/collections/sites/items", params={"q": term, "resulttype": "hits"}).json()
        assert body["numberMatched"] == expected > 0


def test_q_terms_are_alternatives(http: requests.Session, db: psycopg.Connection) -> None:
    one = http.get("/collections/communes/items", params={"q": "Bordeaux", "resulttype": "hits"}).json()
    two = http.get(
        "/collections/communes/items", params={"q": "Bordeaux,Toulouse", "resulttype": "hits"}
    ).json()
    assert two["numberMatched"] > one["numberMatched"] >= 1


@pytest.mark.parametrize("fmt", ["csv", "jsonld"])
def test_every_advertised_format_answers(http: requests.Session, fmt: str) -> None:
    collection = http.get("/collections/sites", params={"f": "json"}).json()
    hrefs = [link["href"] for link in collection["links"] if f"f={fmt}" in link["href"]]
    assert hrefs, f"no f={fmt} link advertised"
    for href in hrefs:
        r = http.get(href)
        assert r.status_code == 200, (href, r.text[:300])
    r = http.get(
        "/collections/sites/items",
        params={"f": fmt, "limit": 5, "filter": "T_AFTER(declared_at, DATE('2019-01-01'))"},
    )
    assert r.status_code == 200
    if fmt == "csv":
        assert r.headers["Content-Type"].startswith("text/csv")
        assert r.text.splitlines()[0].startswith("id,name")
        assert len(r.text.splitlines()) == 6


def test_html_items_page_has_a_title(http: requests.Session) -> None:
    page = http.get("/collections/sites/items", params={"f": "html"}).text
    assert "<h1>" in page.replace(" ", "").lower() or "<h1" in page
    assert "Sites (bidonvilles et grands squats)" in page


def test_one_item_as_json_ld(http: requests.Session) -> None:
    first = http.get("/collections/sites/items", params={"limit": 1}).json()["features"][0]
    r = http.get(f"/collections/sites/items/{first['id']}", params={"f": "jsonld"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/ld+json")
    assert "@context" in r.json()


@pytest.mark.parametrize(
    ("path", "crs"),
    [
        ("/collections/stats_regions/items/03", 4471),  # Guyane in Mayotte's UTM zone
        ("/collections/communes/items/97302", 4471),
        ("/collections/communes/items/97611", 2972),  # Mamoudzou in Guyane's UTM zone
    ],
)
def test_a_feature_outside_the_crs_domain_has_no_geometry(
    http: requests.Session, path: str, crs: int
) -> None:
    r = http.get(path, params={"crs": f"http://www.opengis.net/def/crs/EPSG/0/{crs}"})
    assert r.status_code == 200, r.text
    assert r.json()["geometry"] is None
    page = http.get(
        "/collections/departements/items",
        params={"crs": f"http://www.opengis.net/def/crs/EPSG/0/{crs}", "limit": 200},
    )
    assert page.status_code == 200
    geometries = [f["geometry"] for f in page.json()["features"]]
    assert any(g is None for g in geometries) and any(g is not None for g in geometries)
