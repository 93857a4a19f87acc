"""The SQL of our vector tiles: what each layer shows, and the one statement that builds a tile.

A tile is built by PostGIS alone (`ST_TileEnvelope`, `ST_AsMVTGeom`, `ST_AsMVT`); Python
passes its bytes through. The envelope is transformed once to the columns' SRID (4326) so
that `&&` uses their GiST index; the columns are transformed to Web Mercator only for the
rows found. Names are `Identifier`s from the catalog and the layer table below, values are
parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

# Tile coordinates per side (the MVT default) and the margin kept around a tile so that
# lines and symbols drawn across its edge meet their neighbours.
EXTENT = 4096
BUFFER = 64
# Clustered sites are grouped on this grid of tile units: 8 × 8 cells per tile (32 pixels
# on a 256-pixel tile), each cluster drawn at the mean position of its sites.
CLUSTER_CELL = 512
# Above this zoom, territories are drawn as stored: simplifying would cost more than it saves.
SIMPLIFY_UNTIL = 12
# The highest zoom level (tile matrix) of WebMercatorQuad.
MAX_ZOOM = 24


@dataclass(frozen=True, slots=True)
class Layer:
    """What the tiles of one collection show."""

    collection: str
    # Catalog fields shown, for styling and a tooltip; cut down to what the caller may read.
    properties: tuple[str, ...]
    # 0 for points, 2 for surfaces (OGC tileset metadata).
    geometry_dimension: int
    # Below this zoom a tile is empty (204): too many features to be of use.
    min_zoom: int = 0
    # Below this zoom, points are grouped into clusters (count, population, dominant status).
    cluster_below: int | None = None
    # The column given as each feature's MVT id (an integer), when there is one.
    feature_id: str | None = None


LAYERS: dict[str, Layer] = {
    "sites": Layer(
        "sites", ("id", "name", "status", "population_total"), 0, cluster_below=9, feature_id="id"
    ),
    "actions": Layer("actions", ("id", "name", "place_type"), 2, feature_id="id"),
    "regions": Layer("regions", ("code", "name"), 2),
    "departements": Layer("departements", ("code", "name"), 2),
    "communes": Layer("communes", ("code", "name", "departement_code"), 2, min_zoom=8),
}

# What a cluster carries: these names never clash with a site's own properties.
CLUSTER_PROPERTIES = ("count", "population", "status")


@dataclass(frozen=True, slots=True)
class TileSource:
    """Where a layer's rows are: the catalog's table and geometry column."""

    table: str  # schema-qualified, from the catalog
    geometry_column: str


def tile_statement(
    layer: Layer, source: TileSource, properties: Sequence[str], z: int, x: int, y: int
) -> tuple[sql.Composed, dict[str, Any]]:
    """The one statement returning the MVT bytes of tile z/x/y (empty bytes when no feature)."""
    params: dict[str, Any] = {
        "z": z,
        "x": x,
        "y": y,
        "extent": EXTENT,
        "layer": layer.collection,
    }
    if layer.cluster_below is not None and z < layer.cluster_below:
        # No margin: each site is in exactly one cluster of a zoom level.
        return _cluster_statement(source, properties), {**params, "margin": 0.0, "cell": CLUSTER_CELL}
    return _features_statement(layer, source, properties, z), {
        **params,
        # ST_TileEnvelope's margin is a fraction of the tile's width.
        "margin": BUFFER / EXTENT,
        "buffer": BUFFER,
        # About half a pixel at this zoom, in degrees (the columns are in WGS 84).
        "tolerance": 180.0 / (2**z * EXTENT),
    }


# The tile in Web Mercator, and its search box (with the margin) in WGS 84, computed once.
_BOUNDS = sql.SQL(
    "WITH bounds AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS tile, "
    "ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326) AS search)"
)


def _table(source: TileSource) -> sql.Composable:
    return sql.Identifier(*source.table.split("."))


def _property(name: str) -> sql.Composable:
    """A plain column of the table as an MVT attribute (PostGIS writes an enum as its text)."""
    return sql.SQL("t.{}").format(sql.Identifier(name))


def _features_statement(layer: Layer, source: TileSource, properties: Sequence[str], z: int) -> sql.Composed:
    """One feature per row: points as they are, surfaces simplified for the zoom."""
    column = sql.SQL("t.{}").format(sql.Identifier(source.geometry_column))
    geometry = column
    if layer.geometry_dimension == 2 and z <= SIMPLIFY_UNTIL:
        geometry = sql.SQL("ST_Simplify({}, %(tolerance)s, true)").format(column)
    columns = [
        sql.SQL("ST_AsMVTGeom(ST_Transform({}, 3857), b.tile, %(extent)s, %(buffer)s, true) AS geom").format(
            geometry
        )
    ]
    columns += [_property(p) for p in properties]
    feature_id = sql.SQL("")
    if layer.feature_id:
        columns.append(sql.SQL("t.{} AS feature_id").format(sql.Identifier(layer.feature_id)))
        feature_id = sql.SQL(", 'feature_id'")
    return sql.SQL(
        "{bounds} SELECT ST_AsMVT(mvt, %(layer)s, %(extent)s, 'geom'{feature_id}) FROM ("
        "SELECT {columns} FROM {table} t, bounds b WHERE {column} && b.search"
        ") mvt WHERE mvt.geom IS NOT NULL"
    ).format(
        bounds=_BOUNDS,
        feature_id=feature_id,
        columns=sql.SQL(", ").join(columns),
        table=_table(source),
        column=column,
    )


def _cluster_statement(source: TileSource, properties: Sequence[str]) -> sql.Composed:
    """Points grouped on a grid of the tile: one point per cell with its count.

    The summed population and the dominant status are given only when the caller may read
    the sites' population and status.
    """
    column = sql.SQL("t.{}").format(sql.Identifier(source.geometry_column))
    inner = [sql.SQL("m.geom")]
    outer = [
        sql.SQL("ST_Point(round(avg(ST_X(p.geom))), round(avg(ST_Y(p.geom)))) AS geom"),
        sql.SQL("count(*)::integer AS count"),
    ]
    if "population_total" in properties:
        inner.append(sql.SQL("t.population_total"))
        outer.append(sql.SQL("coalesce(sum(p.population_total), 0)::integer AS population"))
    if "status" in properties:
        inner.append(sql.SQL("t.status"))
        outer.append(sql.SQL("(mode() WITHIN GROUP (ORDER BY p.status))::text AS status"))
    # OFFSET 0 keeps the planner from inlining the lateral subquery: each point is placed
    # on the tile once, not once per use (filter and both grid keys).
    return sql.SQL(
        "{bounds} SELECT ST_AsMVT(mvt, %(layer)s, %(extent)s, 'geom') FROM ("
        "SELECT {outer} FROM (SELECT {inner} FROM {table} t CROSS JOIN bounds b CROSS JOIN LATERAL ("
        "SELECT ST_AsMVTGeom(ST_Transform({column}, 3857), b.tile, %(extent)s, 0, true) AS geom OFFSET 0"
        ") m WHERE {column} && b.search) p "
        "WHERE p.geom IS NOT NULL "
        "GROUP BY floor(ST_X(p.geom) / %(cell)s), floor(ST_Y(p.geom) / %(cell)s)"
        ") mvt"
    ).format(
        bounds=_BOUNDS,
        outer=sql.SQL(", ").join(outer),
        inner=sql.SQL(", ").join(inner),
        table=_table(source),
        column=column,
    )


# The version of a collection's data (one parameter: the collection id). Row-level security
# hides the versions of collections the caller may not read (they count as 0; such a caller
# gets no tile anyway).
VERSION = sql.SQL("SELECT count(*) FROM resorption.collection_changes WHERE collection = %s")
