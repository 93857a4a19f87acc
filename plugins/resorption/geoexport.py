"""Geographic files (GeoPackage, FlatGeobuf, GeoJSON) of a collection, as the caller reads it.

The rows come from ONE statement composed by the reader (`query.rows_statement`, with the
items endpoint's conditions: bbox, datetime and its time travel, CQL2 filter, q; the
caller's readable fields only), run in the caller's transaction, so that row-level security
and column privileges apply as for `/items`. PostgreSQL projects the geometries
(`ST_Transform`) and hands them over as WKB; pyogrio (GDAL) writes them with typed columns,
each field's type taken from the catalog.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pyogrio import raw

from resorption.catalog import Field
from resorption.crs import Crs
from resorption.query import FeatureQuery, count_statement, rows_statement

# Rows fetched at a time from the server-side cursor, written at a time (and between two
# progress reports).
BATCH = 5000
# Drivers GDAL appends to batch after batch: the file grows while the memory holds one batch.
# FlatGeobuf builds its spatial index from every feature at once (and drops it when a feature
# has no geometry), and GDAL's GeoJSON driver reloads the whole file to append: their rows are
# gathered first.
APPENDABLE = frozenset({"GPKG"})
# GDAL's time zone flag for UTC (pyogrio's `gdal_tz_offsets`: 100 + quarter hours).
GDAL_UTC = 100

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


@dataclass(frozen=True, slots=True)
class GeoFile:
    """A written file: its bytes and how many features it holds."""

    content: bytes
    features: int


def read_rows(
    conn: psycopg.Connection, fq: FeatureQuery, crs: Crs, progress: Progress | None = None
) -> tuple[list[bytes | None], list[tuple[Any, ...]]]:
    """The WKB geometries and the values of every matching row, reporting progress by batch."""
    statement, params = count_statement(fq, None)
    total = conn.execute(statement, params).fetchone()[0]
    statement, params = rows_statement(fq, geometry=crs)
    geometries: list[bytes | None] = []
    values: list[tuple[Any, ...]] = []
    # A server-side cursor: rows arrive by batch, not all at once.
    with conn.cursor(name="resorption_export") as cursor:
        cursor.execute(statement, params)
        while batch := cursor.fetchmany(BATCH):
            for row in batch:
                geometries.append(bytes(row[0]) if row[0] is not None else None)
                values.append(row[1:])
            if progress is not None:
                progress(len(values), total)
    return geometries, values


def export(
    conn: psycopg.Connection, fq: FeatureQuery, fmt: Format, crs: Crs, progress: Progress | None = None
) -> GeoFile:
    """The file of every matching row, read from a server-side cursor and written batch by batch
    (for the formats GDAL appends to: APPENDABLE), reporting progress by batch."""
    if fmt.driver not in APPENDABLE:
        geometries, values = read_rows(conn, fq, crs, progress)
        return write_file(fq, fmt, crs, geometries, values)
    statement, params = count_statement(fq, None)
    total = conn.execute(statement, params).fetchone()[0]
    statement, params = rows_statement(fq, geometry=crs)
    written = 0
    with tempfile.TemporaryDirectory(prefix="resorption-export-") as directory:
        path = Path(directory) / f"{fq.collection.id}.{fmt.extension}"
        with conn.cursor(name="resorption_export") as cursor:
            cursor.execute(statement, params)
            while True:
                batch = cursor.fetchmany(BATCH)
                if not batch and written > 0:
                    break
                geometries = [bytes(row[0]) if row[0] is not None else None for row in batch]
                _write(path, fq, fmt, crs, geometries, [row[1:] for row in batch], append=written > 0)
                written += len(batch)
                if progress is not None:
                    progress(written, total)
                if not batch:
                    break
        return GeoFile(path.read_bytes(), written)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def column(f: Field, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """One field as a typed array and its null mask (None when nulls need none).

    Integers, booleans: int64 / bool with a mask; numbers: float64 (NaN is null); dates:
    datetime64[D]; timestamps: datetime64[ms] in UTC; lists and objects: JSON text (neither
    GeoPackage nor FlatGeobuf has list types); everything else: text.
    """
    missing = np.array([v is None for v in values], dtype=bool)
    if f.type == "integer":
        return np.array([0 if v is None else int(v) for v in values], dtype="int64"), missing
    if f.type == "boolean":
        return np.array([bool(v) for v in values], dtype=bool), missing
    if f.type == "number":
        floats = [np.nan if v is None else float(v) for v in values]
        return np.array(floats, dtype="float64"), None
    if f.format == "date":
        days = [np.datetime64("NaT") if v is None else np.datetime64(_date(v), "D") for v in values]
        return np.array(days, dtype="datetime64[D]"), None
    if f.format == "date-time":
        instants = [np.datetime64("NaT") if v is None else np.datetime64(_utc(v), "ms") for v in values]
        return np.array(instants, dtype="datetime64[ms]"), None
    return np.array([_text(v) for v in values], dtype=object), None


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _utc(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def write_file(
    fq: FeatureQuery,
    fmt: Format,
    crs: Crs,
    geometries: list[bytes | None],
    values: list[tuple[Any, ...]],
) -> GeoFile:
    """Write the rows with GDAL into a temporary file and return its bytes."""
    with tempfile.TemporaryDirectory(prefix="resorption-export-") as directory:
        path = Path(directory) / f"{fq.collection.id}.{fmt.extension}"
        _write(path, fq, fmt, crs, geometries, values, append=False)
        content = path.read_bytes()
    return GeoFile(content, len(values))


def _write(
    path: Path,
    fq: FeatureQuery,
    fmt: Format,
    crs: Crs,
    geometries: list[bytes | None],
    values: list[tuple[Any, ...]],
    append: bool,
) -> None:
    """Write (or append) rows with GDAL to the file at `path`."""
    fields = list(fq.properties)
    arrays: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    for i, f in enumerate(fields):
        array, mask = column(f, [row[i] for row in values])
        arrays.append(array)
        masks.append(mask)
    offsets = {
        f.name: np.full(len(values), GDAL_UTC, dtype="int32") for f in fields if f.format == "date-time"
    }
    layer_options: dict[str, str] = {}
    if fmt.driver == "GeoJSON" and crs.srid == 4326:
        layer_options["RFC7946"] = "YES"  # no "crs" member, longitude first
    if fmt.driver == "FlatGeobuf" and any(g is None for g in geometries):
        # FlatGeobuf's spatial index cannot hold a feature without geometry (out of a UTM zone).
        layer_options["SPATIAL_INDEX"] = "NO"
    collection = fq.collection
    raw.write(
        str(path),
        np.array(geometries, dtype=object),
        arrays,
        [f.name for f in fields],
        field_mask=masks,
        layer=collection.id,
        driver=fmt.driver,
        geometry_type=collection.geometry_type,
        crs=f"EPSG:{crs.srid}",
        encoding="UTF-8" if fmt.driver != "GPKG" else None,
        layer_options=(layer_options or None) if not append else None,
        layer_metadata={"DESCRIPTION": collection.title.fr} if fmt.driver == "GPKG" and not append else None,
        gdal_tz_offsets=offsets or None,
        append=append,
    )
