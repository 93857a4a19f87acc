"""How a feature reads on our HTML pages: catalog labels, groups and values for people.

pygeoapi's templates show raw property names and raw values. The item page
shows instead the properties grouped by the catalog's groups, each labelled
in the request's language, with enum values by their French label, booleans
as Oui/Non, dates as JJ/MM/AAAA and a missing value as « — »; the items page
shows a table with labelled columns. Only the properties present in the
feature are shown: the provider already left out what the caller may not
read, and nothing is added here.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from resorption.catalog import Collection, Field, Label
from resorption.clock import PARIS

MISSING = "—"
YES_NO = {True: Label("Oui", "Yes"), False: Label("Non", "No")}
# What an item is called in a page title when its collection names nothing better.
DEFAULT_NOUN = Label("Élément", "Item")


@dataclass(frozen=True, slots=True)
class Row:
    """One property of the item page: its label and its value as text (« — » when missing)."""

    label: str
    text: str

    @property
    def missing(self) -> bool:
        """No value: the page greys the dash."""
        return self.text == MISSING


@dataclass(frozen=True, slots=True)
class Section:
    """The properties of one catalog group, under the group's title."""

    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the items table."""

    name: str
    label: str


@dataclass(frozen=True, slots=True)
class ListRow:
    """One feature of the items table: its link, its title and its cells in column order."""

    href: str
    title: str
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """The items table: the title column's label, the other columns, the rows."""

    title_label: str
    columns: tuple[Column, ...]
    rows: tuple[ListRow, ...]


def _english(language: str | None) -> bool:
    return bool(language) and str(language).lower().startswith("en")


def _number(value: int | float, language: str | None) -> str:
    """Integers as they are (years, counts, identifiers); decimals with grouping, in the page's language."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    text = f"{value:,.2f}"
    if _english(language):
        return text
    return text.replace(",", "\u202f").replace(".", ",")


def _date(value: str) -> str:
    try:
        return date.fromisoformat(value[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return value


def _datetime(value: str) -> str:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return value
    if instant.tzinfo is None:
        return instant.strftime("%d/%m/%Y %H:%M")
    return instant.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def _scalar(field: Field, value: Any, language: str | None) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return YES_NO[value].get(language)
    if isinstance(value, int | float):
        return _number(value, language)
    if isinstance(value, Mapping):
        # An aggregate (closing solutions, yearly funding): its keys are data, not catalog fields.
        return ", ".join(f"{k} : {_plain(v, language)}" for k, v in value.items())
    text = str(value)
    if field.enum:
        return field.enum.get(text, text)
    if field.format == "date":
        return _date(text)
    if field.format == "date-time":
        return _datetime(text)
    return text


def _plain(value: Any, language: str | None) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return YES_NO[value].get(language)
    if isinstance(value, int | float):
        return _number(value, language)
    return str(value)


def display_value(field: Field, value: Any, language: str | None = None) -> str:
    """`value` of `field` as text for people; lists of aggregates come one per line."""
    if isinstance(value, list | tuple):
        if not value:
            return MISSING
        separator = "\n" if any(isinstance(v, Mapping) for v in value) else ", "
        return separator.join(_scalar(field, v, language) for v in value)
    return _scalar(field, value, language)


def sections(collection: Collection, properties: Mapping[str, Any], language: str | None) -> list[Section]:
    """The present properties, grouped by catalog group, both in catalog order; empty groups left out."""
    by_group: dict[str, list[Row]] = {name: [] for name in collection.groups}
    for name, field in collection.fields.items():
        # Only what the provider returned: it already left out what the caller may not read.
        if name in properties:
            by_group[field.group.name].append(
                Row(field.label.get(language), display_value(field, properties[name], language))
            )
    return [
        Section(collection.groups[name].label.get(language), tuple(rows))
        for name, rows in by_group.items()
        if rows
    ]


def item_title(collection: Collection, feature: Mapping[str, Any], language: str | None) -> str:
    """The item's name (its title field), else « Site n°12 »."""
    properties = feature.get("properties") or {}
    title = properties.get(collection.title_field) if collection.title_field else None
    if title not in (None, ""):
        return str(title)
    noun = (collection.item_noun or DEFAULT_NOUN).get(language)
    return f"{noun} n°{feature.get('id')}"


def item_href(items_path: str, identifier: Any) -> str:
    """The HTML page of one item."""
    return f"{items_path}/{urllib.parse.quote(str(identifier), safe='')}"


def table(
    collection: Collection,
    features: Sequence[Mapping[str, Any]],
    selected: Iterable[str] | None,
    items_path: str,
    language: str | None,
) -> Table:
    """The items table: the requested properties, else the collection's list columns, else all present."""
    present: list[str] = list(features[0].get("properties") or {}) if features else []
    if selected is not None:
        names = list(selected)
    elif collection.list_columns:
        names = list(collection.list_columns)
    else:
        names = [name for name in collection.fields if name in present]
    hidden = {collection.id_field, collection.title_field}
    fields = [
        collection.fields[n] for n in names if n in present and n in collection.fields and n not in hidden
    ]
    # The first column links to each item: its name when present, else « Site n°12 ».
    if collection.title_field and collection.title_field in present:
        title_label = collection.fields[collection.title_field].label.get(language)
    else:
        title_label = (collection.item_noun or DEFAULT_NOUN).get(language)
    rows = []
    for feature in features:
        properties = feature.get("properties") or {}
        cells = tuple(display_value(f, properties.get(f.name), language) for f in fields)
        title = item_title(collection, feature, language)
        rows.append(ListRow(item_href(items_path, feature.get("id")), title, cells))
    return Table(title_label, tuple(Column(f.name, f.label.get(language)) for f in fields), tuple(rows))


def map_feature(
    collection: Collection, feature: Mapping[str, Any], items_path: str, language: str | None
) -> dict[str, Any]:
    """What the map needs of a feature: its geometry, title and link (not every property)."""
    return {
        "type": "Feature",
        "id": feature.get("id"),
        "geometry": feature.get("geometry"),
        "properties": {
            "title": item_title(collection, feature, language),
            "href": item_href(items_path, feature.get("id")),
        },
    }
