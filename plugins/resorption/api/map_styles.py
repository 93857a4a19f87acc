"""Standard documents for map developers: TileJSON 3.0 per tileset, MapLibre styles (OGC API – Styles).

Routes (a blueprint registered before pygeoapi's, like the tiles):
- `/collections/{id}/tiles/WebMercatorQuad/tilejson.json`: TileJSON 3.0.0 of a tileset (the URL
  template of our tiles, zooms, bounds, and the layer's fields);
- `/styles` and `/styles/{styleId}`: the styles of the whole map, `carte` (offline base layer,
  footprints of actions, sites) and `fond` (the offline base layer alone);
- `/collections/{id}/styles` and `/collections/{id}/styles/default`: one style per tiled collection.

A style is a MapLibre (Mapbox GL) style document, `application/vnd.mapbox.style+json`, which
MapLibre GL JS, OpenLayers (ol-mapbox-style) and QGIS read. Its colours and classes are those
of `resorption.styles` (status colours, population classes), like `/carte` and the QGIS project.

Rights. Both documents are made for the caller: a collection they may not read is a 404 (the
app's guard, then `tiles._layer`), a layer's fields are those its tiles give the caller
(`tiles.tile_properties`), and a style's expressions name only those fields (a caller who may
not read the population gets sites of one size, not a style that names `population_total`).
The whole-map style leaves out the collections the caller may not read. Like the tiles, the
documents are `private`: they differ from one caller to another.

The base layer is offline: territory boundaries from our own tiles (régions, départements,
communes from zoom 8), on a plain background, so that no map is ever blank. An external base
map (the IGN Plan tiles, say) is added below them only when the deployment names one
(`RESORPTION_MAP_TILES_URL`, off by default: our users' networks may reach no other server).
Commune names are labels from zoom 10 (`communes-noms`), drawn with glyphs we serve ourselves
(`/styles/glyphs/{fontstack}/{range}.pbf`: the DSFR's Marianne as signed-distance fields, made
by `resorption.glyphs` when the front-end files are vendored), so labels need no font server either.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request, send_file

from resorption import glyphs, styles
from resorption.api import pygeoapi_routes
from resorption.api.tiles import FRANCE_BBOX, TMS_ID, layer_and_collection, tile_properties
from resorption.caller import Caller, current_settings
from resorption.errors import InvalidParameter, NotFound
from resorption.tile_layers import CLUSTER_CELL, LABEL_PROPERTIES, LAYERS, Layer
from resorption.web import STATIC_DIR

TILEJSON = "application/json"
STYLE = "application/vnd.mapbox.style+json"
JSON = "application/json"
# Beyond this zoom, clients draw the tiles of this zoom larger (overzoom): the MVT grid of
# 4096 units per tile is already finer than a metre.
TILEJSON_MAX_ZOOM = 16
# The centre of metropolitan France, at a zoom where it fills a screen.
CENTER = [2.5, 46.6, 5]
ATTRIBUTION = "Résorption — données des services de l'État"
BACKGROUND = "#f6f6f2"
# The whole-map styles, in the order of /styles.
MAP_STYLES = {
    "carte": "Carte des sites et des actions (fond hors ligne compris)",
    "fond": "Fond de carte hors ligne : régions, départements, communes",
}
# What each tiled collection's default style draws, by geometry.
TERRITORY_LINES = {
    "regions": {"line-color": "#5b5b66", "line-width": 1.6},
    "departements": {"line-color": "#7a7a85", "line-width": 1.0},
    "communes": {"line-color": "#b5b5bd", "line-width": 0.5},
}
ACTION_COLOUR = "#000091"  # the State's blue (DSFR « bleu France »)
LABEL_FONT = "Marianne Regular"
# Grey 850 of the DSFR on a white halo: readable on the plain background and over outlines.
LABEL_PAINT = {"text-color": "#3a3a3a", "text-halo-color": "#ffffff", "text-halo-width": 1.5}
GLYPHS_DIR = STATIC_DIR / "vendor" / "glyphs"
PBF = "application/x-protobuf"


def create_blueprint() -> Blueprint:
    bp = Blueprint("map_styles", __name__)
    bp.add_url_rule(
        "/collections/<path:collection_id>/tiles/<tms_id>/tilejson.json", view_func=tilejson_route
    )
    bp.add_url_rule("/styles", view_func=styles_list)
    bp.add_url_rule("/styles/glyphs/<fontstack>/<int:start>-<int:end>.pbf", view_func=glyph_range)
    bp.add_url_rule("/styles/<style_id>", view_func=map_style)
    bp.add_url_rule("/collections/<path:collection_id>/styles", view_func=collection_styles)
    bp.add_url_rule("/collections/<path:collection_id>/styles/<style_id>", view_func=collection_style)
    return bp


# -- TileJSON ---------------------------------------------------------------------------------


def tilejson_route(collection_id: str, tms_id: str) -> Response:
    """TileJSON 3.0.0 of a collection's tileset, as the caller may read it."""
    if tms_id != TMS_ID:
        raise NotFound(f"Seul le jeu de matrices {TMS_ID} a un document TileJSON.")
    _no_parameters()
    return _json(tilejson(Caller.of_request(), collection_id), TILEJSON)


def tilejson(caller: Caller, collection_id: str) -> dict[str, Any]:
    """The TileJSON document (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0)."""
    layer, collection = layer_and_collection(collection_id)
    base = _base_url()
    fields = {name: collection.fields[name].label.fr for name in tile_properties(caller, collection, layer)}
    description = collection.title.fr
    if layer.cluster_below is not None:
        fields["count"] = f"Nombre de sites du regroupement (sous le niveau {layer.cluster_below})"
        if "population_total" in fields:
            fields["population"] = "Population des sites du regroupement"
        description += (
            f" — sous le niveau {layer.cluster_below}, regroupements sur une grille de "
            f"{4096 // CLUSTER_CELL} × {4096 // CLUSTER_CELL} cases par tuile"
        )
    vector_layers = [
        {
            "id": layer.collection,
            "description": collection.title.fr,
            "minzoom": layer.min_zoom,
            "maxzoom": TILEJSON_MAX_ZOOM,
            "fields": fields,
        }
    ]
    labels = {name: fields[name] for name in LABEL_PROPERTIES if name in fields}
    if layer.labels_from is not None and "name" in labels:
        vector_layers.append(
            {
                "id": layer.label_layer,
                "description": f"{collection.title.fr} : un point dans chacune, pour écrire son nom",
                "minzoom": layer.labels_from,
                "maxzoom": TILEJSON_MAX_ZOOM,
                "fields": labels,
            }
        )
    return {
        "tilejson": "3.0.0",
        "name": f"{collection.title.fr} — tuiles vectorielles",
        "description": description,
        "version": "1.0.0",
        "attribution": ATTRIBUTION,
        "scheme": "xyz",
        # OGC API Tiles orders the template tileMatrix/tileRow/tileCol: z/y/x.
        "tiles": [f"{base}/collections/{collection.id}/tiles/{TMS_ID}/{{z}}/{{y}}/{{x}}"],
        "minzoom": layer.min_zoom,
        "maxzoom": TILEJSON_MAX_ZOOM,
        "bounds": list(FRANCE_BBOX),
        "center": CENTER,
        "vector_layers": vector_layers,
    }


# -- styles -----------------------------------------------------------------------------------


def styles_list() -> Response:
    """The whole-map styles (OGC API – Styles, /styles)."""
    _check_format()
    base = _base_url()
    return _json(
        {
            "styles": [
                {"id": sid, "title": title, "links": _style_links(f"{base}/styles/{sid}", title)}
                for sid, title in MAP_STYLES.items()
            ],
            "links": [{"rel": "self", "type": JSON, "href": f"{base}/styles", "title": "Styles de carte"}],
        },
        JSON,
    )


def map_style(style_id: str) -> Response:
    """A whole-map style: `carte` (base, actions, sites — what the caller may read) or `fond`."""
    if style_id not in MAP_STYLES:
        raise NotFound(f"Le style « {style_id} » n'existe pas (styles : {', '.join(MAP_STYLES)}).")
    _check_format()
    caller = Caller.of_request()
    collections = ["regions", "departements", "communes"]
    if style_id == "carte":
        collections += ["actions", "sites"]
    return _json(style(caller, style_id, MAP_STYLES[style_id], collections), STYLE)


def collection_styles(collection_id: str) -> Response:
    """The styles of one collection: `default` (OGC API – Styles, /collections/{id}/styles)."""
    _, collection = layer_and_collection(collection_id)
    _check_format()
    href = f"{_base_url()}/collections/{collection.id}/styles/default"
    title = f"{collection.title.fr} — style par défaut"
    return _json(
        {
            "default": "default",
            "styles": [{"id": "default", "title": title, "links": _style_links(href, title)}],
        },
        JSON,
    )


def collection_style(collection_id: str, style_id: str) -> Response:
    """The default style of one tiled collection, alone on the offline background."""
    _, collection = layer_and_collection(collection_id)
    if style_id != "default":
        raise NotFound(f"La collection « {collection.id} » n'a qu'un style : default.")
    _check_format()
    title = f"{collection.title.fr} — style par défaut"
    return _json(style(Caller.of_request(), f"{collection.id}-default", title, [collection.id]), STYLE)


def style(caller: Caller, style_id: str, title: str, collections: list[str]) -> dict[str, Any]:
    """A MapLibre style of `collections` (bottom to top), those the caller may not read left out."""
    base = _base_url()
    sources: dict[str, Any] = {}
    layers: list[dict[str, Any]] = [
        {"id": "fond", "type": "background", "paint": {"background-color": BACKGROUND}}
    ]
    external = _external_base_map()
    if external is not None:
        sources["fond-externe"] = external
        layers.append({"id": "fond-externe", "type": "raster", "source": "fond-externe"})
    for collection_id in collections:
        collection = caller.catalog.get(collection_id)
        layer = LAYERS.get(collection_id)
        if collection is None or layer is None or not caller.may_read(collection):
            continue
        sources[collection_id] = {
            "type": "vector",
            "url": f"{base}/collections/{collection_id}/tiles/{TMS_ID}/tilejson.json",
            "attribution": ATTRIBUTION,
        }
        fields = set(tile_properties(caller, collection, layer))
        layers += _layers(layer, fields)
    return {
        "version": 8,
        "name": title,
        "metadata": {"resorption:id": style_id},
        "center": CENTER[:2],
        "zoom": CENTER[2],
        "glyphs": f"{base}/styles/glyphs/{{fontstack}}/{{range}}.pbf",
        "sources": sources,
        "layers": layers,
    }


def glyph_range(fontstack: str, start: int, end: int) -> Response:
    """256 glyphs of a font as SDF (`glyphs` of our styles); a range we did not make is empty."""
    _no_parameters()
    # MapLibre asks for the fontstack of a layer's `text-font`, its fonts joined by commas.
    font = next((name for name in fontstack.split(",") if name.strip() in glyphs.FONTS), None)
    if font is None:
        raise NotFound(f"Police inconnue : {fontstack[:80]} (polices : {', '.join(glyphs.FONTS)}).")
    if start % 256 or end != start + 255 or start > 0xFFFF:
        raise NotFound("Une plage de glyphes va de 256 × n à 256 × n + 255 (0-255, 256-511…).")
    path = GLYPHS_DIR / font.strip() / f"{glyphs.range_name(start)}.pbf"
    # Public and the same for everyone: the font changes only with a new release.
    headers = {"Cache-Control": "public, max-age=86400"}
    if path.is_file():
        return send_file(path, mimetype=PBF, max_age=86400, etag=True)
    return Response(glyphs.glyphs_file(font.strip(), start, []), mimetype=PBF, headers=headers)


def _layers(layer: Layer, fields: set[str]) -> list[dict[str, Any]]:
    """The style layers of one tile layer, naming only `fields` (what the caller may read)."""
    name = layer.collection
    common = {"source": name, "source-layer": name}
    if name in TERRITORY_LINES:
        lines: list[dict[str, Any]] = [
            {
                "id": f"{name}-contour",
                "type": "line",
                **common,
                "minzoom": layer.min_zoom,
                "paint": TERRITORY_LINES[name],
            }
        ]
        if layer.labels_from is not None and "name" in fields:
            lines.append(
                {
                    "id": f"{name}-noms",
                    "type": "symbol",
                    "source": name,
                    "source-layer": layer.label_layer,
                    "minzoom": layer.labels_from,
                    "layout": {
                        "text-field": ["get", "name"],
                        "text-font": [LABEL_FONT],
                        "text-size": 13,
                        "text-max-width": 8,
                        "text-padding": 6,
                    },
                    "paint": LABEL_PAINT,
                }
            )
        return lines
    if name == "actions":
        return [
            {
                "id": "actions-surface",
                "type": "fill",
                **common,
                "paint": {"fill-color": ACTION_COLOUR, "fill-opacity": 0.12},
            },
            {
                "id": "actions-contour",
                "type": "line",
                **common,
                "paint": {"line-color": ACTION_COLOUR, "line-width": 1.5},
            },
        ]
    # Sites: colour by status, size by population class (resorption.styles), outlined.
    colour: Any = "#7f7f7f"
    if "status" in fields:
        colour = ["match", ["get", "status"]]
        for code, value in styles.STATUS_COLOURS.items():
            colour += [code, value]
        colour.append(styles.STATUS_COLOURS["unknown"])
    radius: Any = styles.UNKNOWN_POPULATION_RADIUS
    cluster_radius: Any = styles.POPULATION_CLASSES[2].radius
    if "population_total" in fields:
        radius = _population_steps("population_total")
        cluster_radius = _population_steps("population")
    point = {"circle-stroke-color": styles.OUTLINE_COLOUR, "circle-stroke-width": 1, "circle-opacity": 0.9}
    layers = [
        {
            "id": "sites",
            "type": "circle",
            **common,
            "filter": ["!", ["has", "count"]],
            "paint": {"circle-color": colour, "circle-radius": radius, **point},
        }
    ]
    if layer.cluster_below is not None:
        layers.insert(
            0,
            {
                "id": "sites-regroupements",
                "type": "circle",
                **common,
                "maxzoom": layer.cluster_below,
                "filter": ["has", "count"],
                "paint": {
                    "circle-color": colour,
                    "circle-radius": cluster_radius,
                    **point,
                    "circle-stroke-width": 2,
                },
            },
        )
    return layers


def _population_steps(prop: str) -> list[Any]:
    """The marker radius by population class: a MapLibre `step` on `prop` (unknown: the smallest)."""
    steps: list[Any] = ["step", ["coalesce", ["get", prop], 0], styles.UNKNOWN_POPULATION_RADIUS]
    for cls in styles.POPULATION_CLASSES:
        steps += [cls.minimum, cls.radius]
    return steps


def _external_base_map() -> dict[str, Any] | None:
    """The deployment's raster base map (RESORPTION_MAP_TILES_URL), or None (the default)."""
    api = current_app.extensions[pygeoapi_routes.NAME]
    settings = api.config["server"].get("map") or {}
    url = (settings.get("url") or "").strip()
    if not url:
        return None
    return {
        "type": "raster",
        "tiles": [url],
        "tileSize": 256,
        "attribution": settings.get("attribution") or "",
    }


# -- helpers ------------------------------------------------------------------------------------


def _style_links(href: str, title: str) -> list[dict[str, Any]]:
    return [{"rel": "stylesheet", "type": STYLE, "href": f"{href}?f=mapbox", "title": title}]


def _check_format() -> None:
    _no_parameters({"f"})
    f = request.args.get("f")
    if f not in (None, "mapbox", "json"):
        raise InvalidParameter(
            f"Format « {f} » non servi : f=mapbox (style MapLibre) ou f=json, ou omettez f."
        )


def _no_parameters(allowed: set[str] | None = None) -> None:
    unknown = sorted(set(request.args) - (allowed or set()))
    if unknown:
        raise InvalidParameter(f"Paramètre inconnu : {', '.join(unknown)[:80]}.")


def _base_url() -> str:
    return current_settings().public_url.rstrip("/")


def _json(document: dict[str, Any], media_type: str) -> Response:
    # Made for the caller (their fields and collections): private, like the tiles.
    return Response(
        orjson.dumps(document),
        mimetype=media_type,
        headers={"Cache-Control": "private, max-age=60", "Vary": "Authorization, Cookie"},
    )


# -- OpenAPI ---------------------------------------------------------------------------------------


def openapi_paths() -> dict[str, Any]:
    """The TileJSON and style operations for our OpenAPI document (French text)."""
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
    f_style = {
        "name": "f",
        "in": "query",
        "required": False,
        "description": "Format : mapbox (style MapLibre / Mapbox GL, par défaut) ou json (le même).",
        "schema": {"type": "string", "enum": ["mapbox", "json"], "default": "mapbox"},
    }

    def operation(op_id: str, summary: str, parameters: list[Any], media: str, extra: dict[str, Any]) -> Any:
        ok = {"description": summary, "content": {media: {"schema": {"type": "object"}}}}
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "tags": ["Cartes : TileJSON et styles"],
                "parameters": parameters,
                "responses": {"200": ok, **extra, **errors},
            }
        }

    paths: dict[str, Any] = {
        "/styles": operation("getStyles", "Styles de carte (OGC API – Styles)", [f_style], JSON, {}),
        "/styles/{styleId}": operation(
            "getStyle",
            "Un style de carte MapLibre : carte (sites, actions, fond) ou fond (fond hors ligne)",
            [
                {
                    "name": "styleId",
                    "in": "path",
                    "required": True,
                    "description": "Identifiant du style.",
                    "schema": {"type": "string", "enum": list(MAP_STYLES)},
                },
                f_style,
            ],
            STYLE,
            {},
        ),
    }
    for collection in LAYERS:
        name = collection.capitalize()
        paths[f"/collections/{collection}/tiles/{TMS_ID}/tilejson.json"] = operation(
            f"get{name}TileJSON",
            f"TileJSON 3.0 des tuiles vectorielles « {collection} »",
            [],
            TILEJSON,
            signed_in,
        )
        paths[f"/collections/{collection}/styles"] = operation(
            f"get{name}Styles", f"Styles de la collection « {collection} »", [f_style], JSON, signed_in
        )
        paths[f"/collections/{collection}/styles/default"] = operation(
            f"get{name}DefaultStyle",
            f"Style MapLibre par défaut de la collection « {collection} »",
            [f_style],
            STYLE,
            signed_in,
        )
    return paths
