"""The OpenAPI document we serve: pygeoapi's, made self-contained and completed from the catalog.

pygeoapi's generator points its responses, parameters and schemas at
schemas.opengis.net and raw GitHub files. Offline clients, validators and
schemathesis cannot follow them, so the document is bundled: the OGC
components it uses are copied from `ogc_schemas/` (vendored, unchanged) into
`components`, every other external reference is replaced by a local
definition of ours, and each `$ref` is rewritten to `#/components/...`.

The operations of our collections are rewritten from the catalog, with the
parameters our features route really accepts and their descriptions in
French. The document describes what an anonymous caller may use: a field
outside the anonymous principal's reach is never named here.

Built once at start-up; nothing here runs per request.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import yaml
from pygeoapi.openapi import get_oas

from resorption.api import events, map_styles, opendata, tiles
from resorption.catalog import Collection, Field
from resorption.crs import CRS84, URIS
from resorption.errors import ConfigurationError
from resorption.params import DEFAULT_LIMIT, MAX_LIMIT, RESERVED

OGC_SCHEMAS = files("resorption") / "ogc_schemas"
OGC_FEATURES_1 = "ogcapi-features-1.yaml"
FEATURE_PROVIDER = "resorption.providers.features.FeatureProvider"
GEOJSON = "application/geo+json"
SCHEMA_JSON = "application/schema+json"
JSONLD = "application/ld+json"

# External documents pygeoapi refers to that have no vendored copy, and the
# local component standing for each (matched on the end of the address).
LOCAL_EQUIVALENTS = {
    # The processes exception has other members (type, title, status…); our
    # errors carry code and description, as the Features exception says.
    "ogcapi/processes/part1/1.0/openapi/schemas/exception.yaml": "#/components/schemas/exception",
    "ogcapi-tiles-1.yaml#/components/schemas/link": "#/components/schemas/link",
    # OGC API Processes (our resorption workflow): the vendored Features responses, or ours.
    "ogcapi/processes/part1/1.0/openapi/responses/NotFound.yaml": "#/components/responses/NotFound",
    "ogcapi/processes/part1/1.0/openapi/responses/ServerError.yaml": "#/components/responses/ServerError",
    "ogcapi/processes/part1/1.0/openapi/responses/ProcessList.yaml": "#/components/responses/ProcessList",
    "ogcapi/processes/part1/1.0/openapi/responses/ExecuteAsync.yaml": "#/components/responses/ExecuteAsync",
    "ogcapi/processes/part1/1.0/openapi/schemas/execute.yaml": "#/components/schemas/execute",
    "cql2/1.0/cql2.json": "#/components/schemas/cql2Expression",
    "core/openapi/parameters/sortby.yaml": "#/components/parameters/sortby",
    "core/openapi/parameters/q.yaml": "#/components/parameters/q",
    "geojson.org/schema/Geometry.json": "#/components/schemas/geometryGeoJSON",
}

# French summaries of pygeoapi's server-wide operations.
SUMMARIES = {
    "getLandingPage": "Page d'accueil de l'API",
    "getOpenapi": "Ce document (définition OpenAPI de l'API)",
    "getConformanceDeclaration": "Classes de conformité OGC mises en œuvre",
    "getCollections": "Liste des collections",
}


# -- entry point ---------------------------------------------------------------


def build_openapi(config: dict[str, Any], catalog: Mapping[str, Collection]) -> dict[str, Any]:
    """pygeoapi's OpenAPI document for `config`, self-contained and completed from `catalog`."""
    document = get_oas(copy.deepcopy(config), fail_on_invalid_collection=True)
    components = document.setdefault("components", {})
    for kind, definitions in _our_components().items():
        components.setdefault(kind, {}).update(definitions)

    for name, resource in config.get("resources", {}).items():
        for provider in resource.get("providers", []):
            if provider.get("name") == FEATURE_PROVIDER and provider.get("data") in catalog:
                _rewrite_collection(document, name, catalog[provider["data"]])

    # Vector tiles (OGC API Tiles): our own routes, unknown to pygeoapi's generator.
    document["paths"].update(tiles.openapi_paths())
    # TileJSON, MapLibre styles and the open-data catalogue and files: ours too.
    document["paths"].update(map_styles.openapi_paths())
    document["paths"].update(opendata.openapi_paths())
    # The streams of changes (Server-Sent Events).
    document["paths"].update(events.openapi_paths())
    _server_operations(document)
    _bundle(document)
    _declare_server_media_types(document)
    return document


def external_refs(document: Any) -> list[str]:
    """Every `$ref` of `document` that points outside it."""
    return [ref for ref in _refs(document) if not ref.startswith("#")]


# -- components of our own -----------------------------------------------------


def _our_components() -> dict[str, dict[str, Any]]:
    """Parameters, schemas and responses we define ourselves, in French."""
    # Our items route applies these bounds (resorption.params), whatever pygeoapi's configuration says.
    maximum, default = MAX_LIMIT, DEFAULT_LIMIT
    crs_list = ", ".join(URIS)
    parameters = {
        # QGIS (3.22 and later) reads its page size from this very component.
        "limit": _query(
            "limit",
            f"Nombre maximal d'éléments par page : de 1 à {maximum}, {default} par défaut. "
            f"Une valeur plus grande que {maximum} est ramenée à {maximum}.",
            {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        ),
        "offset": _query(
            "offset",
            "Rang du premier élément renvoyé (0 pour le premier) ; les liens `next` et `prev` "
            "de chaque page le renseignent.",
            {"type": "integer", "minimum": 0, "default": 0},
        ),
        "bbox": _query(
            "bbox",
            "Ne garde que les éléments dont la géométrie intersecte ce rectangle : "
            "xmin,ymin,xmax,ymax (ou 6 nombres avec l'altitude), en longitude/latitude WGS 84 "
            "(CRS84) sauf si `bbox-crs` indique un autre système.",
            # The standard's fragment (OGC 17-069r4, parameters/bbox.yaml), which validators and
            # generated clients look for; 5 numbers are refused by the route with a clear 400.
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
        ),
        "bbox-crs": _query(
            "bbox-crs",
            f"Système de coordonnées de `bbox` (CRS84 par défaut). Systèmes disponibles : {crs_list}.",
            {"type": "string", "format": "uri", "enum": list(URIS)},
        ),
        "crs": _query(
            "crs",
            f"Système de coordonnées des géométries renvoyées (CRS84 par défaut). "
            f"Systèmes disponibles : {crs_list}.",
            {"type": "string", "format": "uri", "enum": list(URIS), "default": CRS84},
        ),
        "skipGeometry": _query(
            "skipGeometry",
            "`true` pour renvoyer les éléments sans leur géométrie.",
            {"type": "boolean", "default": False},
        ),
        "datetime": _query(
            "datetime",
            "Ne garde que les éléments dont la période intersecte cet instant ou cet intervalle "
            "(RFC 3339) : `2024-05-01`, `2024-05-01T12:00:00Z`, `2024-01-01/2024-06-30`, "
            "`2024-01-01/..` ou `../2024-06-30`.",
            {"type": "string"},
        ),
        "q": _query(
            "q",
            "Recherche plein texte (en français, sans tenir compte des accents) ; des termes "
            "séparés par des virgules sont des alternatives.",
            {"type": "string"},
        ),
        "filter": _query(
            "filter",
            "Expression CQL2 (OGC 21-065r2) en texte (`status = 'open' AND population_total > "
            "50`) ou en JSON. Les propriétés permises sont celles des « queryables » de la "
            "collection. Distance en mètres sur l'ellipsoïde : `S_DWITHIN(geometry, POINT(-0.57 "
            "44.84), 200, 'meters')` (unités : meters, km).",
            {"type": "string"},
        ),
        "filter-lang": _query(
            "filter-lang",
            "Langage de `filter` : cql2-text (par défaut) ou cql2-json.",
            {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"},
        ),
        "filter-crs": _query(
            "filter-crs",
            f"Système de coordonnées des géométries écrites dans `filter` (CRS84 par défaut). "
            f"Systèmes disponibles : {crs_list}.",
            {"type": "string", "format": "uri", "enum": list(URIS), "default": CRS84},
        ),
        "resulttype": _query(
            "resulttype",
            "`hits` pour ne recevoir que le nombre d'éléments correspondants (`numberMatched`), "
            "sans les éléments ; `results` (par défaut) pour les éléments.",
            {"type": "string", "enum": ["results", "hits"], "default": "results"},
        ),
        "sortby": _query(
            "sortby",
            "Tri : noms de propriétés séparés par des virgules, précédés de `-` pour un ordre "
            "décroissant (`-declared_at,name`).",
            {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[+-]?[A-Za-z_]"}},
        ),
        "f-features": _query(
            "f",
            "Format de la réponse : json (GeoJSON, par défaut) ou html.",
            {"type": "string", "enum": ["json", "html"], "default": "json"},
        ),
        "f-schema": _query(
            "f",
            "Format de la réponse : json (JSON Schema, par défaut) ou html.",
            {"type": "string", "enum": ["json", "html"], "default": "json"},
        ),
    }
    schemas = {
        # Our own shape of a CQL2 JSON expression: the OGC schema (JSON Schema
        # 2020-12, recursive through $dynamicRef) has no OpenAPI 3.0 form.
        "cql2Expression": {
            "description": "Expression CQL2 JSON (OGC 21-065r2) : un prédicat "
            '`{"op": …, "args": […]}`, ou `true`/`false`.',
            "oneOf": [
                {
                    "type": "object",
                    "required": ["op", "args"],
                    "properties": {
                        "op": {"type": "string", "enum": sorted(_CQL2_OPERATORS)},
                        "args": {"type": "array", "items": {"$ref": "#/components/schemas/cql2Operand"}},
                    },
                },
                {"type": "boolean"},
            ],
        },
        "cql2Operand": {
            "description": "Opérande CQL2 JSON : une valeur, une propriété ou une géométrie GeoJSON.",
            "oneOf": [
                {"type": "string"},
                {"type": "number"},
                {"type": "boolean"},
                {
                    "type": "object",
                    "required": ["property"],
                    "properties": {"property": {"type": "string"}},
                },
                {"$ref": "#/components/schemas/geometryGeoJSON"},
            ],
        },
        "queryablesSchema": {
            "description": "Un schéma JSON (JSON Schema 2020-12) des propriétés d'une collection.",
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "$schema": {"type": "string"},
                "$id": {"type": "string"},
                "type": {"type": "string", "enum": ["object"]},
                "title": {"type": "string"},
                "properties": {
                    "type": "object",
                    "additionalProperties": {"type": "object"},
                },
                "additionalProperties": {"type": "boolean"},
            },
        },
    }
    schemas["execute"] = {
        "type": "object",
        "description": "Demande d'exécution d'un processus : ses entrées (nom → valeur).",
        "properties": {
            "inputs": {"type": "object", "additionalProperties": True},
            "outputs": {"type": "object", "additionalProperties": True},
            "response": {"type": "string", "enum": ["raw", "document"]},
        },
    }
    responses = {
        "ProcessList": {
            "description": "Les processus de l'API (flux de travail de la résorption).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "ExecuteAsync": {
            "description": "Tâche créée (exécution en tâche de fond) : son état est à l'adresse `Location`.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "JsonSchema": {
            "description": "Le schéma JSON des propriétés de la collection, avec leurs libellés "
            "en français (en anglais avec `lang=en`).",
            "content": {
                SCHEMA_JSON: {"schema": {"$ref": "#/components/schemas/queryablesSchema"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
    }
    return {"parameters": parameters, "schemas": schemas, "responses": responses}


_CQL2_OPERATORS = {
    "and", "or", "not", "=", "<>", "<", ">", "<=", ">=", "like", "between", "in", "isNull",
    "casei", "accenti", "+", "-", "*", "/",
    "s_intersects", "s_contains", "s_crosses", "s_disjoint", "s_equals", "s_overlaps",
    "s_touches", "s_within", "s_dwithin",
    "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedBy",
    "t_finishes", "t_intersects", "t_meets", "t_metBy", "t_overlappedBy", "t_overlaps",
    "t_startedBy", "t_starts",
    "a_containedBy", "a_contains", "a_equals", "a_overlaps",
}  # fmt: skip


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter, form style, comma-separated when it is an array."""
    return {
        "name": name,
        "in": "query",
        "description": description,
        "required": False,
        "style": "form",
        "explode": False,
        "schema": schema,
    }


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


# -- the operations of a catalog collection -----------------------------------------


def _rewrite_collection(document: dict[str, Any], name: str, c: Collection) -> None:
    """Items, item, queryables and schema of collection `name` as our routes serve them."""
    paths = document["paths"]
    base = f"/collections/{name}"
    title = c.title.fr
    # One document for everyone: it describes the fields no sensitive group hides.
    readable = tuple(f for f in c.fields.values() if not f.group.sensitive)
    errors = {
        "400": _ref("responses", "InvalidParameter"),
        "404": _ref("responses", "NotFound"),
        "500": _ref("responses", "ServerError"),
    }

    if base in paths:
        paths[base]["get"]["summary"] = f"Description de la collection « {title} »"

    items = paths.get(f"{base}/items")
    if items is not None:
        items["get"].update(
            summary=f"Éléments de la collection « {title} »",
            parameters=_items_parameters(c, readable),
            responses={"200": _ref("responses", "Features"), **errors},
        )
        if "options" in items:
            # pygeoapi answers OPTIONS itself (an empty 200 with an Allow header).
            items["options"]["summary"] = "Méthodes permises sur les éléments"
        if "post" in items:
            post = items["post"]
            post["summary"] = f"Éléments de la collection « {title} » choisis par un filtre CQL2 JSON"
            post["parameters"] = [_ref("parameters", "limit"), _ref("parameters", "offset")]
            post["requestBody"] = {
                "description": "Le filtre, en CQL2 JSON.",
                "required": True,
                "content": {"application/json": {"schema": _ref("schemas", "cql2Expression")}},
            }
            post["responses"] = {"200": _ref("responses", "Features"), **errors}

    item = paths.get(f"{base}/items/{{featureId}}")
    if item is not None:
        feature_id = {
            "name": "featureId",
            "in": "path",
            "required": True,
            "description": f"Identifiant de l'élément (propriété « {c.id_field} »).",
            "schema": {"type": "string"},
        }
        item["get"].update(
            summary=f"Un élément de la collection « {title} »",
            parameters=[
                feature_id,
                _ref("parameters", "f-features"),
                _ref("parameters", "lang"),
                _ref("parameters", "crs"),
                _properties_parameter(readable),
                _ref("parameters", "skipGeometry"),
            ],
            responses={"200": _ref("responses", "Feature"), **errors},
        )
        if "options" in item:
            item["options"]["summary"] = "Méthodes permises sur un élément"
            item["options"]["parameters"] = [feature_id]

    for suffix, what in (("queryables", "Propriétés interrogeables"), ("schema", "Schéma")):
        operation = paths.get(f"{base}/{suffix}", {}).get("get")
        if operation is None:
            continue
        operation.update(
            summary=f"{what} de la collection « {title} »",
            parameters=[_ref("parameters", "f-schema"), _ref("parameters", "lang")],
            responses={"200": _ref("responses", "JsonSchema"), **errors},
        )


def _items_parameters(c: Collection, readable: tuple[Field, ...]) -> list[dict[str, Any]]:
    """Every parameter our items route accepts for `c`, then one equality filter per queryable."""
    standard = ["f-features", "lang", "limit", "offset", "bbox", "bbox-crs", "crs"]
    if c.temporal_start:
        standard.append("datetime")
    standard += ["skipGeometry", "filter", "filter-lang", "filter-crs", "resulttype"]
    if c.search_sql:
        standard.append("q")
    parameters: list[dict[str, Any]] = [_ref("parameters", n) for n in standard]
    parameters.append(_properties_parameter(readable))
    sortable = [f.name for f in readable if f.sortable]
    parameters.append(
        _query(
            "sortby",
            "Tri : noms de propriétés séparés par des virgules, précédés de `-` pour un ordre "
            f"décroissant (par défaut : {', '.join(c.default_sort)}).",
            {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": [*sortable, *(f"-{n}" for n in sortable)]},
            },
        )
    )
    parameters += [_equality_parameter(f) for f in readable if f.filterable and f.name not in RESERVED]
    return parameters


def _properties_parameter(readable: tuple[Field, ...]) -> dict[str, Any]:
    return _query(
        "properties",
        "Propriétés à renvoyer, séparées par des virgules (toutes par défaut).",
        {"type": "array", "items": {"type": "string", "enum": [f.name for f in readable]}},
    )


def _equality_parameter(f: Field) -> dict[str, Any]:
    """`?name=value`: keeps the items whose property equals the value (contains it, for a list)."""
    schema = f.json_schema("fr")
    for key in ("title", "description", "readOnly", "x-enum-labels", "x-resorption-group"):
        schema.pop(key, None)
    label = f.label.fr
    if f.type == "array":
        # A list property matches when it contains the one value given.
        schema = schema.get("items", {"type": "string"})
        what = f"Ne garde que les éléments dont « {label} » contient cette valeur."
    else:
        what = f"Ne garde que les éléments dont « {label} » vaut cette valeur."
    if f.enum:
        what += " Valeurs : " + ", ".join(f"{k} ({v})" for k, v in f.enum.items()) + "."
    return _query(f.name, what, schema)


# -- operations of the whole server --------------------------------------------------


def _server_operations(document: dict[str, Any]) -> None:
    """French summaries, and the OGC responses the landing page's siblings really return."""
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") in SUMMARIES:
                operation["summary"] = SUMMARIES[operation["operationId"]]
    # pygeoapi describes both with the landing page's response.
    for path, response in (("/conformance", "ConformanceDeclaration"), ("/collections", "Collections")):
        operation = document["paths"].get(path, {}).get("get")
        if operation is not None:
            operation["responses"]["200"] = _ref("responses", response)
    lang = document["components"]["parameters"].get("lang")
    if lang is not None:
        lang["description"] = (
            "Langue de la réponse : français (par défaut) ou anglais (`lang=en`). À défaut, "
            "l'en-tête Accept-Language est suivi."
        )
        # pygeoapi lists the full locales; the bare languages work as well.
        values = lang["schema"].get("enum", [])
        values += [v.split("-")[0] for v in values if v.split("-")[0] not in values]


def _declare_server_media_types(document: dict[str, Any]) -> None:
    """Every media type `/`, `/collections` and `/conformance` answer in, declared.

    The OGC responses list JSON and HTML; pygeoapi also answers `f=jsonld` (schema.org
    JSON-LD). /req/oas30/completeness asks that each response the server gives be declared.
    """
    responses = document["components"]["responses"]
    for name in ("LandingPage", "Collections", "ConformanceDeclaration"):
        content = responses.get(name, {}).get("content")
        if content is not None:
            content.setdefault("text/html", {"schema": {"type": "string"}})
            content.setdefault(JSONLD, {"schema": {"type": "object"}})


# -- bundling ------------------------------------------------------------------------


@functools.cache
def _vendored(name: str) -> dict[str, Any]:
    """A vendored OGC OpenAPI document, read once."""
    try:
        return yaml.safe_load((OGC_SCHEMAS / name).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"Schéma OGC embarqué introuvable : {name} ({exc}).") from exc


def _bundle(document: dict[str, Any]) -> None:
    """Rewrite every external `$ref` to a local one, then copy in the OGC components they name."""
    _rewrite_refs(document, _localise)
    components = document["components"]
    source = _vendored(OGC_FEATURES_1)["components"]
    # A component of ours with an OGC name (limit, bbox, datetime…) is the same
    # parameter described in French: only what is still missing is copied.
    missing = _missing(document)
    while missing:
        for kind, name in missing:
            if name not in source.get(kind, {}):
                raise ConfigurationError(
                    f"OpenAPI : #/components/{kind}/{name} n'est défini ni par nous ni dans {OGC_FEATURES_1}."
                )
            # Inside the vendored file, references are already local to its components.
            components.setdefault(kind, {})[name] = copy.deepcopy(source[kind][name])
        missing = _missing(document)


def _localise(ref: str) -> str:
    """The local reference standing for `ref`; ConfigurationError for an unknown external one."""
    if ref.startswith("#"):
        return ref
    address, _, fragment = ref.partition("#")
    if address.endswith(OGC_FEATURES_1):
        return f"#{fragment}"
    for suffix, local in LOCAL_EQUIVALENTS.items():
        if ref.endswith(suffix):
            return local
    raise ConfigurationError(
        f"OpenAPI : la référence externe {ref} n'a pas d'équivalent local "
        "(à ajouter dans resorption/api/openapi.py)."
    )


def _missing(document: dict[str, Any]) -> set[tuple[str, str]]:
    """The components referred to in `document` that it does not define."""
    components = document["components"]
    missing = set()
    for ref in _refs(document):
        parts = ref.split("/")
        local = len(parts) == 4 and parts[:2] == ["#", "components"]
        if local and parts[3] not in components.get(parts[2], {}):
            missing.add((parts[2], parts[3]))
    return missing


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` value under `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _rewrite_refs(node: Any, localise: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                node[key] = localise(value)
            else:
                _rewrite_refs(value, localise)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, localise)
