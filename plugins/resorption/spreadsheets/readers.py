"""Spreadsheet files back into rows of cells: XLSX (openpyxl, streamed) and CSV (`;` or `,`,
UTF-8 or Windows-1252), within limits checked before and while reading.

A 5 KB XLSX can declare a sheet of 1,048,576 × 16,384 cells (`<dimension>`), which openpyxl
fills with empty cells, and a zip member can inflate a thousandfold. So the archive's
declared sizes and compression ratios are checked before anything is decompressed (Python's
zipfile never inflates a member past its declared size); the sheet is then read row by row,
`<dimension>` ignored, and reading stops at the first row or column past its limit. Every
refusal says which limit and its value (settings.Limits, README « Sécurité »).
"""

from __future__ import annotations

import csv
import gc
import io
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any
from xml.etree.ElementTree import ParseError

from openpyxl import load_workbook
from openpyxl.utils.exceptions import CellCoordinatesException, InvalidFileException

from resorption.errors import InvalidParameter
from resorption.settings import Limits, french_count, french_size

FORMATS = ("xlsx", "csv")

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


def read_rows(content: bytes, fmt: str, limits: Limits) -> list[list[Any]]:
    """Every row of the file's first sheet, as lists of cells (empty trailing rows dropped)."""
    check_file_size(len(content), limits)
    rows = _xlsx(content, limits) if fmt == "xlsx" else _csv(content, limits)
    while rows and all(v is None or v == "" for v in rows[-1]):
        rows.pop()
    return rows


def check_file_size(size: int, limits: Limits) -> None:
    """A file larger than RESORPTION_IMPORT_MAX_BYTES is refused before it is read."""
    if size > limits.import_max_bytes:
        raise InvalidParameter(
            f"Le fichier pèse {french_size(size)} ; {french_size(limits.import_max_bytes)} au plus "
            "par import : découpez-le."
        )


def _xlsx(content: bytes, limits: Limits) -> list[list[Any]]:
    _check_archive(content, limits)
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except _XLSX_ERRORS:
        raise InvalidParameter(UNREADABLE_XLSX) from None
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # read the rows that are there, not those <dimension> claims
        return _bounded(sheet.iter_rows(values_only=True), limits, padded=True)
    except _XLSX_ERRORS:
        raise InvalidParameter(UNREADABLE_XLSX) from None
    finally:
        workbook.close()
        # openpyxl leaves XML parsers (xml.etree.iterparse) in reference cycles, always when it
        # reads <dimension> and again on a damaged sheet. Collected now, while the process
        # runs: one left for the interpreter's exit crashes it there (SIGSEGV in CPython
        # 3.12.1's _elementtree), so that a gunicorn worker would die when it stops.
        gc.collect()


def _check_archive(content: bytes, limits: Limits) -> None:
    """Members, total inflated size and compression ratios, from the zip's directory alone."""
    # Counted on the raw bytes (central directory signatures) before zipfile builds an
    # object per member: a 20 MB archive can list hundreds of thousands.
    if content.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:
        raise InvalidParameter(
            f"L'archive XLSX contient plus de {french_count(MAX_ZIP_MEMBERS)} fichiers : "
            "ce n'est pas un classeur ordinaire."
        )
    try:
        members = zipfile.ZipFile(io.BytesIO(content)).infolist()
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


def _csv(content: bytes, limits: Limits) -> list[list[Any]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252", errors="replace")  # what older French spreadsheets write
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        return _bounded(reader, limits, padded=False)
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise InvalidParameter(
                f"Le fichier CSV a, ligne {french_count(reader.line_num)}, une cellule de plus de "
                f"{french_count(csv.field_size_limit())} caractères : vérifiez les guillemets."
            ) from None
        raise InvalidParameter(
            f"Le fichier CSV est mal formé ligne {french_count(reader.line_num)} : vérifiez les guillemets."
        ) from None


def _bounded(rows: Iterable[Sequence[Any]], limits: Limits, padded: bool) -> list[list[Any]]:
    """The rows, each cut after its last value; refused at the first row or column past a limit.

    Empty rows count (and are kept, so that row numbers stay those of the file): a sheet whose
    blank rows go far below its data is refused rather than walked a million rows down.
    openpyxl pads an XLSX row up to its last cell (`padded`), even an empty formatted one in
    column XFD: such a row is refused at once rather than padded row after row (16,384 cells
    each). A CSV row is as long as its text, so its empty trailing fields are just dropped.
    """
    max_rows = limits.import_max_rows + HEADER_ROWS
    max_columns = limits.import_max_columns
    kept: list[list[Any]] = []
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
        kept.append(list(row[:width]))
    return kept


def _last_value(row: Sequence[Any], width: int) -> int:
    """How many cells of `row[:width]` remain once the empty trailing ones are dropped."""
    while width and (row[width - 1] is None or row[width - 1] == ""):
        width -= 1
    return width
