"""Parsing of OGC API Features query parameters into a `FeatureQuery`.

Every mistake a client can make gets an `InvalidParameter` whose French
message names the parameter, what was received and what would be right.
A property the caller may not read is reported exactly like one that does
not exist.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from resorption.catalog import Collection, Field
from resorption.cql import check_enum, parse_filter, unknown_property_message
from resorption.crs import check_in_domain, parse_crs
from resorption.errors import InvalidParameter
from resorption.query import Bbox, FeatureQuery, Interval
from resorption.settings import Limits

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
# `q` lists alternatives, each a full-text query of its own: a few are a search, thousands
# (8 KB of "a,a,a…") are seconds of PostgreSQL time.
MAX_SEARCH_TERMS = 20

# Parameters of the standard; any other parameter named like a readable
# property filters on equality (OGC API Features Part 1, §7.15.4).
RESERVED = {
    "f",
    "lang",
    "limit",
    "offset",
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "properties",
    "skipGeometry",
    "sortby",
    "q",
    "filter",
    "filter-lang",
    "filter-crs",
    "resulttype",
}


def parse_items(
    collection: Collection,
    readable: tuple[Field, ...],
    args: Mapping[str, str],
    limits: Limits,
    body: Any = None,
) -> FeatureQuery:
    """Validate the query string (and an optional CQL2 JSON body) of an items request."""
    by_name = {f.name: f for f in readable}
    filter_text = args.get("filter")
    return FeatureQuery(
        collection=collection,
        readable=readable,
        limit=parse_limit(args.get("limit")),
        offset=_non_negative_int(args.get("offset"), "offset", 0),
        select=_properties(args.get("properties"), by_name, collection),
        skip_geometry=parse_bool(args.get("skipGeometry"), "skipGeometry"),
        bbox=_bbox(args.get("bbox"), args.get("bbox-crs")),
        interval=parse_datetime(args.get("datetime")),
        equals=tuple(
            (by_name[k], _typed(by_name[k], v))
            for k, v in args.items()
            if k not in RESERVED and k in by_name and by_name[k].filterable
        ),
        sortby=_sortby(args.get("sortby"), by_name, collection),
        terms=_search_terms(args.get("q")),
        filter_tree=parse_filter(filter_text, body, args.get("filter-lang"), limits),
        filter_crs=parse_crs(args.get("filter-crs"), "filter-crs"),
        crs=parse_crs(args.get("crs"), "crs"),
        hits_only=_resulttype(args.get("resulttype")),
    )


def check_known_parameters(
    collection: Collection, readable: tuple[Field, ...], names: Iterable[str], extra: Iterable[str] = ()
) -> None:
    """Refuse a query parameter that is neither the standard's, nor `extra`, nor an equality filter.

    OGC API Features Part 1, /req/core/query-param-unknown: an unknown parameter is a 400, so
    that a misspelt `bbox` or `filtre` never silently answers the whole collection. A property
    the caller may not read is refused with the same words as one that does not exist.
    """
    filterable = {f.name for f in readable if f.filterable}
    allowed = RESERVED | filterable | set(extra)
    unknown = sorted({n for n in names if n not in allowed})
    if unknown:
        shown = ", ".join(f"« {n[:40]} »" for n in unknown[:5])
        raise InvalidParameter(
            f"Paramètre inconnu : {shown}. Paramètres admis : {', '.join(sorted(RESERVED | set(extra)))}, "
            f"et le nom d'une propriété filtrable pour une égalité (liste : "
            f"/collections/{collection.id}/queryables)."
        )


def parse_item(collection: Collection, readable: tuple[Field, ...], args: Mapping[str, str]) -> FeatureQuery:
    """Validate the query string of a single-item request (crs, properties, skipGeometry)."""
    by_name = {f.name: f for f in readable}
    return FeatureQuery(
        collection=collection,
        readable=readable,
        select=_properties(args.get("properties"), by_name, collection),
        skip_geometry=parse_bool(args.get("skipGeometry"), "skipGeometry"),
        crs=parse_crs(args.get("crs"), "crs"),
    )


def parse_limit(raw: str | None) -> int:
    """`limit`: 1 to 10,000; larger values are reduced to the maximum, as the standard allows."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(
            f"limit doit être un nombre entier entre 1 et {MAX_LIMIT}, reçu « {raw} »."
        ) from None
    if value < 1:
        raise InvalidParameter(f"limit doit être au moins 1, reçu {value}.")
    return min(value, MAX_LIMIT)


def _search_terms(raw: str | None) -> tuple[str, ...]:
    terms = tuple(t.strip() for t in (raw or "").split(",") if t.strip())
    if len(terms) > MAX_SEARCH_TERMS:
        raise InvalidParameter(
            f"q : {MAX_SEARCH_TERMS} termes au plus, séparés par des virgules ; reçu {len(terms)}."
        )
    return terms


def _non_negative_int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} doit être un nombre entier positif, reçu « {raw} ».") from None
    if value < 0:
        raise InvalidParameter(f"{name} doit être positif ou nul, reçu {value}.")
    return value


def parse_bool(raw: str | None, name: str) -> bool:
    """A boolean parameter: true/false (also 1/0, yes/no, oui/non)."""
    if raw is None or raw == "":
        return False
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "oui"):
        return True
    if lowered in ("false", "0", "no", "non"):
        return False
    raise InvalidParameter(f"{name} vaut true ou false, reçu « {raw} ».")


def _resulttype(raw: str | None) -> bool:
    if raw in (None, "", "results"):
        return False
    if raw == "hits":
        return True
    raise InvalidParameter(f"resulttype vaut results ou hits, reçu « {raw} ».")


def _bbox(raw: str | None, raw_crs: str | None) -> Bbox | None:
    if raw is None or raw == "":
        if raw_crs:
            raise InvalidParameter("bbox-crs est donné sans bbox.")
        return None
    parts = raw.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InvalidParameter(
            f"bbox attend 4 nombres séparés par des virgules (xmin,ymin,xmax,ymax), reçu « {raw} »."
        ) from None
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise InvalidParameter(
            f"bbox attend 4 (ou 6) nombres finis séparés par des virgules, reçu « {raw} »."
        )
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    crs = parse_crs(raw_crs, "bbox-crs")
    xmin, ymin, xmax, ymax = values
    if crs.lat_first:
        xmin, ymin, xmax, ymax = ymin, xmin, ymax, xmax  # check in lon/lat terms
    if crs.srid == 4326:
        if not (-180 <= xmin <= 180 and -180 <= xmax <= 180):
            raise InvalidParameter(f"bbox : une longitude doit être comprise entre -180 et 180 (« {raw} »).")
        if not (-90 <= ymin <= 90 and -90 <= ymax <= 90):
            raise InvalidParameter(f"bbox : une latitude doit être comprise entre -90 et 90 (« {raw} »).")
    if xmin > xmax or ymin > ymax:
        raise InvalidParameter(
            f"bbox : le coin inférieur gauche doit précéder le coin supérieur droit "
            f"(xmin ≤ xmax et ymin ≤ ymax), reçu « {raw} »."
        )
    check_in_domain(crs, [(values[0], values[1]), (values[2], values[3])], "bbox")
    return Bbox(*values, crs=crs)


def parse_datetime(raw: str | None) -> Interval | None:
    """`datetime`: an instant, or an interval `start/end` with `..` for an open end.

    A single value (an instant, or a whole day) is marked `single`: on a collection with
    a history it asks for the rows as they stood then (time travel, see `query.py`).
    """
    if raw is None or raw == "":
        return None
    if "/" in raw:
        bounds = raw.split("/")
        if len(bounds) != 2:
            raise InvalidParameter(f"datetime : un intervalle s'écrit début/fin, reçu « {raw} ».")
        start, end = (_instant(b, raw, is_end=i == 1) for i, b in enumerate(bounds))
        if start is not None and end is not None and start > end:
            raise InvalidParameter(f"datetime : le début suit la fin dans « {raw} ».")
        return Interval(start, end)
    start = _instant(raw, raw, is_end=False)
    if start is None:
        raise InvalidParameter("datetime : « .. » n'est permis que comme borne d'un intervalle.")
    end = _instant(raw, raw, is_end=True)
    return Interval(start, end, single=True)


def _instant(text: str, raw: str, is_end: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("..", ""):
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            # A whole day: from its first to its last instant.
            moment = dt.time.max if is_end else dt.time.min
            return dt.datetime.combine(day, moment, tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidParameter(
            f"datetime : « {text} » n'est pas une date (AAAA-MM-JJ) ni un horodatage RFC 3339 "
            f"(AAAA-MM-JJThh:mm:ssZ) dans « {raw} »."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _properties(raw: str | None, by_name: Mapping[str, Field], c: Collection) -> tuple[Field, ...] | None:
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InvalidParameter(unknown_property_message(unknown[0], c.id, by_name))
    return tuple(by_name[n] for n in dict.fromkeys(names))


def _sortby(raw: str | None, by_name: Mapping[str, Field], c: Collection) -> tuple[tuple[Field, bool], ...]:
    if raw is None or raw.strip() == "":
        return ()
    keys = []
    for item in raw.split(","):
        item = item.strip()
        desc = item.startswith("-")
        name = item.lstrip("+-").strip()
        f = by_name.get(name)
        if f is None:
            raise InvalidParameter("sortby : " + unknown_property_message(name, c.id, by_name))
        if not f.sortable:
            raise InvalidParameter(
                f"sortby : la propriété « {name} » est une liste et ne peut servir au tri."
            )
        keys.append((f, desc))
    return tuple(keys)


def _typed(f: Field, raw: str) -> Any:
    """The value of `?property=value`, converted to the field's type."""
    check_enum(f, raw)
    if f.type == "integer":
        try:
            return int(raw)
        except ValueError:
            raise InvalidParameter(f"« {f.name} » attend un nombre entier, reçu « {raw} ».") from None
    if f.type == "number":
        try:
            return float(raw)
        except ValueError:
            raise InvalidParameter(f"« {f.name} » attend un nombre, reçu « {raw} ».") from None
    if f.type == "boolean":
        return parse_bool(raw, f.name)
    if f.format == "date":
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise InvalidParameter(f"« {f.name} » attend une date AAAA-MM-JJ, reçu « {raw} ».") from None
    if f.format == "date-time":
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidParameter(f"« {f.name} » attend un horodatage ISO 8601, reçu « {raw} ».") from None
    return raw
