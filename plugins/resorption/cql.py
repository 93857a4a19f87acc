"""CQL2 filters compiled to SQL, through an allow-list of properties.

Filters are parsed by `cql2` (the reference CQL2 implementation, text and
JSON), whose canonical JSON tree we compile here. pygeofilter 0.4, which
pygeoapi uses, rejects standard CQL2 text (`T_BEFORE(a, b)`, `BBOX(…)`
literals, date intervals, `A_CONTAINS`) and reads JSON `bbox` and `between`
wrongly, so it cannot be trusted with our users' filters.

The compiler is the security seam: a property resolves only through the map
of fields the caller may read; any other name is a 400 that reads exactly
like the one for a property that does not exist. Values always become
parameters, never SQL text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cql2
from psycopg import sql

from resorption.catalog import Field
from resorption.crs import DEFAULT, Crs, check_in_domain
from resorption.errors import InvalidParameter
from resorption.limits import check_cql2_json, check_cql2_text, check_cql2_tree
from resorption.settings import Limits

if TYPE_CHECKING:  # the builder defines the parameters and imports this module
    from resorption.query import Params

# Kinds of expressions, to refuse comparisons that make no sense with a clear message.
TEXT, NUMBER, BOOLEAN, TEMPORAL, GEOMETRY, ARRAY, NULL, INTERVAL = (
    "texte",
    "nombre",
    "booléen",
    "date",
    "géométrie",
    "liste",
    "null",
    "intervalle",
)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled expression and what kind of value it yields."""

    sql: sql.Composable
    kind: str
    field: Field | None = None


@dataclass(frozen=True, slots=True)
class GeometryContext:
    """The geometry column, and how geometry literals of a filter are read (`filter-crs`)."""

    column: sql.Composable
    name: str
    crs: Crs = DEFAULT

    @property
    def srid(self) -> int:
        return self.crs.srid

    @property
    def swap_axes(self) -> bool:
        # EPSG:4326 given by URI is latitude first; PostGIS works longitude first.
        return self.crs.lat_first


def parse_filter(
    text: str | None, body: Any, lang: str | None, limits: Limits
) -> dict[str, Any] | bool | None:
    """Parse `filter` (CQL2 text or JSON) or a CQL2 JSON body into the canonical JSON tree."""
    if text is None and body is None:
        return None
    if lang not in (None, "cql2-text", "cql2-json"):
        raise InvalidParameter(
            f"filter-lang « {lang} » n'est pas pris en charge : utilisez cql2-text ou cql2-json."
        )
    # The limits are checked before the native parser runs: it recurses on the C stack and
    # a deep enough filter kills the worker instead of raising (see resorption.limits).
    if body is not None:
        source, is_json = body if isinstance(body, str) else json.dumps(body), True
    else:
        source, is_json = text, lang == "cql2-json" or (lang is None and text.lstrip().startswith("{"))
    if is_json:
        check_cql2_json(source, limits)
    else:
        check_cql2_text(source, limits)
    try:
        tree = (cql2.parse_json(source) if is_json else cql2.parse_text(source)).to_json()
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise InvalidParameter(f"Le filtre CQL2 est mal formé : {detail}") from None
    check_cql2_tree(tree, limits)
    return tree


class FilterCompiler:
    """Compile one CQL2 JSON tree into a boolean SQL expression."""

    def __init__(
        self,
        fields: Mapping[str, Field],
        geometry: GeometryContext,
        params: Params,
        collection_id: str,
    ) -> None:
        self.fields = fields
        self.geometry = geometry
        self.params = params
        self.collection_id = collection_id

    def compile(self, tree: Any) -> sql.Composable:
        """The SQL condition for `tree`; raises InvalidParameter with a French message."""
        result = self._node(tree)
        if result.kind != BOOLEAN:
            raise InvalidParameter(
                f"Le filtre doit être une condition (vraie ou fausse), pas une valeur de type {result.kind}."
            )
        return result.sql

    # -- dispatch -------------------------------------------------------------

    def _node(self, node: Any) -> Compiled:
        if isinstance(node, bool):
            return Compiled(sql.SQL("TRUE" if node else "FALSE"), BOOLEAN)
        if node is None:
            return Compiled(sql.SQL("NULL"), NULL)
        if isinstance(node, int | float):
            return Compiled(self.params.add(node), NUMBER)
        if isinstance(node, str):
            return Compiled(self.params.add(node), TEXT)
        if isinstance(node, list):
            raise InvalidParameter("Une liste de valeurs n'est permise qu'avec IN et A_….")
        if not isinstance(node, dict):
            raise InvalidParameter("Élément de filtre non reconnu.")
        if "property" in node:
            return self._property(node["property"])
        if "date" in node:
            return Compiled(self.params.add(_date(node["date"])), TEMPORAL)
        if "timestamp" in node:
            return Compiled(self.params.add(_timestamp(node["timestamp"])), TEMPORAL)
        if "interval" in node:
            raise InvalidParameter("Un intervalle n'est permis que dans un prédicat temporel T_….")
        if "bbox" in node or ("type" in node and ("coordinates" in node or "geometries" in node)):
            return self._geometry_literal(node)
        if "op" in node:
            op = str(node["op"]).lower()
            handler = self._handlers().get(op)
            if handler is None:
                raise InvalidParameter(
                    f"L'opérateur ou la fonction « {node['op']} » n'est pas pris en charge."
                )
            return handler(op, list(node.get("args") or []))
        raise InvalidParameter("Élément de filtre non reconnu.")

    def _handlers(self) -> dict[str, Callable[[str, list[Any]], Compiled]]:
        handlers: dict[str, Callable[[str, list[Any]], Compiled]] = {
            "and": self._logical,
            "or": self._logical,
            "not": self._not,
            "=": self._comparison,
            "<>": self._comparison,
            "<": self._comparison,
            "<=": self._comparison,
            ">": self._comparison,
            ">=": self._comparison,
            "like": self._like,
            "between": self._between,
            "in": self._in,
            "isnull": self._is_null,
            "casei": self._text_function,
            "accenti": self._text_function,
            "+": self._arithmetic,
            "-": self._arithmetic,
            "*": self._arithmetic,
            "/": self._arithmetic,
        }
        handlers.update({op: self._spatial for op in SPATIAL})
        handlers["s_dwithin"] = handlers["dwithin"] = self._dwithin
        handlers.update({op: self._temporal for op in TEMPORAL_RELATIONS})
        handlers.update({op: self._array for op in ARRAY_OPERATORS})
        return handlers

    # -- leaves ---------------------------------------------------------------

    def _property(self, name: str) -> Compiled:
        if name in ("geometry", self.geometry.name):
            return Compiled(self.geometry.column, GEOMETRY)
        f = self.fields.get(name)
        if f is None or not f.filterable:
            raise InvalidParameter(unknown_property_message(name, self.collection_id, self.fields))
        if f.type == "array":
            # Enum arrays compare as text so literals need no cast to our enum types.
            expr = sql.SQL("({})::text[]").format(f.expression) if f.enum else f.expression
            return Compiled(expr, ARRAY, f)
        if f.is_temporal:
            return Compiled(f.expression, TEMPORAL, f)
        if f.type in ("integer", "number"):
            return Compiled(f.expression, NUMBER, f)
        if f.type == "boolean":
            return Compiled(f.expression, BOOLEAN, f)
        expr = sql.SQL("({})::text").format(f.expression) if f.enum else f.expression
        return Compiled(expr, TEXT, f)

    def _geometry_literal(self, node: dict[str, Any]) -> Compiled:
        g = self.geometry
        if "bbox" in node:
            box = node["bbox"]
            if len(box) not in (4, 6):
                raise InvalidParameter("BBOX attend 4 (ou 6) nombres.")
            xmin, ymin, xmax, ymax = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
            if g.swap_axes:
                xmin, ymin, xmax, ymax = ymin, xmin, ymax, xmax
            check_in_domain(g.crs, [(xmin, ymin), (xmax, ymax)], "filter")
            shape = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
                *(self.params.add(float(v)) for v in (xmin, ymin, xmax, ymax)), sql.Literal(g.srid)
            )
        else:
            check_in_domain(g.crs, _positions(node), "filter")
            shape = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), {})").format(
                self.params.add(json.dumps(node)), sql.Literal(g.srid)
            )
            if g.swap_axes:
                shape = sql.SQL("ST_FlipCoordinates({})").format(shape)
        if g.srid != 4326:
            shape = sql.SQL("ST_Transform({}, 4326)").format(shape)
        return Compiled(shape, GEOMETRY)

    # -- logic and comparisons ----------------------------------------------

    def _logical(self, op: str, args: list[Any]) -> Compiled:
        parts = [self._condition(a) for a in args]
        if not parts:
            raise InvalidParameter(f"{op.upper()} attend au moins une condition.")
        joiner = sql.SQL(" AND " if op == "and" else " OR ")
        return Compiled(sql.SQL("({})").format(joiner.join(parts)), BOOLEAN)

    def _not(self, op: str, args: list[Any]) -> Compiled:
        _arity(op, args, 1)
        return Compiled(sql.SQL("(NOT {})").format(self._condition(args[0])), BOOLEAN)

    def _condition(self, node: Any) -> sql.Composable:
        c = self._node(node)
        if c.kind != BOOLEAN:
            raise InvalidParameter(f"Une condition est attendue, pas une valeur de type {c.kind}.")
        return c.sql

    def _comparison(self, op: str, args: list[Any]) -> Compiled:
        _arity(op, args, 2)
        lhs, rhs = self._operand(args[0], args[1]), self._operand(args[1], args[0])
        _same_kind(op, lhs, rhs, allowed=(TEXT, NUMBER, BOOLEAN, TEMPORAL))
        if lhs.kind == ARRAY or rhs.kind == ARRAY:
            raise InvalidParameter(f"« {op} » ne compare pas des listes : utilisez A_CONTAINS.")
        return Compiled(sql.SQL("({} {} {})").format(lhs.sql, sql.SQL(op), rhs.sql), BOOLEAN)

    def _operand(self, node: Any, other: Any) -> Compiled:
        """Compile `node`, reading a string literal as a date or an enum value when `other` is."""
        peer = self._peer_field(other)
        if isinstance(node, str) and peer is not None:
            if peer.is_temporal:
                value = _timestamp(node) if peer.format == "date-time" else _date(node)
                return Compiled(self.params.add(value), TEMPORAL)
            check_enum(peer, node)
        return self._node(node)

    def _peer_field(self, node: Any) -> Field | None:
        if isinstance(node, dict) and "property" in node:
            f = self.fields.get(node["property"])
            return f if f is not None and f.filterable else None
        return None

    def _like(self, op: str, args: list[Any]) -> Compiled:
        _arity(op, args, 2)
        lhs, pattern = self._node(args[0]), self._node(args[1])
        for c in (lhs, pattern):
            if c.kind != TEXT:
                raise InvalidParameter(f"LIKE compare du texte, pas une valeur de type {c.kind}.")
        return Compiled(sql.SQL("({} LIKE {})").format(lhs.sql, pattern.sql), BOOLEAN)

    def _between(self, op: str, args: list[Any]) -> Compiled:
        _arity(op, args, 3)
        value = self._node(args[0])
        low, high = self._operand(args[1], args[0]), self._operand(args[2], args[0])
        for bound in (low, high):
            _same_kind("BETWEEN", value, bound, allowed=(NUMBER, TEMPORAL))
        return Compiled(sql.SQL("({} BETWEEN {} AND {})").format(value.sql, low.sql, high.sql), BOOLEAN)

    def _in(self, op: str, args: list[Any]) -> Compiled:
        _arity(op, args, 2)
        if not isinstance(args[1], list) or not args[1]:
            raise InvalidParameter("IN attend une liste de valeurs non vide.")
        lhs = self._node(args[0])
        values = [self._operand(v, args[0]) for v in args[1]]
        for v in values:
            _same_kind("IN", lhs, v, allowed=(TEXT, NUMBER, BOOLEAN, TEMPORAL))
        return Compiled(
            sql.SQL("({} IN ({}))").format(lhs.sql, sql.SQL(", ").join(v.sql for v in values)),
            BOOLEAN,
        )

    def _is_null(self, op: str, args: list[Any]) -> Compiled:
        _arity("IS NULL", args, 1)
        return Compiled(sql.SQL("({} IS NULL)").format(self._node(args[0]).sql), BOOLEAN)

    def _text_function(self, op: str, args: list[Any]) -> Compiled:
        _arity(op.upper(), args, 1)
        arg = self._node(args[0])
        if arg.kind != TEXT:
            raise InvalidParameter(
                f"{op.upper()} s'applique à du texte, pas à une valeur de type {arg.kind}."
            )
        fn = "lower" if op == "casei" else "public.unaccent"
        return Compiled(sql.SQL("{}({})").format(sql.SQL(fn), arg.sql), TEXT)

    def _arithmetic(self, op: str, args: list[Any]) -> Compiled:
        _arity(op, args, 2)
        lhs, rhs = self._node(args[0]), self._node(args[1])
        for c in (lhs, rhs):
            if c.kind != NUMBER:
                raise InvalidParameter(
                    f"« {op} » s'applique à des nombres, pas à une valeur de type {c.kind}."
                )
        if op == "/":
            # Division by zero would be a database error; NULLIF makes it an unknown value.
            return Compiled(sql.SQL("({}::numeric / NULLIF({}, 0))").format(lhs.sql, rhs.sql), NUMBER)
        return Compiled(sql.SQL("({} {} {})").format(lhs.sql, sql.SQL(op), rhs.sql), NUMBER)

    # -- spatial, temporal, arrays ---------------------------------------------

    def _spatial(self, op: str, args: list[Any]) -> Compiled:
        _arity(op.upper(), args, 2)
        lhs, rhs = self._node(args[0]), self._node(args[1])
        for c in (lhs, rhs):
            if c.kind != GEOMETRY:
                raise InvalidParameter(
                    f"{op.upper()} compare des géométries, pas une valeur de type {c.kind}."
                )
        return Compiled(sql.SQL("{}({}, {})").format(sql.SQL(SPATIAL[op]), lhs.sql, rhs.sql), BOOLEAN)

    def _dwithin(self, op: str, args: list[Any]) -> Compiled:
        """S_DWITHIN(a, b, distance[, units]): within `distance` metres (or km) on the ellipsoid.

        The distance is measured on the geography (metres, whatever the CRS); a box around
        the literal side, widened by the distance in degrees, lets the column's GiST index
        choose the candidates first.
        """
        if len(args) not in (3, 4):
            raise InvalidParameter(
                f"« {op.upper()} » attend 3 ou 4 arguments (géométrie, géométrie, distance, unité), "
                f"{len(args)} reçu(s)."
            )
        lhs, rhs = self._node(args[0]), self._node(args[1])
        for c in (lhs, rhs):
            if c.kind != GEOMETRY:
                raise InvalidParameter(
                    f"{op.upper()} compare des géométries, pas une valeur de type {c.kind}."
                )
        distance = args[2]
        if isinstance(distance, bool) or not isinstance(distance, int | float):
            raise InvalidParameter(f"{op.upper()} attend une distance numérique en troisième argument.")
        unit = args[3] if len(args) == 4 else "meters"
        if isinstance(unit, dict) and set(unit) == {"property"}:
            unit = unit["property"]  # a bare word (meters) reads as a property name in CQL2 text
        factor = DISTANCE_UNITS.get(str(unit).lower()) if isinstance(unit, str) else None
        if factor is None:
            raise InvalidParameter(
                f"Unité de distance « {unit} » inconnue pour {op.upper()} : {', '.join(DISTANCE_UNITS)}."
            )
        metres = float(distance) * factor
        if not 0 <= metres <= MAX_DWITHIN_METRES:
            raise InvalidParameter(
                f"La distance de {op.upper()} doit être comprise entre 0 et "
                f"{MAX_DWITHIN_METRES // 1000:g} km (reçu {metres:g} m)."
            )
        d = self.params.add(metres)
        exact = sql.SQL("ST_DWithin(({})::geography, ({})::geography, {})").format(lhs.sql, rhs.sql, d)
        literal, column = (lhs, rhs) if _is_property(args[1]) else (rhs, lhs)
        # Degrees of latitude are ≥ 110.5 km; a degree of longitude shrinks with cos(latitude).
        box = sql.SQL(
            "(({column}) && ST_Expand(ST_Envelope({literal}),"
            " {d} / (110000.0 * cos(radians(least(89.0,"
            " greatest(abs(ST_YMin({literal})), abs(ST_YMax({literal}))) + {d} / 110000.0)))),"
            " {d} / 110000.0))"
        ).format(column=column.sql, literal=literal.sql, d=d)
        return Compiled(sql.SQL("({} AND {})").format(box, exact), BOOLEAN)

    def _temporal(self, op: str, args: list[Any]) -> Compiled:
        _arity(op.upper(), args, 2)
        a1, a2 = self._period(args[0], args[1])
        b1, b2 = self._period(args[1], args[0])
        template = TEMPORAL_RELATIONS[op]
        return Compiled(sql.SQL(template).format(a1=a1, a2=a2, b1=b1, b2=b2), BOOLEAN)

    def _period(self, node: Any, other: Any) -> tuple[sql.Composable, sql.Composable]:
        """Start and end of an instant or interval, as timestamps (open ends are infinite)."""
        if isinstance(node, dict) and "interval" in node:
            bounds = node["interval"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise InvalidParameter("INTERVAL attend deux bornes.")
            start, end = (
                self._bound(b, infinity)
                for b, infinity in zip(bounds, ("-infinity", "infinity"), strict=True)
            )
            return start, end
        c = self._operand(node, other)
        if c.kind != TEMPORAL:
            raise InvalidParameter(
                f"Un prédicat temporel compare des dates, pas une valeur de type {c.kind}."
            )
        instant = sql.SQL("({})::timestamptz").format(c.sql)
        return instant, instant

    def _bound(self, bound: Any, infinity: str) -> sql.Composable:
        if bound == ".." or bound is None:
            return sql.SQL("{}::timestamptz").format(sql.Literal(infinity))
        if isinstance(bound, dict) and "property" in bound:
            c = self._property(bound["property"])
            if c.kind != TEMPORAL:
                raise InvalidParameter(f"La borne « {bound['property']} » n'est pas une date.")
            return sql.SQL("({})::timestamptz").format(c.sql)
        if isinstance(bound, dict):
            bound = bound.get("date") or bound.get("timestamp")
        if not isinstance(bound, str):
            raise InvalidParameter("Une borne d'intervalle doit être une date, un horodatage ou « .. ».")
        value = _timestamp(bound) if "T" in bound else _date(bound)
        return sql.SQL("{}::timestamptz").format(self.params.add(value))

    def _array(self, op: str, args: list[Any]) -> Compiled:
        _arity(op.upper(), args, 2)
        sides = []
        for node, other in ((args[0], args[1]), (args[1], args[0])):
            if isinstance(node, list):
                peer = self._peer_field(other)
                for v in node:
                    if not isinstance(v, str | int | float) or isinstance(v, bool):
                        raise InvalidParameter(f"{op.upper()} attend une liste de textes ou de nombres.")
                    if peer is not None:
                        check_enum(peer, str(v))
                is_text = peer is None or peer.enum or peer.item_type == "string"
                values = [str(v) for v in node] if is_text else node
                cast = "text[]" if is_text else "numeric[]"
                if peer is not None and peer.item_type == "integer":
                    # bigint[] columns (an action's site_ids) do not compare with numeric[].
                    if any(isinstance(v, str) or v != int(v) for v in node):
                        raise InvalidParameter(f"{op.upper()} attend une liste de nombres entiers ici.")
                    values, cast = [int(v) for v in node], "bigint[]"
                sides.append(sql.SQL("{}::{}").format(self.params.add(values), sql.SQL(cast)))
            else:
                c = self._node(node)
                if c.kind != ARRAY:
                    raise InvalidParameter(
                        f"{op.upper()} compare des listes, pas une valeur de type {c.kind}."
                    )
                sides.append(c.sql)
        return Compiled(sql.SQL(ARRAY_OPERATORS[op]).format(*sides), BOOLEAN)


SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_equals": "ST_Equals",
    "s_disjoint": "ST_Disjoint",
    "s_touches": "ST_Touches",
    "s_within": "ST_Within",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
    "s_contains": "ST_Contains",
}

# S_DWITHIN's units (OGC's CQL2 drafts and ECQL spell them out): metres in each.
DISTANCE_UNITS = {
    "meters": 1.0, "metres": 1.0, "meter": 1.0, "metre": 1.0, "m": 1.0,
    "kilometers": 1000.0, "kilometres": 1000.0, "kilometer": 1000.0, "kilometre": 1000.0, "km": 1000.0,
}  # fmt: skip
# Beyond a département's size a distance filter is a mistake or a costly scan.
MAX_DWITHIN_METRES = 1_000_000

# Allen's relations between [a1, a2] and [b1, b2]; an instant has a1 = a2.
TEMPORAL_RELATIONS = {
    "t_after": "({a1} > {b2})",
    "t_before": "({a2} < {b1})",
    "t_contains": "({a1} < {b1} AND {a2} > {b2})",
    "t_disjoint": "({a2} < {b1} OR {a1} > {b2})",
    "t_during": "({a1} > {b1} AND {a2} < {b2})",
    "t_equals": "({a1} = {b1} AND {a2} = {b2})",
    "t_finishedby": "({a2} = {b2} AND {a1} < {b1})",
    "t_finishes": "({a2} = {b2} AND {a1} > {b1})",
    "t_intersects": "({a1} <= {b2} AND {a2} >= {b1})",
    "t_meets": "({a2} = {b1})",
    "t_metby": "({a1} = {b2})",
    "t_overlappedby": "({b1} < {a1} AND {b2} > {a1} AND {b2} < {a2})",
    "t_overlaps": "({a1} < {b1} AND {a2} > {b1} AND {a2} < {b2})",
    "t_startedby": "({a1} = {b1} AND {a2} > {b2})",
    "t_starts": "({a1} = {b1} AND {a2} < {b2})",
}

ARRAY_OPERATORS = {
    "a_equals": "({0} @> {1} AND {0} <@ {1})",
    "a_contains": "({0} @> {1})",
    "a_containedby": "({0} <@ {1})",
    "a_overlaps": "({0} && {1})",
}


def unknown_property_message(name: str, collection_id: str, fields: Mapping[str, Field]) -> str:
    """The one message for a property that does not exist or may not be used."""
    known = ", ".join(sorted(n for n, f in fields.items() if f.filterable))
    return (
        f"La propriété « {name} » n'existe pas dans la collection « {collection_id} ». "
        f"Propriétés disponibles : {known}."
    )


def _positions(node: Any) -> list[tuple[float, float]]:
    """Every (x, y) of a GeoJSON geometry, however deeply nested."""
    found: list[tuple[float, float]] = []

    def walk(value: Any) -> None:
        if (
            isinstance(value, list | tuple)
            and len(value) >= 2
            and all(isinstance(v, int | float) for v in value[:2])
        ):
            found.append((float(value[0]), float(value[1])))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(node.get("coordinates", []))
    for geometry in node.get("geometries", []):
        found.extend(_positions(geometry))
    return found


def _is_property(node: Any) -> bool:
    return isinstance(node, dict) and "property" in node


def _arity(op: str, args: list[Any], n: int) -> None:
    if len(args) != n:
        raise InvalidParameter(f"« {op} » attend {n} argument(s), {len(args)} reçu(s).")


def _same_kind(op: str, lhs: Compiled, rhs: Compiled, allowed: tuple[str, ...]) -> None:
    kinds = {lhs.kind, rhs.kind} - {NULL}
    if len(kinds) > 1:
        raise InvalidParameter(
            f"« {op} » compare une valeur de type {lhs.kind} à une valeur de type {rhs.kind}."
        )
    if kinds and not kinds <= set(allowed):
        raise InvalidParameter(f"« {op} » ne s'applique pas à une valeur de type {kinds.pop()}.")


def check_enum(f: Field, value: str) -> None:
    """Refuse a value outside an enumerated field's values, listing the possible ones."""
    if f.enum and value not in f.enum:
        raise InvalidParameter(
            f"« {value} » n'est pas une valeur possible de « {f.name} ». "
            f"Valeurs possibles : {', '.join(f.enum)}."
        )


def _date(text: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise InvalidParameter(f"« {text} » n'est pas une date AAAA-MM-JJ.") from None


def _timestamp(text: Any) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidParameter(f"« {text} » n'est pas un horodatage ISO 8601.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# The functions beyond CQL2's standard ones, as OGC API Features Part 3 lists them at `/functions`.
FUNCTIONS: tuple[dict[str, Any], ...] = (
    {
        "name": "S_DWITHIN",
        "description": (
            "Vrai quand les deux géométries sont à moins de `distance` l'une de l'autre, mesurée sur "
            "l'ellipsoïde (mètres, quel que soit le système de coordonnées du filtre). Aussi écrite "
            "DWITHIN. Exemple : S_DWITHIN(geometry, POINT(-0.57 44.84), 200, 'meters')."
        ),
        "arguments": [
            {"title": "Première géométrie", "type": ["geometry"]},
            {"title": "Seconde géométrie", "type": ["geometry"]},
            {"title": "Distance (au plus 1 000 km)", "type": ["number"]},
            {
                "title": f"Unité (facultative, mètres par défaut) : {', '.join(DISTANCE_UNITS)}",
                "type": ["string"],
            },
        ],
        "returns": ["boolean"],
    },
)
