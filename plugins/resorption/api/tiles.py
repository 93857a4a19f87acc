"""OGC API – Tiles: Mapbox vector tiles of sites, actions and territories, as the caller may see them.

Routes (a blueprint registered before pygeoapi's, so that ours answer its tile paths):
`/tileMatrixSets[/WebMercatorQuad]`, `/collections/{id}/tiles` (tilesets),
`/collections/{id}/tiles/WebMercatorQuad` (tileset metadata) and
`/collections/{id}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}` (the tile, `f=mvt`).

Security. A tile is ONE statement (`query.tile_statement`) run in a read-only transaction as the
caller, exactly like the features: the transaction takes the caller's database role
(column privileges) and scopes (row-level security), so a site or an action outside the
scope never reaches a tile, and a forbidden column would be refused by PostgreSQL. The
attributes are a short list per layer (what a map styles and shows in a tooltip), cut down
to the fields the policy lets the caller read, never a sensitive group's. The app's guard
answers 401 (anonymous) or 404 for collections the caller may not read, before any of this.

Clustering. Below zoom 9 the sites are not drawn one by one: PostGIS groups them on a grid
of 8 × 8 cells per tile and draws one point per cell, at the mean position of its sites,
with `count`, the summed `population` and the dominant `status`. From zoom 9, each site is
a point with its id, name, status and population. Territories are simplified to about half
a pixel of their zoom; communes appear from zoom 8 (an empty tile, 204, below), and from zoom
10 their tiles have a second layer, `communes_noms`: one point inside each commune with its code
and name, where a map writes its label once.

Caching. Each tile has an ETag derived from the collection's version as the caller sees it
(a count of writes kept by triggers, sql/120_tiles.sql, one row per département a
write touched, under row-level security: a caller's version moves only when something in
its scope changes, so nobody learns of edits elsewhere by polling it), the caller's
database role and scopes (two callers share a tile only if they see the same rows and
columns), and the tile's address. `If-None-Match` with the current ETag is answered 304
without building the tile. Anonymous tiles (territories) are `private, max-age=60`; a
signed-in caller's are `private, no-store` like all their data (resorption.response_headers).
"""

from __future__ import annotations

import functools
import hashlib
import json
from http import HTTPStatus
from typing import Any

import orjson
import pygeoapi.api as core_api
from flask import Blueprint, Flask, Response, request
from pygeoapi.util import DEFINITIONSDIR

from resorption import statements
from resorption.caller import Caller, current_settings
from resorption.catalog import Collection
from resorption.crs import CRS84
from resorption.errors import InvalidParameter, NotFound
from resorption.query import tile_statement
from resorption.tile_layers import CLUSTER_CELL, EXTENT, LAYERS, MAX_ZOOM, Layer

SQL = statements.load("api_tiles")

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
WEB_MERCATOR = "http://www.opengis.net/def/crs/EPSG/0/3857"
MVT = "application/vnd.mapbox-vector-tile"
JSON = "application/json"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
CONFORMANCE_CLASSES = [
    f"http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{name}"
    for name in ("core", "tileset", "tilesets-list", "geodata-tilesets", "mvt")
]
# Bumped when what a tile holds changes with the code (layers, attributes, clustering), so
# that browsers drop the tiles they kept.
TILE_FORMAT = "2"
CACHE_CONTROL = "private, max-age=60"
# France, overseas included (CRS84): the extent our tilesets announce.
FRANCE_BBOX = (-61.81, -21.39, 55.84, 51.09)


def register(app: Flask) -> None:
    """Mount the tile routes (before pygeoapi's blueprint) and declare OGC API Tiles conformance."""
    app.register_blueprint(create_blueprint())
    # pygeoapi builds /conformance from this module list and its own tile providers, which we
    # do not use: our classes are added once, whatever the number of apps built.
    missing = [c for c in CONFORMANCE_CLASSES if c not in core_api.CONFORMANCE_CLASSES]
    core_api.CONFORMANCE_CLASSES.extend(missing)


def tilesets_link(public_url: str, collection_id: str) -> dict[str, str]:
    """The link from a collection's document to its tilesets (in pygeoapi's configuration form)."""
    return {
        "type": JSON,
        "rel": REL_TILESETS_VECTOR,
        "title": "Tuiles vectorielles (Mapbox Vector Tiles, WebMercatorQuad)",
        "href": f"{public_url.rstrip('/')}/collections/{collection_id}/tiles",
    }


def create_blueprint() -> Blueprint:
    """The tile routes. `collection_id` is a path, as in pygeoapi's rules, so that ours win the match."""
    bp = Blueprint("tiles", __name__)
    bp.add_url_rule("/tileMatrixSets", view_func=tile_matrix_sets)
    bp.add_url_rule("/tileMatrixSets/<tms_id>", view_func=tile_matrix_set)
    bp.add_url_rule("/collections/<path:collection_id>/tiles", view_func=tilesets)
    bp.add_url_rule("/collections/<path:collection_id>/tiles/<tms_id>", view_func=tileset)
    bp.add_url_rule("/collections/<path:collection_id>/tiles/<tms_id>/metadata", view_func=tileset)
    bp.add_url_rule(
        "/collections/<path:collection_id>/tiles/<tms_id>/<tile_matrix>/<tile_row>/<tile_col>",
        view_func=tile,
    )
    return bp


# -- the tile ------------------------------------------------------------------------------


def tile(collection_id: str, tms_id: str, tile_matrix: str, tile_row: str, tile_col: str) -> Response:
    """One Mapbox vector tile: 200, 204 when empty, 304 when the caller's copy is current."""
    layer, collection = layer_and_collection(collection_id)
    _check_tms(tms_id)
    _check_format({None, "mvt"}, "mvt")
    z = _index(tile_matrix, "tileMatrix (niveau de zoom)", MAX_ZOOM)
    y = _index(tile_row, "tileRow (ligne)", 2**z - 1)
    x = _index(tile_col, "tileCol (colonne)", 2**z - 1)
    headers = {"Cache-Control": CACHE_CONTROL, "Vary": "Authorization, Cookie"}
    if z < layer.min_zoom:
        return Response(status=HTTPStatus.NO_CONTENT, headers=headers)

    caller = Caller.of_request()
    properties = tile_properties(caller, collection, layer)
    with caller.reading(kind="tile") as conn:
        version = conn.execute(SQL.version, (collection.id,)).fetchone()[0]
        etag = _etag(caller, collection.id, version, z, y, x)
        headers["ETag"] = f'"{etag}"'
        if request.if_none_match.contains_weak(etag):
            return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
        statement, params = tile_statement(collection, layer, properties, z, x, y)
        data = conn.execute(statement, params).fetchone()[0]
    if not data:
        return Response(status=HTTPStatus.NO_CONTENT, headers=headers)
    return Response(bytes(data), status=HTTPStatus.OK, mimetype=MVT, headers=headers)


def tile_properties(caller: Caller, collection: Collection, layer: Layer) -> list[str]:
    """The layer's attributes this caller may read; never a field of a sensitive group."""
    readable = {f.name for f in caller.readable_fields(collection) if f.group.sensitive is None}
    return [p for p in layer.properties if p in readable]


def _etag(caller: Caller, collection: str, version: int, z: int, y: int, x: int) -> str:
    """What a tile depends on: data version, the caller's columns and rows, its address."""
    key = "|".join(
        [
            TILE_FORMAT,
            collection,
            str(version),
            caller.policy.db_role(caller.principal, caller.policy.db_settings(caller.principal)),
            caller.scope("sites").as_setting(),
            caller.scope("actions").as_setting(),
            f"{z}/{y}/{x}",
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# -- metadata documents ---------------------------------------------------------------------


def tile_matrix_sets() -> Response:
    """The tile matrix sets we serve: WebMercatorQuad only."""
    _check_format({None, "json"}, "json")
    base = _base_url()
    tms = _tms_definition()
    return _json(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": tms["title"],
                    "uri": TMS_URI,
                    "crs": WEB_MERCATOR,
                    "links": [_link("self", JSON, f"{base}/tileMatrixSets/{TMS_ID}", "WebMercatorQuad")],
                }
            ],
            "links": [_link("self", JSON, f"{base}/tileMatrixSets", "Jeux de matrices de tuiles")],
        }
    )


def tile_matrix_set(tms_id: str) -> Response:
    """The definition of WebMercatorQuad (OGC 17-083r4), as pygeoapi ships it."""
    _check_tms(tms_id)
    _check_format({None, "json"}, "json")
    return _json(_tms_definition())


def tilesets(collection_id: str) -> Response:
    """The tilesets of a collection: one, vector, in WebMercatorQuad."""
    _, collection = layer_and_collection(collection_id)
    _check_format({None, "json"}, "json")
    base = f"{_base_url()}/collections/{collection.id}/tiles"
    return _json(
        {
            "tilesets": [
                {
                    "title": f"{collection.title.fr} — tuiles vectorielles",
                    "dataType": "vector",
                    "crs": WEB_MERCATOR,
                    "tileMatrixSetURI": TMS_URI,
                    "links": _tileset_links(base, collection, self_rel=False),
                }
            ],
            "links": [
                _link("self", JSON, base, "Tuiles vectorielles de la collection"),
                _link("collection", JSON, f"{_base_url()}/collections/{collection.id}", collection.title.fr),
            ],
        }
    )


def tileset(collection_id: str, tms_id: str) -> Response:
    """The tileset metadata (OGC API Tiles `tileset`): layers, their attributes, the URL template."""
    layer, collection = layer_and_collection(collection_id)
    _check_tms(tms_id)
    _check_format({None, "json"}, "json")
    base = f"{_base_url()}/collections/{collection.id}/tiles"
    properties = tile_properties(Caller.of_request(), collection, layer)
    return _json(
        {
            "title": f"{collection.title.fr} — tuiles vectorielles",
            "description": _description(layer),
            "dataType": "vector",
            "crs": WEB_MERCATOR,
            "tileMatrixSetURI": TMS_URI,
            "boundingBox": {
                "lowerLeft": list(FRANCE_BBOX[:2]),
                "upperRight": list(FRANCE_BBOX[2:]),
                "crs": CRS84,
            },
            "layers": [
                {
                    "id": layer.collection,
                    "title": collection.title.fr,
                    "dataType": "vector",
                    "geometryDimension": layer.geometry_dimension,
                    "minTileMatrix": str(layer.min_zoom),
                    "maxTileMatrix": str(MAX_ZOOM),
                    "propertiesSchema": _properties_schema(collection, layer, properties),
                }
            ],
            "links": _tileset_links(base, collection, self_rel=True),
        }
    )


def _tileset_links(base: str, collection: Collection, self_rel: bool) -> list[dict[str, Any]]:
    root = _base_url()
    links = [
        _link(
            "self" if self_rel else "http://www.opengis.net/def/rel/ogc/1.0/tileset",
            JSON,
            f"{base}/{TMS_ID}",
            "Métadonnées du jeu de tuiles",
        ),
        _link(REL_TILING_SCHEME, JSON, f"{root}/tileMatrixSets/{TMS_ID}", "Définition de WebMercatorQuad"),
        {
            **_link(
                "item",
                MVT,
                f"{base}/{TMS_ID}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
                "Tuiles Mapbox Vector Tiles (modèle d'URL)",
            ),
            "templated": True,
        },
        _link(REL_GEODATA, JSON, f"{root}/collections/{collection.id}", collection.title.fr),
    ]
    return links


def _description(layer: Layer) -> str:
    parts = [f"Une couche « {layer.collection} » par tuile (extent {EXTENT})."]
    if layer.cluster_below is not None:
        parts.append(
            f"Sous le niveau {layer.cluster_below}, les sites sont regroupés sur une grille de "
            f"{EXTENT // CLUSTER_CELL} × {EXTENT // CLUSTER_CELL} cases par tuile : un point par "
            "groupe, avec count (nombre de sites), population (somme) et status (le plus fréquent)."
        )
    if layer.min_zoom:
        parts.append(f"Tuiles vides (204) sous le niveau {layer.min_zoom}.")
    parts.append("Seuls les éléments et les attributs que vous avez le droit de lire y figurent.")
    return " ".join(parts)


def _properties_schema(collection: Collection, layer: Layer, properties: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for name in properties:
        field = collection.fields[name]
        schema[name] = {"type": field.type, "title": field.label.fr}
        if field.enum:
            schema[name]["enum"] = list(field.enum)
    if layer.cluster_below is not None:
        below = f"(regroupements, sous le niveau {layer.cluster_below})"
        schema["count"] = {"type": "integer", "title": f"Nombre de sites {below}"}
        if "population_total" in properties:
            schema["population"] = {"type": "integer", "title": f"Population totale des sites {below}"}
    return {"type": "object", "properties": schema}


# -- request checks -------------------------------------------------------------------------


def layer_and_collection(collection_id: str) -> tuple[Layer, Collection]:
    caller = Caller.of_request()
    layer, collection = LAYERS.get(collection_id), caller.catalog.get(collection_id)
    if layer is None or collection is None:
        tiled = ", ".join(LAYERS)
        raise NotFound(
            f"La collection « {collection_id} » n'a pas de tuiles vectorielles "
            f"(collections tuilées : {tiled})."
        )
    if not caller.may_read(collection):  # the app's guard said so already
        raise NotFound(f"La collection « {collection_id} » n'existe pas.")
    return layer, collection


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS_ID:
        raise NotFound(
            f"Le jeu de matrices de tuiles « {tms_id} » n'est pas servi : seul {TMS_ID} l'est "
            f"(voir /tileMatrixSets)."
        )


def _check_format(allowed: set[str | None], default: str) -> None:
    f = request.args.get("f")
    if f not in allowed:
        raise InvalidParameter(f"Format « {f} » non servi ici : indiquez f={default} ou omettez f.")


def _index(value: str, name: str, maximum: int) -> int:
    """A tile matrix, row or column: an integer from 0 to `maximum`."""
    if not (value.isascii() and value.isdigit() and len(value) <= 9 and int(value) <= maximum):
        raise InvalidParameter(
            f"{name} doit être un entier de 0 à {maximum} pour ce niveau de WebMercatorQuad ; "
            f"reçu « {value} »."
        )
    return int(value)


# -- helpers -------------------------------------------------------------------------------


def _base_url() -> str:
    return current_settings().public_url.rstrip("/")


def _link(rel: str, media_type: str, href: str, title: str) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, "title": title}


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), mimetype=JSON)


@functools.cache
def _tms_definition() -> dict[str, Any]:
    """WebMercatorQuad as defined by OGC, from pygeoapi's copy (read once)."""
    with (DEFINITIONSDIR / "tiles" / f"{TMS_ID}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


# -- OpenAPI ---------------------------------------------------------------------------------


def openapi_paths() -> dict[str, Any]:
    """The tile operations for our OpenAPI document (local references only, French text)."""
    errors = {
        "400": {"$ref": "#/components/responses/InvalidParameter"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "500": {"$ref": "#/components/responses/ServerError"},
    }
    signed_in = {
        "401": {
            "description": "Authentification requise (collections sites et actions).",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/exception"}}},
        }
    }
    tms = _path_parameter(
        "tileMatrixSetId",
        "Jeu de matrices de tuiles : WebMercatorQuad.",
        {"type": "string", "enum": [TMS_ID]},
    )
    document = {"description": "Document JSON.", "content": {JSON: {"schema": {"type": "object"}}}}
    f_json = _query_parameter("f", "Format de la réponse : json (par défaut).", ["json"])
    paths: dict[str, Any] = {
        "/tileMatrixSets": {
            "get": _operation(
                "getTileMatrixSetsList",
                "Jeux de matrices de tuiles servis",
                [f_json],
                {"200": document, **errors},
            ),
        },
        "/tileMatrixSets/{tileMatrixSetId}": {
            "get": _operation(
                "getTileMatrixSet",
                "Définition d'un jeu de matrices de tuiles",
                [tms, f_json],
                {"200": document, **errors},
            ),
        },
    }
    for collection in LAYERS:
        base = f"/collections/{collection}/tiles"
        paths[base] = {
            "get": _operation(
                f"get{collection.capitalize()}Tilesets",
                f"Jeux de tuiles vectorielles de la collection « {collection} »",
                [f_json],
                {"200": document, **signed_in, **errors},
            ),
        }
        paths[f"{base}/{{tileMatrixSetId}}"] = {
            "get": _operation(
                f"get{collection.capitalize()}Tileset",
                f"Métadonnées des tuiles vectorielles de la collection « {collection} »",
                [tms, f_json],
                {"200": document, **signed_in, **errors},
            ),
        }
        paths[f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"] = {
            "get": _operation(
                f"get{collection.capitalize()}Tile",
                f"Une tuile vectorielle (Mapbox Vector Tile) de la collection « {collection} »",
                [
                    tms,
                    _path_parameter(
                        "tileMatrix",
                        f"Niveau de zoom, de 0 à {MAX_ZOOM}.",
                        {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM},
                    ),
                    _path_parameter(
                        "tileRow",
                        "Ligne de la tuile, de 0 à 2^tileMatrix - 1 (du nord au sud).",
                        {"type": "integer", "minimum": 0},
                    ),
                    _path_parameter(
                        "tileCol",
                        "Colonne de la tuile, de 0 à 2^tileMatrix - 1 (d'ouest en est).",
                        {"type": "integer", "minimum": 0},
                    ),
                    _query_parameter("f", "Format de la tuile : mvt (par défaut).", ["mvt"]),
                ],
                {
                    "200": {
                        "description": "La tuile, avec les seuls éléments et attributs que vous pouvez lire.",
                        "content": {MVT: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "204": {"description": "Tuile vide : aucun élément à montrer ici."},
                    "304": {"description": "Votre copie (If-None-Match) est à jour."},
                    **signed_in,
                    **errors,
                },
            ),
        }
    return paths


def _operation(
    operation_id: str, summary: str, parameters: list[dict[str, Any]], responses: dict[str, Any]
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["Tuiles vectorielles"],
        "parameters": parameters,
        "responses": responses,
    }


def _path_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _query_parameter(name: str, description: str, values: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", "enum": values, "default": values[0]},
    }
