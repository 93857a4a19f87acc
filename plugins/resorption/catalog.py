"""The data model as data: a typed, validated view of `collections/*.yml`.

Each published collection lists its fields once, with their type, French and
English labels, enum values and group. Everything else derives from here: the
SQL projection, queryables, `/schema`, HTML labels and export columns.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from psycopg import sql

from resorption.errors import ConfigurationError

FIELD_TYPES = {"string", "integer", "number", "boolean", "array"}
STRING_FORMATS = {None, "date", "date-time"}
GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
SENSITIVITIES = {None, "owner", "justice", "finances"}


@dataclass(frozen=True, slots=True)
class Label:
    """A text in French, with its English translation."""

    fr: str
    en: str

    def get(self, language: str | None) -> str:
        """The text in `language` ('en…' gives English), French otherwise."""
        return self.en if language and language.lower().startswith("en") else self.fr

    def as_pygeoapi(self) -> dict[str, str]:
        """The form pygeoapi's l10n expects in its configuration."""
        return {"fr": self.fr, "en": self.en}


@dataclass(frozen=True, slots=True)
class Group:
    """A group of fields, the unit of access control (`sensitive` names the right needed)."""

    name: str
    label: Label
    sensitive: str | None


# Compared and hashed by identity (each process loads the catalog once): a tuple of a hundred
# fields is a cheap key for the caches of composed statements (query/features.py).
@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """One property of a collection."""

    name: str
    type: str
    group: Group
    label: Label
    sql_text: str | None = None
    format: str | None = None
    item_type: str | None = None
    enum: Mapping[str, str] = field(default_factory=dict)
    description: Label | None = None
    max_length: int | None = None
    minimum: int | None = None
    read_only: bool = False
    filterable: bool = True
    sortable: bool = True

    @property
    def expression(self) -> sql.Composable:
        """The SQL expression of this field over the table alias `t`."""
        if self.sql_text:
            # Trusted text from our own catalog, never from a request.
            return sql.SQL(self.sql_text)
        return sql.SQL("t.{}").format(sql.Identifier(self.name))

    @property
    def is_temporal(self) -> bool:
        """Dates and timestamps compare as time instants in CQL2."""
        return self.format in ("date", "date-time")

    def json_schema(self, language: str | None = None) -> dict[str, Any]:
        """This field as a JSON Schema property (used by queryables and /schema)."""
        schema: dict[str, Any] = {"title": self.label.get(language), "type": self.type}
        if self.description:
            schema["description"] = self.description.get(language)
        if self.format:
            schema["format"] = self.format
        if self.max_length:
            schema["maxLength"] = self.max_length
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.type == "array":
            items: dict[str, Any] = {"type": self.item_type or "string"}
            if self.enum:
                items["enum"] = list(self.enum)
            schema["items"] = items
        elif self.enum:
            schema["enum"] = list(self.enum)
        if self.enum:
            # The French label of each value, for forms and legends.
            schema["x-enum-labels"] = dict(self.enum)
        if self.read_only:
            schema["readOnly"] = True
        schema["x-resorption-group"] = self.group.name
        return schema


@dataclass(frozen=True, slots=True)
class Blocks:
    """The tables counting a collection's rows per block of ids (`blocks:` in its catalog file)."""

    departements: str  # by département (departement_code, first_id, sites)
    nation: str  # every département together (first_id, sites)


@dataclass(frozen=True, slots=True)
class Collection:
    """One published collection and its fields, in catalog order."""

    id: str
    table: str
    title: Label
    description: Label
    keywords: Mapping[str, list[str]]
    id_field: str
    geometry_column: str
    geometry_type: str
    temporal_start: str | None
    temporal_end: str | None
    search_sql: str | None
    title_field: str | None
    default_sort: tuple[str, ...]
    groups: Mapping[str, Group]
    fields: Mapping[str, Field]
    # What one item is called in page titles ("Site n°12"), and the columns of HTML item lists.
    item_noun: Label | None = None
    list_columns: tuple[str, ...] = ()
    # The table of every version of the rows (`history:`), with the same columns plus
    # `valid` and `operation`: `datetime=<instant>` reads it (time travel).
    history_table: str | None = None
    # What an item shows besides its row (`version_also:`, an expression over `t`): it enters
    # the item's version (ETag), so that a change of it is never answered 304 Not Modified.
    version_also: str | None = None
    # A page chooses its ids before it builds its features (`page_ids_first: true`): for views
    # whose columns cost a query each (the changelogs' old and new values), so that a sort or a
    # union never computes them for rows outside the page.
    page_ids_first: bool = False
    # Ids that sort by time, newest first (`ids_by_time: true`, resorption.activity_key): a
    # time interval also bounds the ids, so that the index of the ids reads the interval only.
    ids_by_time: bool = False
    # A table of the rows' count per département (`counts:`, columns departement_code and
    # sites, under the collection's read rule): a count with no condition sums it.
    counts_table: str | None = None
    # Tables of the rows' count per block of ids (`blocks:`, columns first_id, the block's first
    # id, and sites, under the collection's read rule): `departements:` with departement_code,
    # `nation:` for the readers of every département. A page after `offset=` rows, with no
    # other condition, starts in the block its first row is in.
    blocks_tables: Blocks | None = None

    @property
    def table_sql(self) -> sql.Composable:
        """The qualified table name as an identifier."""
        return sql.Identifier(*self.table.split("."))

    @property
    def history_sql(self) -> sql.Composable | None:
        """The qualified history table name as an identifier, when the collection keeps one."""
        return sql.Identifier(*self.history_table.split(".")) if self.history_table else None

    @property
    def id_expression(self) -> sql.Composable:
        """The identifier column over the alias `t`."""
        return sql.SQL("t.{}").format(sql.Identifier(self.id_field))

    @property
    def geometry_expression(self) -> sql.Composable:
        """The geometry column over the alias `t` (stored in EPSG:4326, lon/lat)."""
        return sql.SQL("t.{}").format(sql.Identifier(self.geometry_column))

    @property
    def id_is_integer(self) -> bool:
        """Sites and actions have integer ids; territories have INSEE codes (and events of the
        activity feed, text keys)."""
        identifier = self.fields.get(self.id_field)
        return self.id_field == "id" and (identifier is None or identifier.type == "integer")


def _label(raw: Any, where: str) -> Label:
    if isinstance(raw, Mapping) and isinstance(raw.get("fr"), str) and raw.get("fr"):
        return Label(fr=raw["fr"], en=str(raw.get("en") or raw["fr"]))
    raise ConfigurationError(f"{where} : un libellé en français (fr) est obligatoire.")


def _field(name: str, raw: Mapping[str, Any], groups: Mapping[str, Group], where: str) -> Field:
    where = f"{where}, champ « {name} »"
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES:
        raise ConfigurationError(f"{where} : type « {ftype} » inconnu ({', '.join(sorted(FIELD_TYPES))}).")
    if raw.get("group") not in groups:
        raise ConfigurationError(f"{where} : groupe « {raw.get('group')} » non déclaré dans `groups`.")
    if raw.get("format") not in STRING_FORMATS:
        raise ConfigurationError(f"{where} : format « {raw.get('format')} » inconnu.")
    if not raw.get("fr"):
        raise ConfigurationError(f"{where} : un libellé en français (fr) est obligatoire.")
    enum = raw.get("enum") or {}
    if not isinstance(enum, Mapping):
        raise ConfigurationError(f"{where} : `enum` associe chaque valeur à son libellé français.")
    items = raw.get("items") or {}
    description = raw.get("description")
    return Field(
        name=name,
        type=ftype,
        group=groups[raw["group"]],
        label=Label(fr=raw["fr"], en=raw.get("en") or raw["fr"]),
        sql_text=raw.get("sql"),
        format=raw.get("format"),
        item_type=items.get("type") if ftype == "array" else None,
        enum={str(k): str(v) for k, v in enum.items()},
        description=_label(description, where) if description else None,
        max_length=raw.get("max_length"),
        minimum=raw.get("minimum"),
        read_only=bool(raw.get("read_only", False)),
        # Objects (JSON aggregates) are shown, not compared.
        filterable=bool(raw.get("filterable", items.get("type") != "object")),
        sortable=bool(raw.get("sortable", ftype != "array")),
    )


def load_collection(path: Path) -> Collection:
    """Read and validate one catalog file; errors say which file and which field."""
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where} : YAML invalide ({exc}).") from exc
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} : le fichier doit décrire une collection.")
    for key in ("id", "table", "title", "description", "id_field", "geometry", "groups", "fields"):
        if key not in raw:
            raise ConfigurationError(f"{where} : la clé « {key} » est obligatoire.")
    groups = {
        name: Group(name, _label(g, f"{where}, groupe « {name} »"), g.get("sensitive"))
        for name, g in raw["groups"].items()
    }
    for group in groups.values():
        if group.sensitive not in SENSITIVITIES:
            raise ConfigurationError(
                f"{where}, groupe « {group.name} » : sensibilité « {group.sensitive} » inconnue."
            )
    fields = {name: _field(name, f, groups, where) for name, f in raw["fields"].items()}
    geometry = raw["geometry"]
    if geometry.get("type") not in GEOMETRY_TYPES:
        raise ConfigurationError(f"{where} : type de géométrie « {geometry.get('type')} » inconnu.")
    temporal = raw.get("temporal") or {}
    for key in ("start", "end"):
        if temporal.get(key) and temporal[key] not in fields:
            raise ConfigurationError(f"{where} : temporal.{key} « {temporal[key]} » n'est pas un champ.")
    default_sort = tuple(raw.get("default_sort") or [raw["id_field"]])
    list_columns = tuple(raw.get("list_columns") or ())
    for name in list_columns:
        if name not in fields:
            raise ConfigurationError(f"{where} : list_columns cite « {name} », qui n'est pas un champ.")
    return Collection(
        id=raw["id"],
        table=raw["table"],
        title=_label(raw["title"], where),
        description=_label(raw["description"], where),
        keywords=raw.get("keywords") or {},
        id_field=raw["id_field"],
        geometry_column=geometry["column"],
        geometry_type=geometry["type"],
        temporal_start=temporal.get("start"),
        temporal_end=temporal.get("end"),
        search_sql=raw.get("search"),
        title_field=raw.get("title_field"),
        default_sort=default_sort,
        groups=groups,
        fields=fields,
        item_noun=_label(raw["item_noun"], where) if raw.get("item_noun") else None,
        list_columns=list_columns,
        history_table=raw.get("history"),
        version_also=raw.get("version_also"),
        page_ids_first=bool(raw.get("page_ids_first", False)),
        ids_by_time=bool(raw.get("ids_by_time", False)),
        counts_table=raw.get("counts"),
        blocks_tables=Blocks(**raw["blocks"]) if raw.get("blocks") else None,
    )


@functools.cache
def load_catalog(directory: Path) -> Mapping[str, Collection]:
    """Every collection of `directory`, keyed by id; read once per process."""
    if not directory.is_dir():
        raise ConfigurationError(f"Le catalogue {directory} est introuvable.")
    catalog: dict[str, Collection] = {}
    for path in sorted(directory.glob("*.yml")):
        collection = load_collection(path)
        if collection.id in catalog:
            raise ConfigurationError(f"{path.name} : la collection « {collection.id} » existe déjà.")
        catalog[collection.id] = collection
    return catalog
