"""Spreadsheet files back into rows of cells: XLSX (openpyxl, streamed), CSV (`;` or `,`,
UTF-8 or Windows-1252) and GeoPackage (pyogrio, by batches: the fields' names, then longitude
and latitude of each point), within limits checked before and while reading.

Every reader reads a file on disk as it goes (`rows` is a generator): an import of 100,000
rows holds a row (a batch, for a GeoPackage) at a time, never the whole sheet.

A 5 KB XLSX can declare a sheet of 1,048,576 × 16,384 cells (`<dimension>`), which openpyxl
fills with empty cells, and a zip member can inflate a thousandfold. So the archive's
declared sizes and compression ratios are checked before anything is decompressed (Python's
zipfile never inflates a member past its declared size); the sheet is then read row by row,
`<dimension>` ignored, and reading stops at the first row or column past its limit. Every
refusal says which limit and its value (settings.Limits, README « Sécurité »).
"""

from __future__ import annotations

import codecs
import csv
import gc
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import numpy as np
import pyogrio
import shapely
from openpyxl import load_workbook
from openpyxl.utils.exceptions import CellCoordinatesException, InvalidFileException
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS, Transformer

from resorption.errors import InvalidParameter
from resorption.settings import Limits, french_count, french_size

FORMATS = ("xlsx", "csv", "gpkg")
# Features of a GeoPackage read at a time.
GPKG_BATCH = 2000
# Bytes of a file read at a time (counting zip signatures, checking an encoding).
CHUNK = 1024 * 1024

# Rows above the header that an import skips (a row of sections, a title, blank lines).
HEADER_ROWS = 10
# An XLSX holds a dozen parts; more than this is not a workbook anyone saved.
MAX_ZIP_MEMBERS = 1_000
# Sheets deflate 5 to 30 times; a zip bomb, about a thousand. Members under 1 MB are not
# judged (a small XML file of repeated markup may deflate a lot, and cannot hurt).
MAX_COMPRESSION_RATIO = 200
RATIO_FLOOR_BYTES = 1024 * 1024

UNREADABLE_XLSX = (
    "Le fichier n'est pas un classeur XLSX lisible : enregistrez-le au format Excel (.xlsx) "
    "ou choisissez le format csv."
)
# What openpyxl and the XML parser raise on a damaged workbook.
_XLSX_ERRORS = (
    InvalidFileException,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    OSError,
    ValueError,
    TypeError,
    IndexError,
    ParseError,
    CellCoordinatesException,
    EOFError,
)


def rows(path: Path, fmt: str, limits: Limits) -> Iterator[list[Any]]:
    """Every row of the file's first sheet (or layer), as lists of cells, read as it goes.

    A generator: close it (`contextlib.closing`) when stopping early, so that the file is closed.
    """
    check_file_size(path.stat().st_size, limits)
    if fmt == "xlsx":
        yield from _xlsx(path, limits)
    elif fmt == "gpkg":
        yield from _bounded(_gpkg(path), limits, padded=False)
    else:
        yield from _csv(path, limits)


def check_file_size(size: int, limits: Limits) -> None:
    """A file larger than RESORPTION_IMPORT_MAX_BYTES is refused before it is read."""
    if size > limits.import_max_bytes:
        raise InvalidParameter(
            f"Le fichier pèse {french_size(size)} ; {french_size(limits.import_max_bytes)} au plus "
            "par import : découpez-le."
        )


def _xlsx(path: Path, limits: Limits) -> Iterator[list[Any]]:
    _check_archive(path, limits)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except _XLSX_ERRORS:
        raise InvalidParameter(UNREADABLE_XLSX) from None
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # read the rows that are there, not those <dimension> claims
        yield from _bounded(sheet.iter_rows(values_only=True), limits, padded=True)
    except _XLSX_ERRORS:
        raise InvalidParameter(UNREADABLE_XLSX) from None
    finally:
        workbook.close()
        # openpyxl leaves XML parsers (xml.etree.iterparse) in reference cycles, always when it
        # reads <dimension> and again on a damaged sheet. Collected now, while the process
        # runs: one left for the interpreter's exit crashes it there (SIGSEGV in CPython
        # 3.12.1's _elementtree), so that a gunicorn worker would die when it stops.
        gc.collect()


def _signatures(path: Path, signature: bytes) -> int:
    """How many times `signature` occurs in the file, read by chunks."""
    found, tail = 0, b""
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            # The tail of the chunk before, shorter than a signature, holds none by itself: only
            # one that straddles the two chunks is counted with it.
            window = tail + chunk
            found += window.count(signature)
            tail = window[-(len(signature) - 1) :]
    return found


def _check_archive(path: Path, limits: Limits) -> None:
    """Members, total inflated size and compression ratios, from the zip's directory alone."""
    # Counted on the raw bytes (central directory signatures) before zipfile builds an
    # object per member: a 20 MB archive can list hundreds of thousands.
    if _signatures(path, b"PK\x01\x02") > MAX_ZIP_MEMBERS:
        raise InvalidParameter(
            f"L'archive XLSX contient plus de {french_count(MAX_ZIP_MEMBERS)} fichiers : "
            "ce n'est pas un classeur ordinaire."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except _XLSX_ERRORS:
        raise InvalidParameter(UNREADABLE_XLSX) from None
    inflated = sum(m.file_size for m in members)
    if inflated > limits.import_max_uncompressed_bytes:
        raise InvalidParameter(
            f"Le classeur décompressé pèserait {french_size(inflated)} ; "
            f"{french_size(limits.import_max_uncompressed_bytes)} au plus : découpez le fichier."
        )
    for m in members:
        ratio = m.file_size // max(m.compress_size, 1)
        if m.file_size > RATIO_FLOOR_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise InvalidParameter(
                f"Le classeur est anormalement compressé ({m.filename} : {french_count(ratio)} pour 1 ; "
                f"{MAX_COMPRESSION_RATIO} pour 1 au plus) : enregistrez-le de nouveau depuis votre tableur."
            )


def _encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes so, else Windows-1252 (what older
    French spreadsheets write), checked by chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as source:
        try:
            while chunk := source.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8-sig"


def _csv(path: Path, limits: Limits) -> Iterator[list[Any]]:
    encoding = _encoding(path)
    with path.open(encoding=encoding, errors="replace", newline="") as text:
        first = text.readline()
        text.seek(0)
        delimiter = ";" if first.count(";") >= first.count(",") else ","
        reader = csv.reader(text, delimiter=delimiter)
        try:
            yield from _bounded(reader, limits, padded=False)
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise InvalidParameter(
                    f"Le fichier CSV a, ligne {french_count(reader.line_num)}, une cellule de plus de "
                    f"{french_count(csv.field_size_limit())} caractères : vérifiez les guillemets."
                ) from None
            raise InvalidParameter(
                f"Le fichier CSV est mal formé ligne {french_count(reader.line_num)} : "
                "vérifiez les guillemets."
            ) from None


UNREADABLE_GPKG = (
    "Le fichier n'est pas un GeoPackage lisible avec une couche de points : exportez-le de nouveau "
    "(processus export-collection, format gpkg) ou depuis QGIS."
)


def _gpkg(path: Path) -> Iterator[list[Any]]:
    """The first layer of a GeoPackage: a header row (the fields' names, then longitude and
    latitude), then a row per feature, its point in longitude and latitude (WGS 84)."""
    try:
        info = pyogrio.read_info(path, layer=0)
    except (DataSourceError, DataLayerError):
        raise InvalidParameter(UNREADABLE_GPKG) from None
    names = [str(n) for n in info["fields"]]
    # GDAL hands booleans with nulls as floats (1.0, 0.0, NaN): told back as booleans.
    booleans = [str(t) == "bool" for t in info["dtypes"]]
    to_wgs84 = None
    if info["crs"] and CRS.from_user_input(info["crs"]).to_epsg() != 4326:
        to_wgs84 = Transformer.from_crs(info["crs"], "EPSG:4326", always_xy=True)
    yield [*names, "longitude", "latitude"]
    done = 0
    total = info["features"]
    while done < total:
        try:
            _, _, geometries, values = pyogrio.raw.read(
                path, layer=0, skip_features=done, max_features=GPKG_BATCH, datetime_as_string=True
            )
        except (DataSourceError, DataLayerError):
            raise InvalidParameter(UNREADABLE_GPKG) from None
        if len(geometries) == 0:
            return
        points = shapely.from_wkb(geometries)
        xs, ys = shapely.get_x(points), shapely.get_y(points)  # NaN where not a point
        if to_wgs84 is not None:
            xs, ys = to_wgs84.transform(xs, ys)
        for i in range(len(geometries)):
            cells = [_gpkg_cell(column[i], boolean) for column, boolean in zip(values, booleans, strict=True)]
            lon, lat = float(xs[i]), float(ys[i])
            yield [*cells, None if np.isnan(lon) else lon, None if np.isnan(lat) else lat]
        done += len(geometries)


def _gpkg_cell(value: Any, boolean: bool) -> Any:
    """A GeoPackage value as a spreadsheet cell: lists (kept as JSON text) as « a, b »."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if boolean and isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            return value
        if isinstance(items, list) and all(not isinstance(v, list | dict) for v in items):
            return ", ".join(str(v) for v in items)
    return value


def _bounded(rows: Iterable[Sequence[Any]], limits: Limits, padded: bool) -> Iterator[list[Any]]:
    """The rows, each cut after its last value; refused at the first row or column past a limit.

    Empty rows count (and are kept, so that row numbers stay those of the file): a sheet whose
    blank rows go far below its data is refused rather than walked a million rows down.
    openpyxl pads an XLSX row up to its last cell (`padded`), even an empty formatted one in
    column XFD: such a row is refused at once rather than padded row after row (16,384 cells
    each). A CSV row is as long as its text, so its empty trailing fields are just dropped.
    """
    max_rows = limits.import_max_rows + HEADER_ROWS
    max_columns = limits.import_max_columns
    for number, row in enumerate(rows, start=1):
        if number > max_rows:
            raise InvalidParameter(
                f"Le fichier a des lignes au-delà de la ligne {french_count(max_rows)} (lignes vides "
                f"mises en forme comprises) ; {french_count(limits.import_max_rows)} lignes de sites au "
                "plus par import : supprimez les lignes en trop ou découpez le fichier."
            )
        width = len(row) if padded else _last_value(row, len(row))
        if width > max_columns:
            empty = row[width - 1] is None or row[width - 1] == ""
            cell = "une cellule vide mais mise en forme" if empty else "une valeur"
            raise InvalidParameter(
                f"La ligne {french_count(number)} a {cell} en colonne {french_count(width)} ; "
                f"{french_count(max_columns)} colonnes au plus : supprimez les colonnes en trop."
            )
        width = _last_value(row, width)
        yield list(row[:width])


def _last_value(row: Sequence[Any], width: int) -> int:
    """How many cells of `row[:width]` remain once the empty trailing ones are dropped."""
    while width and (row[width - 1] is None or row[width - 1] == ""):
        width -= 1
    return width
