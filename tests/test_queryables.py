"""Queryables (OGC API Features Part 3): a JSON Schema 2020-12 from the catalog, in French first."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import requests

from resorption.catalog import Collection, load_catalog
from resorption.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "collections")
COLLECTIONS = pytest.mark.parametrize("collection", list(CATALOG.values()), ids=list(CATALOG))
GEOMETRY_FORMATS = {"Point": "geometry-point", "MultiPolygon": "geometry-multipolygon"}


def queryables(http: requests.Session, collection: Collection, **params: str) -> dict[str, Any]:
    """The queryables document of `collection`, checked for its media type."""
    response = http.get(f"/collections/{collection.id}/queryables", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/schema+json"
    return response.json()


def filterable(collection: Collection) -> list:
    """The fields the national administrator (`http`) may name in a filter, in catalog order."""
    return [f for f in collection.fields.values() if f.filterable]


@COLLECTIONS
def test_document_is_json_schema_2020_12(http: requests.Session, base_url: str, collection) -> None:
    document = queryables(http, collection)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"{base_url}/collections/{collection.id}/queryables"
    assert document["type"] == "object"
    assert document["additionalProperties"] is False
    jsonschema.Draft202012Validator.check_schema(document)


@COLLECTIONS
def test_french_titles_by_default(http: requests.Session, collection) -> None:
    document = queryables(http, collection)
    assert document["title"] == collection.title.fr
    properties = document["properties"]
    assert list(properties) == ["geometry", *(f.name for f in filterable(collection))]
    assert properties["geometry"]["title"] == "Géométrie"
    for f in filterable(collection):
        assert properties[f.name]["title"] == f.label.fr, f.name
        assert properties[f.name]["type"] == f.type, f.name


@COLLECTIONS
def test_english_with_lang_en(http: requests.Session, collection) -> None:
    response = http.get(f"/collections/{collection.id}/queryables", params={"lang": "en"})
    assert response.headers["Content-Language"].startswith("en")
    document = response.json()
    assert document["title"] == collection.title.en
    assert document["properties"]["geometry"]["title"] == "Geometry"
    for f in filterable(collection):
        assert document["properties"][f.name]["title"] == f.label.en, f.name


@COLLECTIONS
def test_enum_values_and_labels_are_the_catalogs(http: requests.Session, collection) -> None:
    properties = queryables(http, collection)["properties"]
    enums = [f for f in filterable(collection) if f.enum]
    for f in enums:
        schema = properties[f.name]
        values = schema["items"]["enum"] if f.type == "array" else schema["enum"]
        assert values == list(f.enum), f.name
        assert schema["x-enum-labels"] == dict(f.enum), f.name


def test_sites_have_enumerated_properties(http: requests.Session) -> None:
    status = queryables(http, CATALOG["sites"])["properties"]["status"]
    assert status["enum"][0] == "open"
    assert status["x-enum-labels"]["open"] == "Existant"


@COLLECTIONS
def test_geometry_and_roles(http: requests.Session, collection) -> None:
    properties = queryables(http, collection)["properties"]
    geometry = properties["geometry"]
    assert geometry["format"] == GEOMETRY_FORMATS[collection.geometry_type]
    assert geometry["x-ogc-role"] == "primary-geometry"
    roles = {name: p["x-ogc-role"] for name, p in properties.items() if "x-ogc-role" in p}
    expected = {"geometry": "primary-geometry"}
    if collection.id_field in properties:
        expected[collection.id_field] = "id"
    if collection.temporal_start:
        expected[collection.temporal_start] = (
            "primary-interval-start" if collection.temporal_end else "primary-instant"
        )
    if collection.temporal_end:
        expected[collection.temporal_end] = "primary-interval-end"
    assert roles == expected


def test_territories_are_identified_by_their_insee_code(http: requests.Session) -> None:
    for name in ("regions", "departements", "communes"):
        assert queryables(http, CATALOG[name])["properties"]["code"]["x-ogc-role"] == "id"


def test_sites_are_a_period_from_declaration_to_closing(http: requests.Session) -> None:
    properties = queryables(http, CATALOG["sites"])["properties"]
    assert properties["declared_at"]["x-ogc-role"] == "primary-interval-start"
    assert properties["closed_at"]["x-ogc-role"] == "primary-interval-end"


def test_only_filterable_and_readable_fields(http: requests.Session, base_url: str, users: dict) -> None:
    sites = CATALOG["sites"]
    properties = queryables(http, sites)["properties"]
    assert "closing_solutions" not in properties  # not filterable
    assert "owner_name" in properties  # the national administrator reads owners
    operator = requests.get(
        f"{base_url}/collections/sites/queryables",
        headers=users["operator-departement-33"].headers,
        timeout=30,
    ).json()["properties"]
    for f in sites.fields.values():
        if not f.filterable or f.group.sensitive:
            # A forbidden property is absent exactly like an unknown one.
            assert f.name not in operator, f.name


@COLLECTIONS
def test_every_queryable_is_accepted_in_a_filter(http: requests.Session, collection) -> None:
    properties = queryables(http, collection)["properties"]
    for name in properties:
        condition = (
            "S_INTERSECTS(geometry, BBOX(-180, -90, 180, 90))" if name == "geometry" else f"{name} IS NULL"
        )
        response = http.get(
            f"/collections/{collection.id}/items",
            params={"filter": condition, "limit": "1", "skipGeometry": "true"},
        )
        assert response.status_code == 200, f"{name}: {response.text}"


def test_unknown_collection_is_404_in_french(http: requests.Session) -> None:
    response = http.get("/collections/inconnue/queryables")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "NotFound"
    assert body["description"] == "La collection « inconnue » n'existe pas."


def test_unsupported_format_is_400_in_french(http: requests.Session) -> None:
    response = http.get("/collections/sites/queryables", params={"f": "xml"})
    assert response.status_code == 400
    assert "f=json ou f=html" in response.json()["description"]


def test_html_is_pygeoapis_page(http: requests.Session) -> None:
    response = http.get("/collections/sites/queryables", params={"f": "html"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "declared_at" in response.text
