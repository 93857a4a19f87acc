"""The columns of a sites spreadsheet, shared by the export and the import.

Columns follow the catalog (`collections/sites.yml`): one section per field group, in
catalog order, with the fields' French labels; enumerations are written with their
catalog labels. Only the fields the caller may read become columns, so a sensitive
group the caller may not see has no column at all. A few columns are not fields:
latitude and longitude (from the point), the EPCI's name, the closing solutions (one
pair of columns per solution) and the actions linked to the site.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resorption.catalog import Field
from resorption.clock import PARIS
from resorption.spreadsheets.formulas import revert

SEPARATOR = " – "  # between a section and a column in one header ("Habitants – Nombre de mineurs")
LIST_SEPARATOR = ", "
YES, NO = "Oui", "Non"

# The catalog has no labels for closing solutions (`closing_solutions` is a list of objects):
# they are written here, once, in the order of the database enum.
CLOSING_SOLUTIONS: Mapping[str, str] = {
    "emergency_shelter": "Hébergement d'urgence",
    "integration_shelter": "Hébergement d'insertion",
    "transitional_housing": "Logement temporaire",
    "social_housing": "Logement social",
    "private_housing": "Logement privé",
    "voluntary_return": "Retour volontaire au pays",
    "eti": "Espace temporaire d'insertion",
    "other": "Autre solution",
}
CLOSING_SECTION = "Solutions à la fermeture"
ACTIONS_SECTION = "Actions"


@dataclass(frozen=True, slots=True)
class Column:
    """One column: where its value comes from, its section and label, how it is shown."""

    key: str  # a field name, or an export-only key (latitude, solution:…, actions…)
    section: str
    label: str
    kind: str  # text, integer, number, date, datetime, boolean
    field: Field | None = None
    width: int = 14

    @property
    def header(self) -> str:
        """The one-line header of CSV files: « Section – Colonne »."""
        return f"{self.section}{SEPARATOR}{self.label}"


def _kind(f: Field) -> str:
    if f.type in ("integer", "number", "boolean"):
        return f.type
    if f.format == "date":
        return "date"
    if f.format == "date-time":
        return "datetime"
    return "text"


def _width(f: Field) -> int:
    if f.enum or f.type == "array":
        return 24
    if f.type == "string" and f.format is None and not f.max_length:
        return 30
    return max(12, min(22, len(f.label.fr) // 2 + 4))


def site_columns(readable: Sequence[Field]) -> list[Column]:
    """The columns of a caller's spreadsheet: the readable fields grouped by section, plus extras."""
    columns: list[Column] = []
    for f in readable:
        section = f.group.label.fr
        if f.name == "closing_solutions":
            for code, label in CLOSING_SOLUTIONS.items():
                for part, noun in (("people", "personnes"), ("households", "ménages")):
                    key, label_part = f"solution:{code}:{part}", f"{label} – {noun}"
                    columns.append(Column(key, CLOSING_SECTION, label_part, "integer"))
            continue
        columns.append(Column(f.name, section, f.label.fr, _kind(f), f, _width(f)))
        if f.name == "epci_code":
            columns.append(Column("epci_name", section, "Nom de l'EPCI", "text", width=30))
        if f.name == "access_details":
            columns.append(Column("latitude", section, "Latitude", "number", width=12))
            columns.append(Column("longitude", section, "Longitude", "number", width=12))
    # The closing solutions follow the life cycle; the actions come before the record's tracking.
    ranks = _section_ranks(columns)
    columns = sorted(columns, key=lambda c: ranks[c.key])
    at = next((i for i, c in enumerate(columns) if c.field and c.field.group.name == "audit"), len(columns))
    columns[at:at] = [
        Column("action_ids", ACTIONS_SECTION, "Identifiants des actions", "text", width=16),
        Column("action_names", ACTIONS_SECTION, "Actions menées sur le site", "text", width=40),
    ]
    return columns


def _section_ranks(columns: list[Column]) -> dict[str, int]:
    """Each column's rank: sections in catalog order, the closing solutions after the life cycle."""
    order: list[str] = []
    for c in columns:
        if c.section not in order and c.section != CLOSING_SECTION:
            order.append(c.section)
    life = next((c.section for c in columns if c.field and c.field.group.name == "life_cycle"), None)
    closing = order.index(life) * 2 + 1 if life in order else len(order) * 2
    return {c.key: closing if c.section == CLOSING_SECTION else order.index(c.section) * 2 for c in columns}


# -- values → cells ---------------------------------------------------------------------------


def cell(column: Column, value: Any) -> Any:
    """The cell of a value as read from the API (JSON): labels for codes, dates as dates."""
    if value is None or value == []:
        return None
    f = column.field
    if f is not None and f.type == "array":
        return LIST_SEPARATOR.join(f.enum.get(str(v), str(v)) for v in value)
    if f is not None and f.enum:
        return f.enum.get(str(value), str(value))
    if column.kind == "boolean":
        return YES if value else NO
    if column.kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if column.kind == "datetime" and isinstance(value, str):
        # Spreadsheets have no time zones: the time in Paris, as users read it.
        return dt.datetime.fromisoformat(value).astimezone(PARIS).replace(tzinfo=None, microsecond=0)
    return value


# -- cells → values ---------------------------------------------------------------------------


class CellError(ValueError):
    """A cell that does not hold a value of its column; the message is French."""


@functools.lru_cache(maxsize=4096)  # the same labels and headers, row after row
def normalise(text: str) -> str:
    """A header or label compared loosely: no accents, no case, one kind of dash and space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"\s*[–—-]\s*", " - ", text.casefold().replace("’", "'"))
    return " ".join(text.split())


def header_lookup(columns: Iterable[Column]) -> dict[str, Column]:
    """Every way a header may name a column: « Section – Colonne », the label, the field name."""
    lookup: dict[str, Column] = {}
    for c in columns:
        for name in (c.header, c.label, c.key):
            lookup.setdefault(normalise(name), c)
    return lookup


TRUE_WORDS = {"oui", "vrai", "true", "yes", "1", "x"}
FALSE_WORDS = {"non", "faux", "false", "no", "0"}


def parse(column: Column, raw: Any) -> Any:
    """The JSON value of a cell for the column's field (None for an empty cell); CellError if wrong."""
    if isinstance(raw, str):
        raw = raw.strip()
    if raw is None or raw == "":
        return None
    f = column.field
    if f is not None and f.type == "array":
        items = [p.strip() for p in re.split(r"[,;]", str(raw)) if p.strip()]
        if f.enum:
            return [_enum_code(column, f, item) for item in items]
        if f.item_type == "integer":
            return [_integer(column, item) for item in items]
        return items
    if f is not None and f.enum:
        return _enum_code(column, f, str(raw))
    if column.kind == "boolean":
        if isinstance(raw, bool):
            return raw
        word = normalise(str(raw))
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise CellError(f"« {raw} » n'est ni Oui ni Non.")
    if column.kind == "integer":
        return _integer(column, raw)
    if column.kind == "number":
        return _number(raw)
    if column.kind == "date":
        return _date(raw)
    if column.kind == "datetime":
        return raw.isoformat() if isinstance(raw, dt.datetime) else str(raw)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))  # a code typed as a number (33063)
    if isinstance(raw, dt.datetime | dt.date):
        return raw.isoformat()
    return revert(str(raw))  # our exports quote formula-like text: the import unquotes it


def _enum_code(column: Column, f: Field, text: str) -> str:
    wanted = normalise(text)
    for code, label in f.enum.items():
        if wanted in (normalise(code), normalise(label)):
            return code
    raise CellError(
        f"« {text} » n'est pas une valeur permise ; valeurs permises : {', '.join(f.enum.values())}."
    )


def _integer(column: Column, raw: Any) -> int:
    if isinstance(raw, bool):
        raise CellError(f"nombre entier attendu, reçu « {raw} ».")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    text = str(raw).replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if re.fullmatch(r"-?\d+([.,]0+)?", text):
        return int(re.split(r"[.,]", text)[0])
    raise CellError(f"nombre entier attendu, reçu « {raw} ».")


def _number(raw: Any) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    try:
        return float(str(raw).replace(",", ".").replace("\xa0", "").replace(" ", ""))
    except ValueError:
        raise CellError(f"nombre attendu, reçu « {raw} ».") from None


def _date(raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    text = str(raw)
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    raise CellError(f"date attendue (JJ/MM/AAAA ou AAAA-MM-JJ), reçu « {raw} ».")
