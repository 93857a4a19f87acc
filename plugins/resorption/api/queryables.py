"""The queryables face: `/collections/{id}/queryables` as a JSON Schema from the catalog.

pygeoapi titles every queryable with its bare name, drops our labels and enum
labels and declares an older JSON Schema draft. OGC API Features Part 3 asks
for a JSON Schema 2020-12 document whose properties are the ones a filter may
name; ours come from the catalog, limited to what the caller may read, with
French titles (English with `lang=en`) and the OGC roles (`x-ogc-role`) of
the geometry, the identifier and the primary temporal properties. HTML still
comes from pygeoapi's template.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from flask import Request, Response
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_HTML, F_JSON

from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.errors import InvalidParameter, NotFound

JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_JSON = "application/schema+json"
# OGC API Features Part 3 names a geometry type by a `format` keyword.
GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "MultiPoint": "geometry-multipoint",
    "LineString": "geometry-linestring",
    "MultiLineString": "geometry-multilinestring",
    "Polygon": "geometry-polygon",
    "MultiPolygon": "geometry-multipolygon",
}
GEOMETRY_TITLE = {"fr": "Géométrie", "en": "Geometry"}


def queryables(
    api: API, request: Request, catalog: Mapping[str, Collection], collection_id: str
) -> Response | None:
    """GET /collections/{id}/queryables in JSON; None lets pygeoapi answer (HTML, other providers)."""
    collection = catalog.get(collection_id)
    if collection is None:
        if collection_id in api.config.get("resources", {}):
            return None
        raise NotFound(f"La collection « {collection_id} » n'existe pas.")
    api_request = APIRequest.from_flask(request, api.locales)
    if api_request.format == F_HTML:
        return None
    if api_request.format not in (None, F_JSON):
        raise InvalidParameter(
            f"Format « {api_request.format} » non pris en charge ici : utilisez f=json ou f=html."
        )
    language = api_request.locale.language
    document = queryables_schema(
        collection, language, f"{api.get_collections_url()}/{collection.id}/queryables"
    )
    headers = api_request.get_response_headers(**api.api_headers)
    headers["Content-Type"] = SCHEMA_JSON
    return Response(orjson.dumps(document), status=HTTPStatus.OK, headers=headers)


def queryables_schema(collection: Collection, language: str, uri: str) -> dict[str, Any]:
    """The queryables of `collection` for the current principal, titled in `language`."""
    properties: dict[str, Any] = {
        "geometry": {
            "title": GEOMETRY_TITLE["en" if language.startswith("en") else "fr"],
            "format": GEOMETRY_FORMATS[collection.geometry_type],
            "x-ogc-role": "primary-geometry",
        }
    }
    # The end of a period makes its start an interval start rather than an instant.
    roles = {collection.id_field: "id"}
    if collection.temporal_start:
        roles[collection.temporal_start] = (
            "primary-interval-start" if collection.temporal_end else "primary-instant"
        )
    if collection.temporal_end:
        roles[collection.temporal_end] = "primary-interval-end"
    # A property the caller may not read is absent, exactly like an unknown one.
    for f in Caller.of_request().readable_fields(collection):
        if not f.filterable:
            continue
        schema = f.json_schema(language)
        if f.name in roles:
            schema["x-ogc-role"] = roles[f.name]
        properties[f.name] = schema
    return {
        "$schema": JSON_SCHEMA_2020_12,
        "$id": uri,
        "type": "object",
        "title": collection.title.get(language),
        "description": collection.description.get(language),
        "properties": properties,
        # A filter naming anything else is refused (400).
        "additionalProperties": False,
    }
