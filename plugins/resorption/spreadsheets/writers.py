"""Spreadsheet files from columns and rows of cells: XLSX (openpyxl) and CSV for French users.

XLSX: a row of section names (merged over their columns) above the column labels, frozen
panes, an auto-filter, column widths and date formats. CSV: UTF-8 with a BOM and `;`
separators (what a French spreadsheet opens without asking), one « Section – Colonne »
header, decimal commas. Both only need `section`, `label`, `kind` and `width` of a
column, so other exports can reuse them. `write_plain_csv` writes the CSV programs read
(the items' `f=csv`: commas, decimal points, JSON for lists). Every text cell of every
writer goes through `formulas.inert`: no cell we write is ever a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, Protocol

import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from resorption.spreadsheets.formulas import inert

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
MEDIA_TYPES = {"xlsx": XLSX, "csv": CSV}
SECTION_FILL = PatternFill("solid", fgColor="DDE5F0")
HEADER_FILL = PatternFill("solid", fgColor="F2F2F2")
FORMATS = {"date": "DD/MM/YYYY", "datetime": "DD/MM/YYYY HH:MM", "number": "0.000000"}


class SheetColumn(Protocol):
    """What the writers need of a column."""

    @property
    def section(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def width(self) -> int: ...


Progress = Callable[[int], None]


# A further sheet of a workbook: its title, columns and rows.
Sheet = tuple[str, Sequence[SheetColumn], Iterable[Sequence[Any]]]


def write_xlsx(
    output: IO[bytes],
    columns: Sequence[SheetColumn],
    rows: Iterable[Sequence[Any]],
    title: str,
    progress: Progress | None = None,
    more: Sequence[Sheet] = (),
) -> None:
    """Write into `output` an XLSX workbook: a sheet of sections, labels, then the rows; and the
    `more` sheets.

    Written as it goes (openpyxl's write-only mode): `rows` is read once, row by row, and no
    row is kept, so 100,000 sites take the memory of one.
    """
    workbook = Workbook(write_only=True)
    _fill(workbook.create_sheet(), columns, rows, title, progress)
    for more_title, more_columns, more_rows in more:
        _fill(workbook.create_sheet(), more_columns, more_rows, more_title, None)
    workbook.save(output)


def _fill(
    sheet: Any,
    columns: Sequence[SheetColumn],
    rows: Iterable[Sequence[Any]],
    title: str,
    progress: Progress | None,
) -> None:
    sheet.title = title[:31]  # Excel's limit
    # The sheet's head (widths, frozen panes) is written with its first row: set it before.
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "C3"  # the section and label rows, the id and the name stay in view
    sections: list[Any] = []
    start = 1
    for section, count in _runs(columns):
        for offset in range(count):
            top = WriteOnlyCell(sheet, value=xlsx_cell(section) if offset == 0 else None)
            top.font, top.fill = Font(bold=True), SECTION_FILL
            top.alignment = Alignment(horizontal="center")
            sections.append(top)
        if count > 1:
            first, last = get_column_letter(start), get_column_letter(start + count - 1)
            sheet.merged_cells.add(f"{first}1:{last}1")
        start += count
    sheet.append(sections)
    headers = []
    for column in columns:
        header = WriteOnlyCell(sheet, value=xlsx_cell(column.label))
        header.font, header.fill = Font(bold=True), HEADER_FILL
        header.alignment = Alignment(wrap_text=True, vertical="top")
        headers.append(header)
    sheet.append(headers)
    formats = {i: FORMATS[c.kind] for i, c in enumerate(columns) if c.kind in FORMATS}
    count = 0
    for count, row in enumerate(rows, start=1):
        values: list[Any] = [xlsx_cell(v) for v in row]
        for index, number_format in formats.items():
            if index < len(values) and values[index] is not None:
                formatted = WriteOnlyCell(sheet, value=values[index])
                formatted.number_format = number_format
                values[index] = formatted
        sheet.append(values)
        if progress:
            progress(count)
    last = get_column_letter(max(len(columns), 1))
    sheet.auto_filter.ref = f"A2:{last}{count + 2}"


def xlsx_cell(value: Any) -> Any:
    """A value as an XLSX cell: formula-like text made inert, characters Excel refuses removed."""
    value = inert(value)
    # openpyxl writes any text starting with "=" as a formula: after `inert`, none does.
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def write_csv[C](
    output: IO[bytes],
    columns: Sequence[C],
    rows: Iterable[Sequence[Any]],
    header: Callable[[C], str],
    progress: Progress | None = None,
) -> None:
    """Write into `output` a CSV file for French spreadsheets: BOM, `;`, decimal commas, ISO dates."""
    # Written as it goes (encoded on the way): no row is kept.
    text = io.TextIOWrapper(output, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
    writer.writerow([_csv_text(header(c)) for c in columns])
    for count, row in enumerate(rows, start=1):
        writer.writerow([_csv_text(v) for v in row])
        if progress:
            progress(count)
    text.flush()
    text.detach()  # `output` stays open, its owner's


def csv_bytes[C](columns: Sequence[C], rows: Iterable[Sequence[Any]], header: Callable[[C], str]) -> bytes:
    """A small CSV file for French spreadsheets (a page's table), in memory."""
    output = io.BytesIO()
    write_csv(output, columns, rows, header)
    return output.getvalue()


def write_plain_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file for programs (RFC 4180): commas, UTF-8 without BOM, decimal points, JSON lists."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow([_plain_text(h) for h in header])
    for row in rows:
        writer.writerow([_plain_text(v) for v in row])
    return output.getvalue().encode("utf-8")


def _plain_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return inert(orjson.dumps(value).decode())
    return str(inert(value))


def _csv_text(value: Any) -> str:
    value = inert(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".").replace(".", ",")
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _runs(columns: Sequence[SheetColumn]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for c in columns:
        if runs and runs[-1][0] == c.section:
            runs[-1] = (c.section, runs[-1][1] + 1)
        else:
            runs.append((c.section, 1))
    return runs
