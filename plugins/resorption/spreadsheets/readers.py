"""Spreadsheet files back into rows of cells: XLSX (openpyxl) and CSV (`;` or `,`, UTF-8 or Windows-1252)."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from resorption.errors import InvalidParameter

FORMATS = ("xlsx", "csv")


def read_rows(content: bytes, fmt: str) -> list[list[Any]]:
    """Every row of the file's first sheet, as lists of cells (empty trailing rows dropped)."""
    rows = _xlsx(content) if fmt == "xlsx" else _csv(content)
    while rows and all(v is None or v == "" for v in rows[-1]):
        rows.pop()
    return rows


def _xlsx(content: bytes) -> list[list[Any]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise InvalidParameter(
            "Le fichier n'est pas un classeur XLSX lisible : enregistrez-le au format Excel (.xlsx) "
            "ou choisissez le format csv."
        ) from None
    try:
        return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def _csv(content: bytes) -> list[list[Any]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252", errors="replace")  # what older French spreadsheets write
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    try:
        return [list(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    except csv.Error as exc:
        raise InvalidParameter(f"Le fichier CSV est mal formé ({exc}) : vérifiez les guillemets.") from None
