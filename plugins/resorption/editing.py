"""What a write says and the SQL it runs: parse, validate and build the statements of a write.

A body (GeoJSON Feature, or an RFC 7396 merge patch of one) becomes a `Change`:
validated values by field, the geometry and its CRS. Every problem a client can
make is collected, by property, into ONE `ValidationFailed`. The statements are
built like the readers' (`query.py`): names are identifiers or catalog text,
values are parameters. PostgreSQL keeps the last word: column privileges, row-level
security and check constraints, whose violations `write_errors` translates by
constraint name into French. Running a write (placement, locks, versions, audit) is
`writing.py`'s.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from resorption import statements
from resorption.catalog import Collection, Field
from resorption.crs import DEFAULT, Crs, check_in_domain, parse_crs
from resorption.errors import (
    Forbidden,
    InvalidParameter,
    ResorptionError,
    UnsupportedMediaType,
    ValidationFailed,
)

SQL = statements.load("editing")
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
# What QGIS, OWSLib and curl send (a `charset` parameter is stripped by Flask's `mimetype`).
WRITE_TYPES = (GEOJSON, "application/json", MERGE_PATCH)
# The accepted geometry types per collection geometry, and how they are stored.
GEOMETRY_INPUTS = {"Point": ("Point",), "MultiPolygon": ("Polygon", "MultiPolygon")}
# The version of an item: changes whenever the row does (the triggers set updated_at), and
# whenever what the catalog says it also shows does (`Collection.version_also`).
VERSION = "'\"' || md5(t.id::text || '/' || extract(epoch FROM t.updated_at)::text{also}) || '\"'"
ALSO = " || '/' || coalesce(({})::text, '')"


def version_sql(collection: Collection) -> sql.Composable:
    """The version (ETag) of an item of `collection`, over the alias `t`: the same expression
    for the ETag a read sends and for the `If-Match` a write compares. Composed once per
    collection and process: the same object each time, so that statements built with it are
    recognised as already composed (`query.item_statement`)."""
    hit = _VERSIONS.get(id(collection))
    if hit is not None and hit[0] is collection:
        return hit[1]
    # `version_also` is the catalog's own text, like its fields' `sql`: never a client's.
    also = sql.SQL(ALSO).format(sql.SQL(collection.version_also)) if collection.version_also else sql.SQL("")  # type: ignore[arg-type]
    version = sql.SQL(VERSION).format(also=also)
    if len(_VERSIONS) < _VERSIONS_MAX:
        _VERSIONS[id(collection)] = (collection, version)  # the collection kept: its id() stays its own
    return version


_VERSIONS: dict[int, tuple[Collection, sql.Composable]] = {}
_VERSIONS_MAX = 1024


class Mode(StrEnum):
    """What a write does with the properties it does not mention."""

    CREATE = "create"  # they take their default
    REPLACE = "replace"  # PUT: they take their default too
    PATCH = "patch"  # they keep their value


class _Removed:
    """A property set to its column default (absent from a PUT, null in a merge patch)."""

    def __repr__(self) -> str:
        return "REMOVED"


REMOVED: Any = _Removed()


@dataclass(frozen=True, slots=True)
class Column:
    """What the database says of a column: its type, and whether it may be left empty."""

    name: str
    type_sql: str
    not_null: bool
    has_default: bool

    @property
    def required(self) -> bool:
        """A value must be given: NOT NULL without a default."""
        return self.not_null and not self.has_default


@dataclass(slots=True)
class Change:
    """A validated write: values by field (or REMOVED), the geometry if it is written."""

    values: dict[str, Any] = field(default_factory=dict)
    # The properties the body names (the others of a PUT only take their default).
    given: set[str] = field(default_factory=set)
    geometry_given: bool = False
    geometry: dict[str, Any] | None = None
    crs: Crs = DEFAULT
    errors: list[dict[str, str]] = field(default_factory=list)

    def error(self, prop: str, message: str) -> None:
        """Note one problem with `prop`."""
        self.errors.append({"property": prop, "message": message})

    def fail_if_invalid(self) -> None:
        """Raise every problem noted so far, as one 400."""
        if self.errors:
            raise ValidationFailed(self.errors)

    def groups(self, collection: Collection) -> frozenset[str]:
        """The sensitive groups this change writes (for the audit log)."""
        return frozenset(
            g for name in self.given if (g := collection.fields[name].group.sensitive) is not None
        )


# -- parsing the request ---------------------------------------------------------------


def parse_body(data: bytes, mimetype: str) -> dict[str, Any]:
    """The JSON object of a write's body; 415 for another format, 400 for broken JSON."""
    if mimetype not in WRITE_TYPES:
        raise UnsupportedMediaType(
            f"Type de contenu « {mimetype or 'absent'} » non pris en charge pour une écriture : "
            f"envoyez {', '.join(WRITE_TYPES)}."
        )
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidParameter("Le corps de la requête n'est pas du JSON valide (UTF-8).") from None
    if not isinstance(body, dict):
        raise InvalidParameter("Le corps de la requête doit être un objet GeoJSON « Feature ».")
    return body


def parse_content_crs(header: str | None) -> Crs:
    """The CRS of the body's coordinates, from `Content-Crs: <uri>` (CRS84 when absent)."""
    if not header:
        return DEFAULT
    return parse_crs(header.strip().removeprefix("<").removesuffix(">"), "Content-Crs")


def table_columns(conn: psycopg.Connection, table: str) -> dict[str, Column]:
    """The columns of `table` from pg_catalog (readable by every role), cached per process."""
    cached = _COLUMNS.get(table)
    if cached is None:
        rows = conn.execute(SQL.table_columns, (table,)).fetchall()
        cached = _COLUMNS[table] = {r[0]: Column(r[0], r[1], r[2], r[3]) for r in rows}
    return cached


_COLUMNS: dict[str, dict[str, Column]] = {}


def writable_fields(
    collection: Collection, readable: tuple[Field, ...], columns: Mapping[str, Column]
) -> dict[str, Field]:
    """The fields a writer may set: readable by them, stored in a column, not computed."""
    return {
        f.name: f
        for f in readable
        if not f.read_only and not f.sql_text and f.name in columns and f.name != collection.id_field
    }


# -- validation ------------------------------------------------------------------------


def validate(
    collection: Collection,
    readable: tuple[Field, ...],
    columns: Mapping[str, Column],
    body: Mapping[str, Any],
    mode: Mode,
    crs: Crs,
    current: Mapping[str, Any] | None = None,
) -> Change:
    """Check a body against the catalog; every problem is noted in `Change.errors`.

    `current` is the item as the writer reads it (for PUT and PATCH): a read-only property
    sent back unchanged, as QGIS does, is not a mistake.
    """
    change = Change(crs=crs)
    patch = mode == Mode.PATCH
    if not patch and body.get("type") != "Feature":
        change.error("type", "un objet GeoJSON de type « Feature » est attendu.")
    properties = body.get("properties", {} if patch else None)
    if properties is None and not patch:
        properties = {}
    if not isinstance(properties, Mapping):
        change.error("properties", "un objet JSON (nom → valeur) est attendu.")
        properties = {}
    for key in body:
        if key not in ("type", "id", "geometry", "properties", "bbox", "links"):
            change.error(key, "membre inconnu d'un élément GeoJSON (type, id, geometry, properties).")

    writable = writable_fields(collection, readable, columns)
    by_name = {f.name: f for f in readable}
    current_props = (current or {}).get("properties") or {}
    for name, value in properties.items():
        f = by_name.get(name)
        if f is None:
            change.error(name, f"propriété inconnue dans la collection « {collection.id} ».")
        elif name not in writable:
            unchanged = name in current_props and current_props[name] == value
            if (value is None and mode == Mode.CREATE) or unchanged:
                continue  # sent back as read: nothing is written
            change.error(name, "propriété en lecture seule : elle est calculée ou tenue par le serveur.")
        elif value is None:
            change.values[name] = REMOVED
            change.given.add(name)
        else:
            message = check_value(f, value)
            if message:
                change.error(name, message)
            else:
                change.values[name] = convert(f, value)
                change.given.add(name)
    refused = {e["property"] for e in change.errors}
    if not patch:
        for name in writable:
            if name not in refused:
                change.values.setdefault(name, REMOVED)
    for name, value in change.values.items():
        if value is REMOVED and columns[name].required and not _derivable(collection, name):
            change.error(name, "valeur obligatoire.")

    if "geometry" in body or not patch:
        change.geometry_given = True
        geometry = body.get("geometry")
        if geometry is None:
            if columns[collection.geometry_column].required:
                change.error("geometry", "la géométrie est obligatoire.")
        else:
            message = check_geometry(collection, geometry, crs)
            if message:
                change.error("geometry", message)
            else:
                change.geometry = geometry
    return change


def _derivable(collection: Collection, name: str) -> bool:
    """Required properties the server derives from the geometry when they are not given."""
    return (collection.id, name) in (("sites", "commune_code"), ("actions", "departement_code"))


def check_value(f: Field, value: Any) -> str | None:
    """What is wrong with `value` for `f`, in French, or None."""
    if f.type == "array":
        if not isinstance(value, list):
            return "une liste de valeurs est attendue."
        for item in value:
            message = _check_scalar(f, f.item_type or "string", item)
            if message:
                return message
        if len(set(map(str, value))) != len(value):
            return "une même valeur figure deux fois dans la liste."
        return None
    return _check_scalar(f, f.type, value)


def _check_scalar(f: Field, ftype: str, value: Any) -> str | None:
    if ftype == "boolean":
        return (
            None if isinstance(value, bool) else f"vrai ou faux (true/false) attendu, reçu {_shown(value)}."
        )
    if ftype in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "nombre entier" if ftype == "integer" else "nombre"
            return f"{kind} attendu, reçu {_shown(value)}."
        if ftype == "integer" and not (isinstance(value, int) or float(value).is_integer()):
            return f"nombre entier attendu, reçu {_shown(value)}."
        if not math.isfinite(value) or abs(value) > 2**31 - 1:
            return f"nombre hors limites : {_shown(value)}."
        if f.minimum is not None and value < f.minimum:
            return f"doit être supérieur ou égal à {f.minimum} (reçu {_shown(value)})."
        return None
    if not isinstance(value, str):
        return f"texte attendu, reçu {_shown(value)}."
    if "\x00" in value:
        return "les caractères nuls ne sont pas permis."
    if f.enum and value not in f.enum:
        return f"valeur « {value} » inconnue ; valeurs permises : {', '.join(f.enum)}."
    if f.max_length is not None and len(value) > f.max_length:
        return f"{f.max_length} caractères au plus (reçu {len(value)})."
    if f.format == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"date attendue au format AAAA-MM-JJ, reçu « {value} »."
        if len(value) != 10:
            return f"date attendue au format AAAA-MM-JJ, reçu « {value} »."
    if f.format == "date-time":
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return f"date et heure attendues (ISO 8601), reçu « {value} »."
    return None


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return f"« {text[:40]}{'…' if len(text) > 40 else ''} »"


def convert(f: Field, value: Any) -> Any:
    """The Python value psycopg sends for a checked `value` of `f`."""
    if f.type == "integer" and isinstance(value, float):
        return int(value)
    if f.format == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def check_geometry(collection: Collection, geometry: Any, crs: Crs) -> str | None:
    """What is wrong with the structure of a GeoJSON geometry, or None (validity is PostGIS's)."""
    allowed = GEOMETRY_INPUTS.get(collection.geometry_type, (collection.geometry_type,))
    if not isinstance(geometry, Mapping) or geometry.get("type") not in allowed:
        got = (geometry.get("type") if isinstance(geometry, Mapping) else None) or "autre chose"
        return f"une géométrie GeoJSON de type {' ou '.join(allowed)} est attendue (reçu {got})."
    depth = {"Point": 0, "Polygon": 2, "MultiPolygon": 3}[geometry["type"]]
    positions: list[tuple[float, float]] = []
    if not _collect_positions(geometry.get("coordinates"), depth, positions):
        return "coordonnées mal formées pour ce type de géométrie."
    if geometry["type"] != "Point" and not _rings_ok(geometry["coordinates"], depth):
        return "chaque anneau d'un polygone doit être fermé et compter au moins 4 positions."
    try:
        check_in_domain(crs, positions, "geometry")
    except InvalidParameter as exc:
        return exc.message.removeprefix("geometry : ")
    if crs.srid == 4326:
        for x, y in positions:
            lon, lat = (y, x) if crs.lat_first else (x, y)
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                return f"position ({x:g}, {y:g}) hors des longitudes et latitudes possibles."
    return None


def _collect_positions(node: Any, depth: int, out: list[tuple[float, float]]) -> bool:
    if depth == 0:
        ok = (
            isinstance(node, list)
            and len(node) in (2, 3)
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in node)
        )
        if ok:
            out.append((float(node[0]), float(node[1])))
        return ok
    return isinstance(node, list) and bool(node) and all(_collect_positions(n, depth - 1, out) for n in node)


def _rings_ok(coordinates: list[Any], depth: int) -> bool:
    polygons = [coordinates] if depth == 2 else coordinates
    return all(len(ring) >= 4 and ring[0] == ring[-1] for polygon in polygons for ring in polygon)


# -- the geometry of a write ------------------------------------------------------------


def geometry_sql(collection: Collection, change: Change) -> tuple[sql.Composable, list[Any]]:
    """The stored geometry (EPSG:4326, 2D, multi for polygons) of the change, and its parameter."""
    geom: sql.Composable = sql.SQL("ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON({}), {}))").format(
        sql.Placeholder(), sql.Literal(change.crs.srid)
    )
    if change.crs.srid != 4326:
        geom = sql.SQL("ST_Transform({}, 4326)").format(geom)
    elif change.crs.lat_first:
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    if collection.geometry_type.startswith("Multi"):
        geom = sql.SQL("ST_Multi({})").format(geom)
    return geom, [orjson.dumps(change.geometry).decode()]


def place_statement(collection: Collection, change: Change) -> tuple[sql.Composed, list[Any]]:
    """Whether the change's geometry is valid (and why not), and the département and commune
    of a point on its surface (the lowest codes where two touch)."""
    geom, params = geometry_sql(collection, change)
    statement = sql.SQL(
        "SELECT ST_IsValid(g), CASE WHEN NOT ST_IsValid(g) THEN ST_IsValidReason(g) END, "
        "(SELECT d.code FROM resorption.departements d WHERE ST_Intersects(d.geom, p) "
        " ORDER BY d.code LIMIT 1), "
        "(SELECT c.code FROM resorption.communes c WHERE ST_Intersects(c.geom, p) "
        " ORDER BY c.code LIMIT 1) "
        "FROM (SELECT g, CASE WHEN ST_IsValid(g) THEN ST_PointOnSurface(g) END AS p "
        "      FROM (SELECT {} AS g) i) x"
    ).format(geom)
    return statement, params


# -- statements --------------------------------------------------------------------------


def _value_sql(column: Column, value: Any, params: list[Any]) -> sql.Composable:
    if value is REMOVED:
        return sql.SQL("DEFAULT")
    params.append(value)
    # The type comes from pg_catalog: enums and enum arrays need it, psycopg sends text.
    return sql.SQL("{}::{}").format(sql.Placeholder(), sql.SQL(column.type_sql))


def insert_statement(
    collection: Collection, columns: Mapping[str, Column], change: Change
) -> tuple[sql.Composed, list[Any]]:
    """INSERT the change; returns the new id and version."""
    names: list[sql.Composable] = []
    values: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in change.values.items():
        names.append(sql.Identifier(name))
        values.append(_value_sql(columns[name], value, params))
    if change.geometry is not None:
        geom, geom_params = geometry_sql(collection, change)
        names.append(sql.Identifier(collection.geometry_column))
        values.append(geom)
        params += geom_params
    statement = sql.SQL(
        "INSERT INTO {table} AS t ({names}) VALUES ({values}) RETURNING t.id, {version}"
    ).format(
        table=collection.table_sql,
        names=sql.SQL(", ").join(names),
        values=sql.SQL(", ").join(values),
        version=version_sql(collection),
    )
    return statement, params


def update_statement(
    collection: Collection, columns: Mapping[str, Column], change: Change, identifier: int
) -> tuple[sql.Composed, list[Any]]:
    """UPDATE the item with the change; returns its new version."""
    assignments: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in change.values.items():
        assignments.append(
            sql.SQL("{} = {}").format(sql.Identifier(name), _value_sql(columns[name], value, params))
        )
    if change.geometry_given:
        column = sql.Identifier(collection.geometry_column)
        if change.geometry is None:
            assignments.append(sql.SQL("{} = NULL").format(column))
        else:
            geom, geom_params = geometry_sql(collection, change)
            assignments.append(sql.SQL("{} = {}").format(column, geom))
            params += geom_params
    # Even a write that changes nothing makes a new version (and runs the triggers).
    assignments.append(sql.SQL("updated_at = now()"))
    params.append(identifier)
    statement = sql.SQL("UPDATE {table} AS t SET {assignments} WHERE t.id = {id} RETURNING {version}").format(
        table=collection.table_sql,
        assignments=sql.SQL(", ").join(assignments),
        id=sql.Placeholder(),
        version=version_sql(collection),
    )
    return statement, params


def head_statement(collection: Collection, lock: bool, columns: Sequence[str] = ()) -> sql.Composed:
    """What a write needs to know of an existing item: its département, status and version
    (then `columns`, catalog names), locked for update when `lock`."""
    status = sql.SQL("t.status::text") if "status" in collection.fields else sql.SQL("NULL")
    return sql.SQL(
        "SELECT t.departement_code, {status}, {version}{columns} FROM {table} t WHERE t.id = %s{lock}"
    ).format(
        status=status,
        version=version_sql(collection),
        columns=sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier("t", c)) for c in columns),
        table=collection.table_sql,
        lock=sql.SQL(" FOR UPDATE") if lock else sql.SQL(""),
    )


def touch_statement(collection: Collection) -> sql.Composed:
    """Move one item's update stamp (what its version, the ETag, is made of); its new version.

    A write of an item's details (an action's results) changes what the item shows."""
    return sql.SQL("UPDATE {table} t SET updated_at = now() WHERE t.id = %s RETURNING {version}").format(
        table=collection.table_sql, version=version_sql(collection)
    )


def delete_statement(collection: Collection) -> sql.Composed:
    """DELETE one item; returns its id when it was deleted."""
    return sql.SQL("DELETE FROM {} t WHERE t.id = %s RETURNING t.id").format(collection.table_sql)


def if_match(header: str | None, version: str) -> None:
    """Refuse a write whose `If-Match` does not name the current version (412)."""
    from resorption.errors import PreconditionFailed

    if header is None or header.strip() == "*":
        return
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    if version not in tags:
        raise PreconditionFailed()


# -- what PostgreSQL refuses, in French --------------------------------------------------

CONSTRAINTS: dict[str, tuple[tuple[str, ...], str]] = {
    # sites
    "declared_after_built": (
        ("declared_at", "built_at"),
        "la date de signalement précède la date d'installation",
    ),
    "declared_not_future": (("declared_at",), "la date de signalement est dans le futur"),
    "sites_built_at_check": (("built_at",), "la date d'installation est dans le futur"),
    "households_le_total": (
        ("population_households",),
        "le nombre de ménages dépasse le nombre de personnes",
    ),
    "women_le_total": (("population_women",), "le nombre de femmes dépasse le nombre de personnes"),
    "minors_le_total": (("population_minors",), "le nombre de mineurs dépasse le nombre de personnes"),
    "girls_le_minors": (("population_girls",), "le nombre de filles dépasse le nombre de mineurs"),
    "age_brackets_le_minors": (
        ("minors_0_3", "minors_3_6", "minors_6_12", "minors_12_16", "minors_16_18"),
        "la somme des tranches d'âge dépasse le nombre de mineurs",
    ),
    "in_school_le_minors": (
        ("minors_in_school",),
        "le nombre de mineurs scolarisés dépasse le nombre de mineurs",
    ),
    "closed_iff_closing_status": (
        ("status", "closed_at"),
        "un site fermé a une date de fermeture, un site existant n'en a pas",
    ),
    "closed_after_declared": (("closed_at",), "la date de fermeture précède la date de signalement"),
    "closed_not_future": (("closed_at",), "la date de fermeture est dans le futur"),
    "closing_context_for_other": (
        ("closing_context",),
        "une fermeture « Autre » doit être expliquée dans le contexte de la fermeture",
    ),
    "closed_with_solutions_only_closed": (
        ("closed_with_solutions",),
        "seul un site fermé peut l'avoir été avec des solutions",
    ),
    "census_done_has_date": (("census_at",), "un diagnostic réalisé doit avoir une date"),
    "police_granted_after_requested": (
        ("police_granted_at",),
        "le concours de la force publique est accordé avant d'avoir été demandé",
    ),
    "owner_only_for_known_owner": (
        ("owner_name",),
        "un propriétaire nommé demande un type de propriétaire connu",
    ),
    "sites_resorption_target_check": (
        ("resorption_target",),
        "l'année doit être comprise entre 2018 et 2100",
    ),
    "location_valid": (("geometry",), "géométrie invalide ou vide"),
    "outline_valid": (("outline",), "contour invalide"),
    # actions
    "ended_after_started": (("ended_at",), "la date de fin précède la date de début"),
    "footprint_valid": (("geometry",), "emprise invalide"),
    "has_topic": (("topics",), "au moins une thématique est obligatoire"),
    "distinct_topics": (("topics",), "une même thématique figure deux fois"),
    "actions_name_check": (("name",), "le nom ne peut pas être vide"),
    # the journals (sql/150_journal.sql)
    **{
        f"{journal}_{name}": problem
        for journal in ("site_comments", "action_comments")
        for name, problem in {
            "message_check": (("message",), "le texte du message est obligatoire (5 000 caractères au plus)"),
            "tags_check": (("tags",), "10 étiquettes au plus, chacune une seule fois"),
            "audience_check": (
                ("visibility",),
                "nommez au moins une organisation ou une personne pour une visibilité « choisies », "
                "et aucune pour une autre visibilité",
            ),
            "hidden_check": (("hidden_reason",), "un message masqué par la modération exige un motif"),
        }.items()
    },
}


def constraint_errors(name: str | None) -> list[dict[str, str]]:
    """The French problems of a violated constraint, by field."""
    fields, message = CONSTRAINTS.get(
        name or "", (("properties",), "une règle de cohérence n'est pas respectée")
    )
    return [{"property": f, "message": message} for f in fields]


@contextmanager
def write_errors(collection: Collection) -> Iterator[None]:
    """Translate what PostgreSQL refuses in a write, by SQLSTATE class and constraint name."""
    try:
        yield
    except ResorptionError:
        raise
    except pg_errors.CheckViolation as exc:
        raise ValidationFailed(constraint_errors(exc.diag.constraint_name)) from exc
    except pg_errors.NotNullViolation as exc:
        raise ValidationFailed(
            [{"property": exc.diag.column_name or "properties", "message": "valeur obligatoire."}]
        ) from exc
    except pg_errors.UniqueViolation as exc:
        column = (
            (exc.diag.constraint_name or "")
            .removeprefix(collection.table.split(".")[-1] + "_")
            .removesuffix("_key")
        )
        raise ValidationFailed(
            [{"property": column or "properties", "message": "valeur déjà utilisée par un autre élément."}]
        ) from exc
    except pg_errors.ForeignKeyViolation as exc:
        raise ValidationFailed(
            [{"property": exc.diag.column_name or "properties", "message": "code inconnu."}]
        ) from exc
    except pg_errors.InsufficientPrivilege as exc:
        raise Forbidden(
            exc.diag.message_primary
            if exc.diag.sqlstate == "42501" and (exc.diag.message_primary or "").startswith("Vous ")
            else "Vous n'avez pas le droit d'écrire cet élément à cet endroit."
        ) from exc
