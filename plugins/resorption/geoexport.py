"""Geographic files (GeoPackage, FlatGeobuf, GeoJSON) of a collection, as the caller reads it.

The rows come from ONE statement composed by the reader (`query.rows_statement`, with the
items endpoint's conditions: bbox, datetime and its time travel, CQL2 filter, q; the
caller's readable fields only), run in the caller's transaction, so that row-level security
and column privileges apply as for `/items`. PostgreSQL projects the geometries
(`ST_Transform`) and hands them over as WKB, batch by batch from a server-side cursor; each
batch becomes an Arrow record batch (each field typed from the catalog) that GDAL writes as
it comes (pyogrio's `write_arrow`: one layer, one pass), so the memory holds one batch
whatever the number of rows, for every format.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
from pyogrio import raw

from resorption import statements
from resorption.catalog import Field
from resorption.crs import Crs, lonlat_domain
from resorption.query import FeatureQuery, count_statement, rows_statement

SQL = statements.load("geoexport")

# Rows fetched at a time from the server-side cursor, written at a time (and between two
# progress reports).
BATCH = 5000
# The geometry column of the Arrow batches (GDAL reads it as WKB).
GEOMETRY = pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Format:
    """A file format of the exports: its GDAL driver, media type and file extension."""

    key: str
    driver: str
    media_type: str
    extension: str
    label: str


FORMATS: dict[str, Format] = {
    f.key: f
    for f in (
        Format("gpkg", "GPKG", "application/geopackage+sqlite3", "gpkg", "GeoPackage (QGIS, hors ligne)"),
        Format("flatgeobuf", "FlatGeobuf", "application/flatgeobuf", "fgb", "FlatGeobuf"),
        Format("geojson", "GeoJSON", "application/geo+json", "geojson", "GeoJSON"),
    )
}


def export(
    conn: psycopg.Connection,
    fq: FeatureQuery,
    fmt: Format,
    crs: Crs,
    path: Path,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Write every matching row into the file at `path`, batch by batch; how many it holds.
    `total`, the number of matching rows when the caller counted them already (progress)."""
    if total is None:
        statement, params = count_statement(fq, None)
        total = conn.execute(statement, params).fetchone()[0]
    schema = pa.schema([GEOMETRY, *(pa.field(f.name, _arrow_type(f)) for f in fq.properties)])
    layer_options: dict[str, str] = {}
    if fmt.driver == "GeoJSON" and crs.srid == 4326:
        layer_options["RFC7946"] = "YES"  # no "crs" member, longitude first
    if fmt.driver == "FlatGeobuf" and _may_lack_geometry(conn, fq, crs):
        # FlatGeobuf's spatial index cannot hold a feature without geometry (out of a UTM zone).
        layer_options["SPATIAL_INDEX"] = "NO"
    statement, params = rows_statement(fq, geometry=crs)
    written = 0

    def batches(cursor: psycopg.Cursor) -> Iterator[pa.RecordBatch]:
        nonlocal written
        while batch := cursor.fetchmany(BATCH):
            yield _record_batch(schema, fq.properties, batch)
            written += len(batch)
            if progress is not None:
                progress(written, total)

    # A server-side cursor: rows arrive by batch, not all at once.
    with conn.cursor(name="resorption_export") as cursor:
        cursor.execute(statement, params)
        collection = fq.collection
        raw.write_arrow(
            pa.RecordBatchReader.from_batches(schema, batches(cursor)),
            str(path),
            layer=collection.id,
            driver=fmt.driver,
            geometry_name=GEOMETRY.name,
            geometry_type=collection.geometry_type,
            crs=f"EPSG:{crs.srid}",
            encoding="UTF-8" if fmt.driver != "GPKG" else None,
            layer_options=layer_options or None,
            layer_metadata={"DESCRIPTION": collection.title.fr} if fmt.driver == "GPKG" else None,
        )
    return written


def _may_lack_geometry(conn: psycopg.Connection, fq: FeatureQuery, crs: Crs) -> bool:
    """Whether a row may come without geometry: the CRS covers a zone only, or one has none."""
    if lonlat_domain(crs.srid) is not None:
        return True
    statement, params = rows_statement(fq, geometry=crs)
    exists = SQL.any_without_geometry.format(statement)
    return bool(conn.execute(exists, params).fetchone()[0])


def _arrow_type(f: Field) -> pa.DataType:
    """A field's type in the file: integers, booleans, numbers, dates, UTC timestamps; lists and
    objects as JSON text (neither GeoPackage nor FlatGeobuf has list types); else text."""
    if f.type == "integer":
        return pa.int64()
    if f.type == "boolean":
        return pa.bool_()
    if f.type == "number":
        return pa.float64()
    if f.format == "date":
        return pa.date32()
    if f.format == "date-time":
        return pa.timestamp("ms", tz="UTC")
    return pa.string()


def _record_batch(
    schema: pa.Schema, fields: Sequence[Field], rows: Sequence[tuple[Any, ...]]
) -> pa.RecordBatch:
    """One batch of rows (geometry as WKB first, then the fields) as an Arrow record batch."""
    columns = [pa.array([bytes(r[0]) if r[0] is not None else None for r in rows], pa.binary())]
    for i, f in enumerate(fields, start=1):
        values = [_value(f, r[i]) for r in rows]
        columns.append(pa.array(values, schema.field(i).type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _value(f: Field, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "integer":
        return int(value)
    if f.type == "boolean":
        return bool(value)
    if f.type == "number":
        return float(value)
    if f.format == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if f.format == "date-time":
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    if f.type == "array" and isinstance(value, str):
        value = _array_literal(value)  # an array of one of our enums: psycopg hands its text
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _array_literal(text: str) -> list[str] | str:
    """The items of a PostgreSQL array literal (`{french,european}`), else the text itself."""
    if not (text.startswith("{") and text.endswith("}")):
        return text
    inner = text[1:-1]
    if not inner:
        return []
    return next(csv.reader([inner], quotechar='"', escapechar="\\"))
