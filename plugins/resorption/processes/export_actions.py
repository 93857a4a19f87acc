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
import io
import re
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from resorption import statements
from resorption.caller import Caller
from resorption.catalog import Field
from resorption.clock import PARIS
from resorption.errors import Forbidden
from resorption.processes.base import Inputs
from resorption.processes.export_jobs import (
    ExportFile,
    ExportProcessor,
    filename,
)
from resorption.query import FeatureQuery, rows_statement
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


def _fill(
    sheet: Worksheet, headers: Sequence[str], rows: Sequence[Sequence[Any]], formats: Sequence[str]
) -> None:
    """Headers in bold, frozen, filterable; values; reasonable column widths."""
    sheet.append([xlsx_cell(h) for h in headers])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        # Text typed by users is never a formula ("=HYPERLINK(…)" stays text).
        sheet.append([xlsx_cell(v) for v in row])
    for index, number_format in enumerate(formats, start=1):
        letter = get_column_letter(index)
        width = max([len(str(headers[index - 1]))] + [len(str(r[index - 1] or "")) for r in rows[:200]])
        sheet.column_dimensions[letter].width = min(max(width + 2, 10), 60)
        if number_format:
            for cell in sheet[letter][1:]:
                cell.number_format = number_format
    sheet.freeze_panes = "B2"
    if rows:
        sheet.auto_filter.ref = sheet.dimensions


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
        self.report(caller, 5, "Lecture des actions")
        with caller.exporting() as conn:
            rows = conn.execute(statement, params).fetchall()
            names = dict(conn.execute(SQL.departement_names).fetchall())
        self.report(caller, 60, f"{len(rows)} actions lues : écriture du tableur")

        read_scope = caller.scope("actions")
        table = [[cell_value(f, v) for f, v in zip(columns, row, strict=False)] for row in rows]
        per_departement: dict[str, list[list[Any]]] = {}
        for row, line in zip(rows, table, strict=True):
            for code in row[-1] or []:
                if scope.contains(code) and read_scope.contains(code):
                    per_departement.setdefault(code, []).append(line)

        workbook = Workbook()
        headers = [f.label.fr for f in columns]
        formats = [_format(f) for f in columns]
        national = workbook.active
        national.title = NATIONAL_SHEET
        _fill(national, headers, table, formats)
        taken = {NATIONAL_SHEET, FINANCES_SHEET}
        for code in sorted(per_departement):
            sheet = workbook.create_sheet(sheet_title(code, names.get(code), taken))
            _fill(sheet, headers, per_departement[code], formats)
        if finances is not None:
            _fill(workbook.create_sheet(FINANCES_SHEET), *self._finances(columns, rows))
        buffer = io.BytesIO()
        workbook.save(buffer)

        groups = {f.group.sensitive for f in shown if f.group.sensitive}
        self.audit(
            caller,
            actions.id,
            groups,
            {"format": "xlsx", "actions": len(rows), "departements": sorted(per_departement)},
        )
        return ExportFile(buffer.getvalue(), XLSX, filename("actions", "xlsx"))

    @staticmethod
    def _finances(columns: Sequence[Field], rows: Sequence[tuple[Any, ...]]) -> tuple[list[str], list, list]:
        """The Financements sheet: one line per action, year and type of funding."""
        by_name = {f.name: i for i, f in enumerate(columns)}
        lines = []
        for row in rows:
            for entry in row[len(columns)] or []:
                lines.append(
                    [
                        row[by_name["id"]],
                        row[by_name["name"]] if "name" in by_name else None,
                        entry.get("year"),
                        FUNDING_TYPES.get(entry.get("funding_type"), entry.get("funding_type")),
                        entry.get("budget"),
                        entry.get("spent"),
                    ]
                )
        headers = [
            "Identifiant de l'action",
            "Nom de l'action",
            "Année",
            "Type de financement",
            "Budget (€)",
            "Dépenses (€)",
        ]
        return headers, lines, ["", "", "", "", EUROS, EUROS]
