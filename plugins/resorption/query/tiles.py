"""Vector tiles: the one statement that builds a tile of a collection, as the caller reads it.

A tile is built by PostGIS alone (`ST_TileEnvelope`, `ST_AsMVTGeom`, `ST_AsMVT`); Python
passes its bytes through. The table, the geometry column and the attributes come from the
catalog; what each layer shows comes from `resorption.tile_layers`. The envelope is
transformed once to the columns' SRID (4326) so that `&&` uses their GiST index; the columns
are transformed to Web Mercator only for the rows found. Values are parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from resorption.catalog import Collection
from resorption.tile_layers import BUFFER, CLUSTER_CELL, EXTENT, LABEL_PROPERTIES, SIMPLIFY_UNTIL, Layer


def tile_statement(
    collection: Collection, layer: Layer, properties: Sequence[str], z: int, x: int, y: int
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
        return _cluster_statement(collection, properties), {**params, "margin": 0.0, "cell": CLUSTER_CELL}
    features = _features_select(collection, layer, properties, z)
    statement = sql.SQL("{} {}").format(_BOUNDS, features)
    labels = [p for p in LABEL_PROPERTIES if p in properties]
    if layer.labels_from is not None and z >= layer.labels_from and "name" in labels:
        # Two MVT layers in one tile are their two messages one after the other.
        statement = sql.SQL("{} SELECT coalesce(({}), '') || coalesce(({}), '')").format(
            _BOUNDS, features, _labels_select(collection, labels)
        )
        params["label_layer"] = layer.label_layer
    return statement, {
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


def _attribute(collection: Collection, name: str, alias: str | None = None) -> sql.Composable:
    """A catalog field as an MVT attribute (PostGIS writes an enum as its text)."""
    return sql.SQL("{} AS {}").format(collection.fields[name].expression, sql.Identifier(alias or name))


def _features_select(collection: Collection, layer: Layer, properties: Sequence[str], z: int) -> sql.Composed:
    """One feature per row: points as they are, surfaces simplified for the zoom."""
    column = collection.geometry_expression
    geometry = column
    if layer.geometry_dimension == 2 and z <= SIMPLIFY_UNTIL:
        geometry = sql.SQL("ST_Simplify({}, %(tolerance)s, true)").format(column)
    columns = [
        sql.SQL("ST_AsMVTGeom(ST_Transform({}, 3857), b.tile, %(extent)s, %(buffer)s, true) AS geom").format(
            geometry
        )
    ]
    columns += [_attribute(collection, p) for p in properties]
    feature_id = sql.SQL("")
    if layer.feature_id:
        columns.append(_attribute(collection, layer.feature_id, "feature_id"))
        feature_id = sql.SQL(", 'feature_id'")
    return sql.SQL(
        "SELECT ST_AsMVT(mvt, %(layer)s, %(extent)s, 'geom'{feature_id}) FROM ("
        "SELECT {columns} FROM {table} t, bounds b WHERE {column} && b.search"
        ") mvt WHERE mvt.geom IS NOT NULL"
    ).format(
        feature_id=feature_id,
        columns=sql.SQL(", ").join(columns),
        table=collection.table_sql,
        column=column,
    )


def _labels_select(collection: Collection, labels: Sequence[str]) -> sql.Composed:
    """A layer of label points, one inside each surface (ST_PointOnSurface), for the same tile."""
    column = collection.geometry_expression
    return sql.SQL(
        "SELECT ST_AsMVT(lbl, %(label_layer)s, %(extent)s, 'geom') FROM ("
        "SELECT ST_AsMVTGeom(ST_Transform(ST_PointOnSurface({column}), 3857), b.tile, %(extent)s, "
        "%(buffer)s, true) AS geom, {columns} FROM {table} t, bounds b WHERE {column} && b.search"
        ") lbl WHERE lbl.geom IS NOT NULL"
    ).format(
        column=column,
        columns=sql.SQL(", ").join(_attribute(collection, p) for p in labels),
        table=collection.table_sql,
    )


def _cluster_statement(collection: Collection, properties: Sequence[str]) -> sql.Composed:
    """Points grouped on a grid of the tile: one point per cell with its count.

    The summed population and the dominant status are given only when the caller may read
    the sites' population and status.
    """
    column = collection.geometry_expression
    inner = [sql.SQL("m.geom")]
    outer = [
        sql.SQL("ST_Point(round(avg(ST_X(p.geom))), round(avg(ST_Y(p.geom)))) AS geom"),
        sql.SQL("count(*)::integer AS count"),
    ]
    if "population_total" in properties:
        inner.append(_attribute(collection, "population_total"))
        outer.append(sql.SQL("coalesce(sum(p.population_total), 0)::integer AS population"))
    if "status" in properties:
        inner.append(_attribute(collection, "status"))
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
        table=collection.table_sql,
        column=column,
    )
