"""`export-actions`: the caller's resorption actions as a spreadsheet (XLSX).

One sheet "National" with every action the caller may export, then one sheet per
département (an action working in several départements appears on each of their sheets,
among those the caller may export), and, for those who may read the finances, a sheet
"Financements" with the yearly funding by type. The columns are the fields of
`collections/actions.yml` the caller may read, with their French labels and values (linked
sites, pilots and operators, latest indicators…): a field the caller may not read is absent,
never blank. It reads as the Features API does (role, row-level security).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from psycopg import sql

from resorption import statements
from resorption.caller import Caller
from resorption.catalog import Field
from resorption.clock import PARIS
from resorption.errors import Forbidden
from resorption.job_files import temporary
from resorption.processes.base import Inputs
from resorption.processes.export_jobs import (
    ExportFile,
    ExportProcessor,
    check_size,
    filename,
)
from resorption.query import FeatureQuery, count_statement, rows_statement
from resorption.spreadsheets.writers import XLSX, xlsx_cell

SQL = statements.load("processes_export_actions")

NATIONAL_SHEET = "National"
FINANCES_SHEET = "Financements"
# The finances of each action, shown on a sheet of their own rather than in a cell.
FINANCES_FIELD = "finances"
# The départements an action works in (its sheets), from the catalog.
DEPARTEMENTS_FIELD = "departement_codes"
FUNDING_TYPES = {
    "state": "État",
    "dedicated_resorption": "Crédits dédiés à la résorption",
    "local_authority": "Collectivité territoriale",
    "european": "Fonds européens",
    "private": "Financement privé",
    "other": "Autre",
}
EUROS = '#,##0.00 "€"'
HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "export-actions",
    "title": "Exporter les actions (tableur XLSX)",
    "description": (
        "Tableur des actions de résorption que vous pouvez exporter : une feuille « National » "
        "avec toutes vos actions, une feuille par département, et, si vous avez accès aux "
        "financements, une feuille « Financements » (budget et dépenses par année et par type). "
        "Colonnes en français : sites concernés, pilotes et opérateurs, derniers indicateurs… "
        "Demande le droit d'exporter. Peut s'exécuter en tâche de fond (« Prefer: respond-async »)."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["export", "actions", "tableur", "XLSX"],
    "links": [],
    "inputs": {},
    "outputs": {
        "file": {
            "title": "Tableur des actions",
            "description": "Le fichier XLSX, à télécharger.",
            "schema": {"type": "string", "format": "binary", "contentMediaType": XLSX},
        }
    },
    "example": {"inputs": {}},
}


def cell_value(f: Field, value: Any) -> Any:
    """A database value as a spreadsheet cell: French labels for codes, lists as text."""
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(f.enum.get(str(v), v)) for v in value)
    if f.enum:
        return f.enum.get(str(value), str(value))
    if isinstance(value, dt.datetime):
        # Excel knows no time zones: the French time of the instant.
        return value.astimezone(PARIS).replace(tzinfo=None) if value.tzinfo else value
    if f.type == "number":
        return float(value)
    return value


def sheet_title(code: str, name: str | None, taken: set[str]) -> str:
    """A sheet name Excel accepts (31 characters, none of []:*?/\\), unique in the workbook."""
    title = re.sub(r"[\[\]:*?/\\]", " ", f"{code} - {name}" if name else code)[:31].strip()
    while title in taken:
        title = title[:28] + "…"
    taken.add(title)
    return title


# Rows fetched at a time from the server-side cursor (and the rows that set the widths).
BATCH = 200


def _widths(headers: Sequence[str], lines: Sequence[Sequence[Any]]) -> list[float]:
    """Reasonable column widths: the longest of the header and of the first rows' values."""
    return [
        min(max(max([len(str(h))] + [len(str(line[i] or "")) for line in lines]) + 2, 10), 60)
        for i, h in enumerate(headers)
    ]


class _Sheet:
    """A write-only sheet: headers in bold, frozen and filterable; rows appended as they come."""

    def __init__(
        self,
        workbook: Workbook,
        title: str,
        headers: Sequence[str],
        formats: Sequence[str],
        widths: Sequence[float],
    ) -> None:
        self.sheet = workbook.create_sheet(title)
        self.formats = formats
        self.width = len(headers)
        self.rows = 0
        for index, width in enumerate(widths, start=1):
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self.sheet.freeze_panes = "B2"
        cells = []
        for header in headers:
            cell = WriteOnlyCell(self.sheet, value=xlsx_cell(header))
            cell.font, cell.fill = Font(bold=True), HEADER_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            cells.append(cell)
        self.sheet.append(cells)

    def append(self, line: Sequence[Any]) -> None:
        """One row; text typed by users is never a formula ("=HYPERLINK(…)" stays text)."""
        cells: list[Any] = []
        for value, number_format in zip(line, self.formats, strict=False):
            cell = xlsx_cell(value)
            if number_format and cell is not None:
                cell = WriteOnlyCell(self.sheet, value=cell)
                cell.number_format = number_format
            cells.append(cell)
        self.sheet.append(cells)
        self.rows += 1

    def close(self) -> None:
        """The filter over every row written."""
        if self.rows:
            self.sheet.auto_filter.ref = f"A1:{get_column_letter(max(self.width, 1))}{self.rows + 1}"


def _format(f: Field) -> str:
    if f.format == "date":
        return "dd/mm/yyyy"
    if f.format == "date-time":
        return "dd/mm/yyyy hh:mm"
    if f.type == "number":
        return EUROS
    return ""


class Processor(ExportProcessor):
    """Export the caller's actions as an XLSX workbook."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def export(self, caller: Caller, inputs: Inputs) -> ExportFile:
        """Read the actions as the caller, one sheet per département, audit."""
        scope = caller.export_scope()
        inputs.fail_if_invalid()
        actions = caller.catalog["actions"]
        if not caller.may_read(actions):
            raise Forbidden("Votre rôle ne vous permet pas de lire les actions : il n'y a rien à exporter.")
        readable = caller.readable_fields(actions)
        columns = [f for f in readable if f.name != FINANCES_FIELD]
        finances = next((f for f in readable if f.name == FINANCES_FIELD), None)
        shown = [*columns, *([finances] if finances else [])]
        # Every action, by id; the last column gives the départements of its sheets, whether or
        # not the caller may read that field.
        query = FeatureQuery(
            collection=actions,
            readable=tuple(readable),
            select=(*shown, actions.fields[DEPARTEMENTS_FIELD]),
        )
        statement, params = rows_statement(query)
        read_scope = caller.scope("actions")
        self.report(caller, 5, "Lecture des actions")
        made = temporary(".xlsx")
        try:
            with caller.exporting() as conn:
                count, count_params = count_statement(query, None)
                total = conn.execute(count, count_params).fetchone()[0]
                check_size(caller, total, "actions")
                names = dict(conn.execute(SQL.departement_names).fetchall())
                # The sheets' départements first (their order in the workbook), then the rows by
                # batches from a server-side cursor, each written at once on its sheets.
                codes = sorted(
                    code
                    for code in _departements(conn, statement, params, len(query.select))
                    if scope.contains(code) and read_scope.contains(code)
                )
                with conn.cursor(name="resorption_export_actions") as cursor:
                    cursor.execute(statement, params)
                    batch = cursor.fetchmany(BATCH)
                    book = _ActionsWorkbook(columns, finances is not None, codes, names, batch)
                    while batch:
                        for row in batch:
                            book.add(row)
                        self.report(
                            caller,
                            5 + 85 * book.written // max(total, 1),
                            f"{book.written} actions écrites sur {total}",
                        )
                        batch = cursor.fetchmany(BATCH)
            book.save(made.path)
        except BaseException:
            made.discard()
            raise

        groups = {f.group.sensitive for f in shown if f.group.sensitive}
        self.audit(
            caller,
            actions.id,
            groups,
            {"format": "xlsx", "actions": book.written, "departements": book.departements()},
        )
        return ExportFile(made, XLSX, filename("actions", "xlsx"))


class _ActionsWorkbook:
    """The workbook of the actions, written as it goes (openpyxl's write-only mode: each sheet
    streams into a temporary file), never held whole: « National », a sheet per département,
    « Financements »."""

    def __init__(
        self,
        columns: Sequence[Field],
        with_finances: bool,
        codes: Sequence[str],
        names: dict[str, str],
        first: Sequence[Sequence[Any]],
    ) -> None:
        self.columns = columns
        self.workbook = Workbook(write_only=True)
        headers = [f.label.fr for f in columns]
        formats = [_format(f) for f in columns]
        # Column widths come from the first rows: a write-only sheet sets them before any row.
        widths = _widths(headers, [self._line(row) for row in first])
        taken = {NATIONAL_SHEET, FINANCES_SHEET}
        self.national = _Sheet(self.workbook, NATIONAL_SHEET, headers, formats, widths)
        self.per_departement = {
            code: _Sheet(self.workbook, sheet_title(code, names.get(code), taken), headers, formats, widths)
            for code in codes
        }
        self.funding = _Sheet(self.workbook, FINANCES_SHEET, *FINANCES) if with_finances else None
        self.written = 0

    def _line(self, row: Sequence[Any]) -> list[Any]:
        return [cell_value(f, v) for f, v in zip(self.columns, row, strict=False)]

    def add(self, row: Sequence[Any]) -> None:
        """One action: on « National », on the sheet of each of its départements, its funding."""
        line = self._line(row)
        self.national.append(line)
        for code in row[-1] or []:
            if code in self.per_departement:
                self.per_departement[code].append(line)
        if self.funding is not None:
            for entry in _funding(self.columns, row):
                self.funding.append(entry)
        self.written += 1

    def departements(self) -> list[str]:
        """The départements whose sheet holds an action."""
        return sorted(code for code, sheet in self.per_departement.items() if sheet.rows)

    def save(self, path: Any) -> None:
        """Close the sheets (their filters) and write the workbook."""
        for sheet in (
            self.national,
            *self.per_departement.values(),
            *([self.funding] if self.funding else []),
        ):
            sheet.close()
        self.workbook.save(path)


# The Financements sheet: its headers, number formats and widths.
FINANCES: tuple[list[str], list[str], list[float]] = (
    [
        "Identifiant de l'action",
        "Nom de l'action",
        "Année",
        "Type de financement",
        "Budget (€)",
        "Dépenses (€)",
    ],
    ["", "", "", "", EUROS, EUROS],
    [14, 40, 10, 30, 16, 16],
)


def _funding(columns: Sequence[Field], row: Sequence[Any]) -> list[list[Any]]:
    """The Financements sheet's lines of one action: one per year and type of funding."""
    by_name = {f.name: i for i, f in enumerate(columns)}
    return [
        [
            row[by_name["id"]],
            row[by_name["name"]] if "name" in by_name else None,
            entry.get("year"),
            FUNDING_TYPES.get(entry.get("funding_type"), entry.get("funding_type")),
            entry.get("budget"),
            entry.get("spent"),
        ]
        for entry in row[len(columns)] or []
    ]


def _departements(conn: Any, statement: sql.Composable, params: Any, width: int) -> list[str]:
    """The départements of the actions the statement reads (its last column: their codes)."""
    names = sql.Composed([sql.Identifier(f"c{i}") for i in range(width)]).join(", ")
    distinct = SQL.departements_of.format(
        codes=sql.Identifier(f"c{width - 1}"), statement=statement, names=names
    )
    return [code for (code,) in conn.execute(distinct, params) if code]
