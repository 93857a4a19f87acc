"""The served OpenAPI document: self-contained, valid, complete for our collections, read by QGIS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pygeoapi.openapi import validate_openapi_document

from resorption.api.openapi import external_refs
from resorption.catalog import load_catalog
from resorption.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "collections")
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Parameters of our items route, besides the equality filters.
STANDARD_ITEMS_PARAMETERS = {
    "f", "lang", "limit", "offset", "bbox", "bbox-crs", "crs", "skipGeometry", "properties",
    "sortby", "filter", "filter-lang", "filter-crs", "resulttype",
}  # fmt: skip


@pytest.fixture(scope="module")
def document(http: requests.Session) -> dict[str, Any]:
    """The OpenAPI document as served."""
    response = http.get("/openapi", params={"f": "json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OPENAPI_JSON
    return response.json()


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` under `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The target of a local reference (JSON pointer after `#`)."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, f"{ref} ne mène nulle part"
        node = node[token]
    return node


def parameters(document: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    """The operation's parameters, references resolved."""
    return [resolve(document, p["$ref"]) if "$ref" in p else p for p in operation.get("parameters", [])]


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation of the document."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_no_external_reference(document: dict[str, Any]) -> None:
    every = list(refs(document))
    assert every
    assert [r for r in every if not r.startswith("#/")] == []
    assert external_refs(document) == []
    assert not any("schemas.opengis.net" in r or "://" in r for r in every)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in set(refs(document)):
        resolve(document, ref)


def test_every_path_parameter_reference_resolves(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for parameter in parameters(document, operation):
            assert {"name", "in"} <= parameter.keys(), f"{method.upper()} {path}: {parameter}"
            if parameter["in"] == "path":
                assert f"{{{parameter['name']}}}" in path


def test_document_validates_against_the_openapi_schema(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.0")
    assert validate_openapi_document(document)


def test_parameters_are_unique_per_operation(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        keys = [(p["name"], p["in"]) for p in parameters(document, operation)]
        assert len(keys) == len(set(keys)), f"{method.upper()} {path} : paramètre en double"


def test_landing_page_links_to_the_json_document(http: requests.Session, document: dict) -> None:
    landing = http.get("/", params={"f": "json"}).json()
    links = [link for link in landing["links"] if link["rel"] == "service-desc"]
    # the OpenAPI document, and the AsyncAPI one of the changes (OGC API – Publish-Subscribe)
    assert sorted(link["type"] for link in links) == ["application/asyncapi+json", OPENAPI_JSON]
    links = [link for link in links if link["type"] == OPENAPI_JSON]
    response = http.get(links[0]["href"], headers={"Accept": OPENAPI_JSON})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OPENAPI_JSON
    assert response.json() == document


def test_limit_component_gives_qgis_its_page_size(document: dict[str, Any]) -> None:
    schema = document["components"]["parameters"]["limit"]["schema"]
    assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, 10000, 10)
    for collection in CATALOG:
        operation = document["paths"][f"/collections/{collection}/items"]["get"]
        assert {"$ref": "#/components/parameters/limit"} in operation["parameters"]


@pytest.mark.parametrize("collection", list(CATALOG.values()), ids=list(CATALOG))
def test_items_operation_declares_what_we_support(document: dict[str, Any], collection) -> None:
    operation = document["paths"][f"/collections/{collection.id}/items"]["get"]
    declared = {p["name"]: p for p in parameters(document, operation)}
    expected = set(STANDARD_ITEMS_PARAMETERS)
    if collection.temporal_start:
        expected.add("datetime")
    if collection.search_sql:
        expected.add("q")
    # One document for everyone: it lists the fields no sensitive group hides.
    readable = [f for f in collection.fields.values() if not f.group.sensitive]
    filters = {f.name for f in readable if f.filterable}
    assert set(declared) == expected | filters
    assert declared["properties"]["schema"]["items"]["enum"] == [f.name for f in readable]
    status = collection.fields.get("status")
    if status is not None and status.enum:
        assert declared["status"]["schema"]["enum"] == list(status.enum)


def test_our_parameter_descriptions_are_french(document: dict[str, Any]) -> None:
    for collection in CATALOG:
        operation = document["paths"][f"/collections/{collection}/items"]["get"]
        for parameter in parameters(document, operation):
            text = parameter["description"]
            assert not text.startswith(("The ", "Indicates", "Only features", "This option")), text
            assert any(w in text for w in (" les ", " le ", " la ", " des ", " du ", " de ")), text


def test_sensitive_fields_are_never_named(document: dict[str, Any]) -> None:
    text = str(document)
    for collection in CATALOG.values():
        for f in collection.fields.values():
            if f.group.sensitive:
                assert f"'{f.name}'" not in text, f"{collection.id}.{f.name} paraît dans OpenAPI"


def test_operations_of_our_collections_are_summarised_in_french(document: dict[str, Any]) -> None:
    for collection in CATALOG.values():
        title = collection.title.fr
        paths = document["paths"]
        assert paths[f"/collections/{collection.id}/items"]["get"]["summary"] == (
            f"Éléments de la collection « {title} »"
        )
        item = paths[f"/collections/{collection.id}/items/{{featureId}}"]["get"]
        assert item["summary"] == f"Un élément de la collection « {title} »"
        assert item["responses"]["200"] == {"$ref": "#/components/responses/Feature"}
        queryables = paths[f"/collections/{collection.id}/queryables"]["get"]
        assert queryables["responses"]["200"] == {"$ref": "#/components/responses/JsonSchema"}
