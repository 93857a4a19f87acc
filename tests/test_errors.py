"""Client mistakes get a 400 (or 404) with an OGC exception that says, in French, what was wrong."""

from __future__ import annotations

import pytest
import requests

# (query parameters, words the message must contain)
BAD_REQUESTS = [
    ({"limit": "abc"}, ["limit", "abc"]),
    ({"limit": "0"}, ["limit"]),
    ({"limit": "-5"}, ["limit"]),
    ({"limit": "1.5"}, ["limit"]),
    ({"offset": "-1"}, ["offset"]),
    ({"offset": "deux"}, ["offset", "deux"]),
    ({"bbox": "1,2,3"}, ["bbox"]),
    ({"bbox": "a,b,c,d"}, ["bbox"]),
    ({"bbox": "10,50,0,40"}, ["bbox", "coin"]),
    ({"bbox": "-200,40,10,50"}, ["longitude"]),
    ({"bbox": "0,-95,10,50"}, ["latitude"]),
    ({"bbox": "nan,1,2,3"}, ["bbox"]),
    ({"bbox": "0,40,10,50", "bbox-crs": "EPSG:9999"}, ["EPSG:9999", "bbox-crs"]),
    ({"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/2154"}, ["bbox-crs", "sans bbox"]),
    ({"crs": "EPSG:27572"}, ["EPSG:27572", "crs"]),
    ({"crs": "n'importe quoi"}, ["crs"]),
    ({"filter-crs": "EPSG:1"}, ["filter-crs"]),
    ({"datetime": "hier"}, ["datetime", "hier"]),
    ({"datetime": "2022-13-45"}, ["datetime"]),
    ({"datetime": "2023-01-01/2022-01-01"}, ["datetime", "début"]),
    ({"datetime": "../.."}, []),
    ({"datetime": ".."}, ["datetime"]),
    ({"sortby": "inconnue"}, ["inconnue", "n'existe pas"]),
    ({"sortby": "-social_origins"}, ["social_origins"]),
    ({"properties": "name,nope"}, ["nope", "n'existe pas"]),
    ({"skipGeometry": "peut-être"}, ["skipGeometry"]),
    ({"resulttype": "all"}, ["resulttype"]),
    ({"filter": "population_total >"}, ["CQL2", "mal formé"]),
    ({"filter": "nope = 1"}, ["nope", "n'existe pas"]),
    ({"filter": "status = 'ouvert'"}, ["ouvert", "valeurs possibles"]),
    ({"filter": "population_total = 'beaucoup'"}, ["compare"]),
    ({"filter": "declared_at > 'hier'"}, ["hier", "date"]),
    ({"filter": "S_INTERSECTS(population_total, BBOX(0,0,1,1))"}, ["géométrie"]),
    ({"filter": "name LIKE 3"}, ["LIKE"]),
    ({"filter": "population_total"}, ["condition"]),
    ({"filter": '{"op": "=", "args": [{"property": "status"}]}', "filter-lang": "cql2-json"}, ["="]),
    ({"filter": "{not json", "filter-lang": "cql2-json"}, ["CQL2"]),
    ({"filter": "status = 'open'", "filter-lang": "cql-text"}, ["filter-lang", "cql-text"]),
    ({"filter": "FOO(name) = 1"}, ["FOO"]),
    ({"status": "ouvert"}, ["ouvert", "status"]),
    ({"population_total": "beaucoup"}, ["population_total", "entier"]),
    ({"declared_at": "hier"}, ["declared_at", "date"]),
    ({"f": "xlsx"}, ["xlsx"]),
]


@pytest.mark.parametrize(("params", "words"), BAD_REQUESTS, ids=[str(p) for p, _ in BAD_REQUESTS])
def test_bad_parameter_is_400_with_a_clear_message(
    http: requests.Session, params: dict[str, str], words: list[str]
) -> None:
    r = http.get("/collections/sites/items", params=params)
    if params.get("datetime") == "../..":
        assert r.status_code == 200  # an interval open on both ends is everything
        return
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["code"] == "InvalidParameterValue"
    for word in words:
        assert word.lower() in body["description"].lower(), body["description"]


def test_single_item_bad_crs_is_400(http: requests.Session) -> None:
    r = http.get("/collections/sites/items/1", params={"crs": "EPSG:27572"})
    assert r.status_code == 400
    assert "EPSG:27572" in r.json()["description"]


def test_limit_above_maximum_is_reduced(http: requests.Session) -> None:
    body = http.get("/collections/sites/items", params={"limit": "50000", "skipGeometry": "true"}).json()
    assert body["numberReturned"] <= 10000


def test_unknown_route_is_a_french_ogc_404(http: requests.Session) -> None:
    r = http.get("/collections/sites/nothing-here")
    assert r.status_code == 404
    assert r.json()["code"] == "NotFound"


@pytest.mark.parametrize(
    "path",
    [
        "/collections/sites/items?name=a%00",
        "/collections/sites/items?q=a%00b",
        "/collections/sites/items?filter=name%3D%27a%00b%27",
        "/collections/regions/items/1%00",
    ],
)
def test_nul_bytes_are_refused(http: requests.Session, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 400
    assert "nuls" in r.json()["description"]


@pytest.mark.parametrize(
    "params",
    [
        {"bbox": "-1e16,-1e16,1e16,1e16", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/2975"},
        {
            "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/2975",
            "filter": "S_INTERSECTS(location, POINT(10000000000000000 10000000000000000))",
        },
        {
            "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/2972",
            "filter": "S_INTERSECTS(geometry, BBOX(0, 0, 90000000, 90000000))",
        },
    ],
)
def test_coordinates_outside_a_projection_are_400(http: requests.Session, params: dict) -> None:
    r = http.get("/collections/sites/items", params=params)
    assert r.status_code == 400, r.text
    assert "sort du domaine" in r.json()["description"]


def test_post_cql2_json_filter(http: requests.Session) -> None:
    body = {"op": "=", "args": [{"property": "status"}, "open"]}
    r = http.post("/collections/sites/items?resulttype=hits", json=body)
    assert r.status_code == 200, r.text
    get = http.get("/collections/sites/items", params={"resulttype": "hits", "status": "open"}).json()
    assert r.json()["numberMatched"] == get["numberMatched"]


@pytest.mark.parametrize(
    ("headers", "data"),
    [({}, b""), ({"Content-Type": "application/json"}, b"\xff\xfe"), ({"Content-Type": "text/plain"}, b"x")],
)
def test_post_without_a_cql2_body_is_a_client_error(
    http: requests.Session, headers: dict, data: bytes
) -> None:
    r = http.post("/collections/sites/items", headers=headers, data=data)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["description"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_territories_are_not_writable(http: requests.Session, method: str) -> None:
    r = http.request(method, "/collections/departements/items/33", json={})
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]


def test_options_lists_the_methods(http: requests.Session) -> None:
    r = http.options("/collections/sites/items")
    assert r.status_code == 204
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_an_empty_execution_body_is_told_in_french(http: requests.Session) -> None:
    """pygeoapi would answer an English "missing request data"; the client learns what to send."""
    r = http.post("/processes/close-site/execution", data=b"", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["description"].startswith("Le corps de la requête est vide")
