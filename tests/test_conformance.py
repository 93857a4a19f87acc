"""The OGC standards, requirement by requirement, as an outside conformance suite checks them.

Each test names in its docstring the requirement (or recommendation) URI it checks, so that a
failure says which clause of which standard we broke. The broader behaviour of each part has
its own module (test_items, test_filters, test_editing, test_tiles, test_processes); these are
the clauses that a client or a validator reads literally.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.fix_users import TestUser

FEATURES_1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0"
FEATURES_3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0"
CQL2 = "http://www.opengis.net/spec/cql2/1.0"
# A filter per CQL2 conformance class we declare: the class is declared, so the filter works.
CQL2_EXAMPLES = {
    "cql2-text": "status = 'open'",
    "basic-cql2": "status = 'open' AND NOT (population_total < 10) AND name IS NOT NULL",
    "advanced-comparison-operators": "name LIKE 'C%' OR population_total BETWEEN 10 AND 50 OR status IN ('open')",
    "case-insensitive-comparison": "CASEI(name) LIKE CASEI('c%')",
    "accent-insensitive-comparison": "ACCENTI(name) LIKE ACCENTI('é%')",
    "basic-spatial-functions": "S_INTERSECTS(geometry, BBOX(-0.8, 44.7, -0.4, 45.0))",
    "basic-spatial-functions-plus": "S_INTERSECTS(geometry, POLYGON((-0.8 44.7, -0.4 44.7, -0.4 45, -0.8 44.7)))",
    "spatial-functions": "S_WITHIN(geometry, POLYGON((-0.8 44.7, -0.4 44.7, -0.4 45, -0.8 44.7)))",
    "temporal-functions": "T_AFTER(updated_at, TIMESTAMP('2020-01-01T00:00:00Z'))",
    "property-property": "population_total >= population_minors",
    "functions": "S_DWITHIN(geometry, POINT(-0.57 44.84), 10, kilometers)",
}


def media_type(response: requests.Response) -> str:
    return response.headers["Content-Type"].split(";")[0].strip()


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for token in node["$ref"][2:].split("/"):
            target = target[token]
        node = target
    return node


@pytest.fixture(scope="module")
def openapi(http: requests.Session) -> dict[str, Any]:
    return http.get("/openapi", params={"f": "json"}).json()


# -- Part 1: core ---------------------------------------------------------------------------


def test_unknown_query_parameter_is_refused(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/req/core/query-param-unknown

    « The server SHALL respond with a response with the status code 400, if the request URI
    includes a query parameter that is not specified in the API definition. »
    """
    r = http.get("/collections/sites/items", params={"ooga": "booga"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "InvalidParameterValue"
    assert "« ooga »" in body["description"] and "queryables" in body["description"]
    # A misspelt standard parameter is not silently ignored either.
    assert http.get("/collections/sites/items", params={"bbbox": "0,40,5,45"}).status_code == 400


def test_equality_on_a_catalog_property_stays(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/req/core/fc-filters

    Parameters named after a queryable are filters (§7.15.4, and Part 3's
    /req/queryables-query-parameters): they are specified in the API definition, not unknown.
    """
    r = http.get("/collections/sites/items", params={"status": "open", "limit": 5})
    assert r.status_code == 200
    assert {f["properties"]["status"] for f in r.json()["features"]} == {"open"}
    # …and the keyset cursor of our own `next` links is part of the definition too.
    page = http.get("/collections/sites/items", params={"limit": 2}).json()
    following = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert http.get(following).status_code == 200


def test_hidden_property_is_refused_like_an_unknown_one(base_url: str, users: dict[str, TestUser]) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/req/core/query-param-unknown

    For a caller who may not read the owner group, `owner_name` is a parameter the API does
    not offer them: the same 400, with the same words, as a name that exists nowhere.
    """
    observer = users["external-observer-departement-33"]

    def refusal(name: str) -> str:
        r = requests.get(
            f"{base_url}/collections/sites/items", params={name: "x"}, headers=observer.headers, timeout=30
        )
        assert r.status_code == 400
        return r.json()["description"].replace(name, "NAME")

    assert refusal("owner_name") == refusal("nom_inexistant")


def test_bbox_parameter_is_the_standard_fragment(openapi: dict[str, Any]) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/req/core/fc-bbox-definition

    The bbox parameter SHALL have the characteristics of the standard's fragment: an array of
    numbers, minItems 4, maxItems 6, style form, explode false.
    """
    bbox = openapi["components"]["parameters"]["bbox"]
    assert bbox["in"] == "query" and bbox["required"] is False
    assert bbox["style"] == "form" and bbox["explode"] is False
    schema = bbox["schema"]
    assert schema["type"] == "array" and schema["items"] == {"type": "number"}
    assert (schema["minItems"], schema["maxItems"]) == (4, 6)
    assert "oneOf" not in schema
    items = openapi["paths"]["/collections/sites/items"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/bbox"} in items


def test_five_bbox_numbers_are_refused(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/req/core/fc-bbox-response

    The fragment allows 4 to 6 items; a box is 4 or 6 numbers, so 5 is a 400 that says so.
    """
    r = http.get("/collections/sites/items", params={"bbox": "1,2,3,4,5"})
    assert r.status_code == 400 and "bbox" in r.json()["description"]


def test_items_carry_link_headers(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/rec/core/link-header

    « Links included in payload of responses SHOULD also be included as Link headers in the
    HTTP response according to RFC 8288, Clause 3. » (self, alternate, next, prev)
    """
    r = http.get("/collections/sites/items", params={"limit": 3, "offset": 3})
    header = r.headers["Link"]
    parsed = {
        m["rel"]: m["href"]
        for m in re.finditer(r'<(?P<href>[^>]*)>; rel="(?P<rel>[^"]+)"; type="[^"]+"', header)
    }
    body = {link["rel"]: link["href"] for link in r.json()["links"] if link["rel"] in parsed}
    assert set(parsed) == {"self", "alternate", "next", "prev"}
    assert parsed == body
    # The header's next link is a page like any other.
    assert http.get(parsed["next"]).json()["numberReturned"] == 3
    # A single item too (self and alternate).
    item = r.json()["features"][0]["id"]
    single = http.get(f"/collections/sites/items/{item}")
    assert 'rel="self"' in single.headers["Link"] and 'rel="alternate"' in single.headers["Link"]


@pytest.mark.parametrize(
    ("path", "operation"), [("/", "get"), ("/collections", "get"), ("/conformance", "get")]
)
@pytest.mark.parametrize("fmt", ["json", "html", "jsonld"])
def test_served_content_types_are_declared(
    http: requests.Session, openapi: dict[str, Any], path: str, operation: str, fmt: str
) -> None:
    """http://www.opengis.net/spec/ogcapi-features-1/1.0/req/oas30/completeness

    « The OpenAPI definition SHALL specify for each operation all HTTP Status Codes and
    Response Objects that the server uses in responses », their media types included.
    """
    r = http.get(path, params={"f": fmt})
    assert r.status_code == 200
    response = resolve(openapi, openapi["paths"][path][operation]["responses"]["200"])
    assert media_type(r) in response["content"], (path, fmt, list(response["content"]))


# -- Part 3: filtering, and CQL2 --------------------------------------------------------------


def test_conformance_declares_filtering(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter

    and …/conf/features-filter: declared, since clients read /conformance before they send a
    `filter` (Part 3, §A.1: the server declares the classes it implements).
    """
    declared = set(http.get("/conformance").json()["conformsTo"])
    assert {f"{FEATURES_3}/conf/filter", f"{FEATURES_3}/conf/features-filter"} <= declared
    assert {f"{FEATURES_3}/conf/queryables", f"{FEATURES_3}/conf/queryables-query-parameters"} <= declared
    assert f"{FEATURES_1}/conf/core" in declared and f"{FEATURES_1}/conf/oas30" in declared


@pytest.mark.parametrize("conformance_class", sorted(CQL2_EXAMPLES))
def test_declared_cql2_class_works(http: requests.Session, conformance_class: str) -> None:
    """http://www.opengis.net/spec/ogcapi-features-3/1.0/req/features-filter/filter-param

    Each CQL2 conformance class we declare (http://www.opengis.net/spec/cql2/1.0/conf/…) is
    one whose operators the `filter` parameter accepts.
    """
    assert f"{CQL2}/conf/{conformance_class}" in http.get("/conformance").json()["conformsTo"]
    r = http.get("/collections/sites/items", params={"filter": CQL2_EXAMPLES[conformance_class], "limit": 1})
    assert r.status_code == 200, r.text


def test_cql2_json_is_declared_and_accepted(http: requests.Session) -> None:
    """http://www.opengis.net/spec/cql2/1.0/req/cql2-json

    and Part 3's /req/filter/filter-lang-param: `filter-lang=cql2-json` in the query string.
    """
    assert f"{CQL2}/conf/cql2-json" in http.get("/conformance").json()["conformsTo"]
    r = http.get(
        "/collections/sites/items",
        params={
            "filter": '{"op": "=", "args": [{"property": "status"}, "open"]}',
            "filter-lang": "cql2-json",
        },
    )
    assert r.status_code == 200, r.text
    assert {f["properties"]["status"] for f in r.json()["features"]} == {"open"}


def test_unknown_filter_lang_is_refused(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-3/1.0/req/filter/filter-lang-param

    Only the filter languages the server supports may be given; another is a 400.
    """
    r = http.get("/collections/sites/items", params={"filter": "status = 'open'", "filter-lang": "ecql"})
    assert r.status_code == 400


# -- Part 2: CRS --------------------------------------------------------------------------------


def test_content_crs_header(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-2/1.0/req/crs/ogc-crs-header

    « If a server … returns features in a CRS other than CRS84, it SHALL include the
    Content-Crs header with the URI of the CRS »; we send it with CRS84 too.
    """
    lambert = "http://www.opengis.net/def/crs/EPSG/0/2154"
    r = http.get("/collections/sites/items", params={"crs": lambert, "limit": 1})
    assert r.headers["Content-Crs"] == f"<{lambert}>"


def test_unknown_crs_is_refused(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-features-2/1.0/req/crs/fc-md-crs-list and
    …/req/crs/fc-crs-valid-value: a `crs` not in the collection's list is a 400."""
    listed = http.get("/collections/sites").json()["crs"]
    unknown = "http://www.opengis.net/def/crs/EPSG/0/32631"
    assert unknown not in listed
    assert http.get("/collections/sites/items", params={"crs": unknown}).status_code == 400


# -- Tiles and Processes ---------------------------------------------------------------------------


def test_tile_response_is_the_declared_media_type(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-tiles-1/1.0/req/core/tc-success

    A tile request answers 200 with the tile in a media type the tileset declares (here
    Mapbox Vector Tiles, `application/vnd.mapbox-vector-tile`), or 204 for an empty tile.
    """
    declared = {
        link["type"]
        for link in http.get("/collections/departements/tiles/WebMercatorQuad").json()["links"]
        if link["rel"] == "item"
    }
    r = http.get("/collections/departements/tiles/WebMercatorQuad/6/23/31")
    assert r.status_code == 200 and media_type(r) in declared


def test_conformance_declares_tiles_and_processes(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-tiles-1/1.0/req/core/conformance-success and
    http://www.opengis.net/spec/ogcapi-processes-1/1.0/req/core/conformance-success: the
    classes of the parts we serve are declared."""
    declared = set(http.get("/conformance").json()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in declared
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in declared


def test_process_list(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-processes-1/1.0/req/core/process-list-success

    GET /processes answers 200 with `processes`, each a summary with `id`, `version` and links.
    """
    r = http.get("/processes", params={"f": "json"})
    assert r.status_code == 200
    processes = r.json()["processes"]
    assert processes
    for summary in processes:
        assert summary["id"] and summary["version"] and isinstance(summary["links"], list)


def test_unknown_job_is_404(http: requests.Session) -> None:
    """http://www.opengis.net/spec/ogcapi-processes-1/1.0/req/core/job-exception-no-such-job

    A job that does not exist (or is someone else's) is a 404.
    """
    assert http.get("/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
