"""Features: a parsed feature request becomes ONE SQL statement.

Built one clause at a time (projection, where, order, limit) with psycopg's composition
objects: names are identifiers or trusted catalog expressions, values are always named
parameters. PostgreSQL assembles the GeoJSON; Python passes it on. The same clauses give
the rows as plain columns (`rows_statement`, for files and spreadsheets) and the conditions
of a request to statements that add their own (`condition`).

Time travel. `datetime` keeps the meaning of OGC API Features: the features whose own
time span (a site's declared_at to closed_at) meets the instant or the interval. On a
collection that keeps a history (`history:` in its catalog file), a single `datetime`
value also chooses *which version* of each row is read: the statement reads the
history table instead of the live one, keeping the version valid at that instant
(`valid @> instant`; for a whole day, its last instant, so that the day's changes
count). A site shows the population and the status recorded then, a site closed
since shows open, a site deleted since comes back, a site not yet recorded is
absent; every other clause (filters, bbox, q, sortby, paging) and the access control
(row-level security and column privileges on the history table, mirroring the live
one) apply unchanged, because the history table has the same columns. An interval
(`start/end`) reads the live table: "the sites present at some time during the
interval", as they are now. Details kept in other tables (a site's closing solutions
and reinstallation origins, an action's partners and indicators) are not versioned
and show as they are now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from resorption.catalog import Collection, Field
from resorption.cql import FilterCompiler, GeometryContext
from resorption.crs import DEFAULT, Crs, lonlat_domain

SEARCH_CONFIG = "resorption.fr_unaccent"


class Params(dict[str, Any]):
    """Named query parameters, collected while SQL is composed."""

    def add(self, value: Any) -> sql.Placeholder:
        """Store `value` and return its placeholder."""
        name = f"p{len(self)}"
        self[name] = value
        return sql.Placeholder(name)


@dataclass(frozen=True, slots=True)
class Bbox:
    """A bounding box as given by the client, in its own CRS."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    crs: Crs = DEFAULT


@dataclass(frozen=True, slots=True)
class Interval:
    """A `datetime` instant (start == end) or interval; None is an open end."""

    start: dt.datetime | None
    end: dt.datetime | None
    # One `datetime` value (an instant or a whole day), not a `start/end` interval.
    single: bool = False


@dataclass(frozen=True, slots=True)
class FeatureQuery:
    """Everything a request asks of a collection, validated and typed."""

    collection: Collection
    # The fields the principal may read; nothing outside them is ever named in SQL.
    readable: tuple[Field, ...]
    limit: int = 10
    offset: int = 0
    select: tuple[Field, ...] | None = None
    skip_geometry: bool = False
    bbox: Bbox | None = None
    interval: Interval | None = None
    equals: tuple[tuple[Field, Any], ...] = ()
    sortby: tuple[tuple[Field, bool], ...] = ()  # (field, descending)
    terms: tuple[str, ...] = ()
    filter_tree: Any = None
    filter_crs: Crs = DEFAULT
    crs: Crs = DEFAULT
    hits_only: bool = False
    # Keyset paging: the id of the previous page's last feature (`next` links, sorted by id only);
    # the page then starts after it instead of skipping `offset` rows, so deep pages cost as much
    # as the first one.
    after: Any = None
    # The départements row-level security limits the rows to (None: the nation, or a collection
    # whose policy is not by its own departement_code). Repeated as a plain condition because
    # the policy's predicate (a setting read per row, ORed with '*') cannot use an index.
    departements: tuple[str, ...] | None = None

    @property
    def properties(self) -> tuple[Field, ...]:
        """The fields to return."""
        return self.select if self.select is not None else self.readable

    @property
    def as_of(self) -> dt.datetime | None:
        """The instant to travel to: a single `datetime` on a collection with a history."""
        if self.interval is None or not self.interval.single or not self.collection.history_table:
            return None
        return self.interval.end


def source(q: FeatureQuery) -> sql.Composable:
    """The table read under the alias `t`: the live rows, or every version when travelling."""
    history = q.collection.history_sql
    return history if q.as_of is not None and history is not None else q.collection.table_sql


def history_source(collection: Collection) -> sql.Composable:
    """The table of every version of a collection's rows (`history:` in its catalog file)."""
    if collection.history_sql is None:
        raise ValueError(f"la collection {collection.id} ne garde pas d'historique")
    return collection.history_sql


def _version_condition(q: FeatureQuery, params: Params) -> sql.Composable | None:
    """When travelling: the version of each row valid at that instant (deletions excluded)."""
    if q.as_of is None:
        return None
    return sql.SQL("(t.valid @> {}::timestamptz AND t.operation <> 'delete')").format(params.add(q.as_of))


def _geometry_json(q: FeatureQuery) -> sql.Composable:
    if q.skip_geometry:
        return sql.SQL("NULL::json")
    stored = q.collection.geometry_expression
    geom = stored
    if q.crs.srid != 4326:
        geom = sql.SQL("ST_Transform({}, {})").format(stored, sql.Literal(q.crs.srid))
    elif q.crs.lat_first:
        geom = sql.SQL("ST_FlipCoordinates({})").format(stored)
    # Option 0: no "crs" member, which RFC 7946 removed and clients trip on.
    output = sql.SQL("ST_AsGeoJSON({}, {}, 0)::json").format(geom, sql.Literal(q.crs.decimals))
    box = lonlat_domain(q.crs.srid)
    if box is None:
        return output
    # A feature a UTM zone cannot express (Guyane in Mayotte's) gets a null geometry rather
    # than failing the whole page; `@` compares bounding boxes, which is cheap.
    return sql.SQL("CASE WHEN {} @ ST_MakeEnvelope({}, {}, {}, {}, 4326) THEN {} END").format(
        stored, *(sql.Literal(v) for v in box), output
    )


# The Feature expression of each (collection, properties, geometry, CRS) seen, composed once and
# kept as flat SQL text: composing ~100 columns cost more Python time than running the page.
# The collection object itself is kept in the value, so that its id() is never reused.
_FEATURE_SQL: dict[tuple[int, tuple[Field, ...], bool, Crs], tuple[Collection, sql.SQL]] = {}
_FEATURE_SQL_MAX = 4096


def _feature_json(q: FeatureQuery) -> sql.Composable:
    """The Feature expression of the request, from the cache when it was composed before."""
    key = (id(q.collection), q.properties, q.skip_geometry, q.crs)
    hit = _FEATURE_SQL.get(key)
    if hit is not None and hit[0] is q.collection:
        return hit[1]
    flat = sql.SQL(_compose_feature_json(q).as_string())
    if len(_FEATURE_SQL) < _FEATURE_SQL_MAX:
        _FEATURE_SQL[key] = (q.collection, flat)
    return flat


def _compose_feature_json(q: FeatureQuery) -> sql.Composable:
    """One Feature per row; properties go through to_json of a row to keep catalog order."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(f.expression, sql.Identifier(f.name)) for f in q.properties
    )
    props = (
        sql.SQL("(SELECT to_json(p) FROM (SELECT {}) p)").format(columns)
        if q.properties
        else sql.SQL("'{{}}'::json")
    )
    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', {id}, 'geometry', {geom}, 'properties', {props})"
    ).format(id=q.collection.id_expression, geom=_geometry_json(q), props=props)


def _bbox_condition(q: FeatureQuery, params: Params) -> sql.Composable | None:
    if q.bbox is None:
        return None
    b = q.bbox
    xmin, ymin, xmax, ymax = (
        (b.ymin, b.xmin, b.ymax, b.xmax) if b.crs.lat_first else (b.xmin, b.ymin, b.xmax, b.ymax)
    )
    envelope = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
        *(params.add(v) for v in (xmin, ymin, xmax, ymax)), sql.Literal(b.crs.srid)
    )
    if b.crs.srid != 4326:
        # Densify before transforming: a projected box's edges are curves in lon/lat,
        # and transforming only its corners would lose features near the edges.
        envelope = sql.SQL("ST_Transform(ST_Segmentize({}, {}), 4326)").format(
            envelope, params.add(max(xmax - xmin, ymax - ymin) / 64 or 1.0)
        )
    geom = q.collection.geometry_expression
    return sql.SQL("({g} && {e} AND ST_Intersects({g}, {e}))").format(g=geom, e=envelope)


def _interval_condition(q: FeatureQuery, params: Params) -> sql.Composable | None:
    """Features whose own time span [start, end] meets the requested instant or interval."""
    c = q.collection
    if q.interval is None or c.temporal_start is None:
        return None
    start = c.fields[c.temporal_start].expression
    end = c.fields[c.temporal_end].expression if c.temporal_end else start
    parts = []
    if q.interval.end is not None:
        parts.append(sql.SQL("{} <= {}").format(start, params.add(q.interval.end)))
    if q.interval.start is not None:
        # A feature without an end (an open site) lasts until now.
        parts.append(
            sql.SQL("({e} IS NULL OR {e} >= {v})").format(e=end, v=params.add(q.interval.start))
            if c.temporal_end
            else sql.SQL("{} >= {}").format(start, params.add(q.interval.start))
        )
    if c.ids_by_time:
        parts.extend(_id_bounds(q, params))
    return sql.SQL("({})").format(sql.SQL(" AND ").join(parts)) if parts else None


def _id_bounds(q: FeatureQuery, params: Params) -> list[sql.Composable]:
    """The interval as bounds of ids made by resorption.activity_key (sql/190_activity.sql): a
    16-digit time prefix, newest first, then a source letter (a, c, f, i, m, r, s) and a number.
    The later end gives the smallest id (its prefix alone, before any id that extends it), the
    earlier end the largest (its prefix and 'z', after every source letter), in any collation.
    They say what the conditions on the time say; the ids' index can read them."""
    assert q.interval is not None
    idx = q.collection.id_expression
    bounds = []
    if q.interval.end is not None:
        bounds.append(
            sql.SQL("{} >= left(resorption.activity_key({}, '', 0), 16)").format(
                idx, params.add(q.interval.end)
            )
        )
    if q.interval.start is not None:
        bounds.append(
            sql.SQL("{} < left(resorption.activity_key({}, '', 0), 16) || 'z'").format(
                idx, params.add(q.interval.start)
            )
        )
    return bounds


def _equals_condition(f: Field, value: Any, params: Params) -> sql.Composable:
    if f.type == "array":
        return sql.SQL("{} = ANY(({})::text[])").format(params.add(str(value)), f.expression)
    expr = sql.SQL("({})::text").format(f.expression) if f.enum else f.expression
    return sql.SQL("{} = {}").format(expr, params.add(value))


def _search_condition(q: FeatureQuery, params: Params) -> sql.Composable | None:
    if not q.terms or not q.collection.search_sql:
        return None
    # Terms are alternatives (OGC API Records' q); each one may hold several words.
    query = sql.SQL(" || ").join(
        sql.SQL("plainto_tsquery({}, {})").format(sql.Literal(SEARCH_CONFIG), params.add(term))
        for term in q.terms
    )
    return sql.SQL("({} @@ ({}))").format(sql.SQL(q.collection.search_sql), query)


def _after_condition(q: FeatureQuery, params: Params) -> sql.Composable | None:
    if q.after is None:
        return None
    return sql.SQL("{} > {}").format(q.collection.id_expression, params.add(q.after))


# Row-level security by département, written plainly for the collections whose policy is
# `in_scope(<collection>_scope, departement_code)` (sql/005_row_security.sql). The policy still
# applies; this only lets the planner start from the départements' index.
# The changelog of sites (site_changes) has its versions' département under the same rule as the
# sites' (sql/080_history.sql).
SCOPE_COLUMNS = {"sites": "departement_code", "site_changes": "departement_code"}
# The same for the collections whose policy is "one of its départements is in the scope"
# through a view of the ids in scope and their départements (sql/040_actions.sql,
# `actions_in_scope`), named with the caller's départements. The ids come from the index
# (departement_code, action_id) as one array, and the primary key reads the rows in id order
# from it: a page stops after its rows. As `t.id IN (…)` PostgreSQL hashed the ids and read
# every action of the scope before sorting them (1,566 for the 93 at 100,000 sites); with the
# policy alone it walked every action in id order and discarded those of other départements
# (11,000 for that page). The policy still applies to every row read.
# The changelog of actions (sql/170_action_results.sql) also shows the versions whose own
# département is in the scope (an action since moved elsewhere): its ids are those in scope and
# those of such versions. Each history then reads the versions of these actions by its index on
# the action (a département's count, 1,001 rows at most, in 3 ms instead of 33).
# Each template names, for each of its placeholders, the column compared with the départements.
SCOPE_VIEWS: dict[str, tuple[sql.SQL, dict[str, str]]] = {
    "actions": (
        sql.SQL("t.id = ANY(ARRAY(SELECT s.action_id FROM resorption.actions_in_scope s WHERE {s}))"),
        {"s": "s.departement_code"},
    ),
    "action_changes": (
        sql.SQL(
            "t.action_id = ANY(ARRAY(SELECT s.action_id FROM resorption.actions_in_scope s WHERE {s}"
            " UNION SELECT h.id FROM resorption.actions_history h WHERE {h}))"
        ),
        {"s": "s.departement_code", "h": "h.departement_code"},
    ),
}


def _scope_condition(q: FeatureQuery, params: Params) -> sql.Composable | None:
    if q.departements is not None and q.collection.id in SCOPE_VIEWS:
        template, columns = SCOPE_VIEWS[q.collection.id]
        return template.format(
            **{name: _departements_condition(sql.SQL(column), q, params) for name, column in columns.items()}
        )
    name = SCOPE_COLUMNS.get(q.collection.id)
    if q.departements is None or name is None:
        return None
    # `= ANY`, even for one département: with `=` the département is a constant to the planner,
    # so the order (département, id) of order_clause is plain id order to it, which the primary
    # key gives too; a generic plan then walked the primary key and discarded every other
    # département's sites met before the page (791,873 for the 93's first page at 1,000,000
    # sites: 250 ms). `= ANY` on the index's first column keeps its order, which only the index
    # (departement_code, id) gives without sorting.
    column = sql.SQL("t.{}").format(sql.Identifier(name))
    return sql.SQL("{} = ANY({}::text[])").format(column, params.add(list(q.departements)))


def _departements_condition(column: sql.Composable, q: FeatureQuery, params: Params) -> sql.Composable:
    """`column` among the query's départements."""
    assert q.departements is not None
    if len(q.departements) == 1:
        return sql.SQL("{} = {}").format(column, params.add(q.departements[0]))
    return sql.SQL("{} = ANY({}::text[])").format(column, params.add(list(q.departements)))


def _conditions(q: FeatureQuery, params: Params, paging: bool = False) -> list[sql.Composable]:
    """Every condition of the request; `paging` adds the keyset bound."""
    present = [
        _scope_condition(q, params),
        _after_condition(q, params) if paging else None,
        _version_condition(q, params),
        _bbox_condition(q, params),
        _interval_condition(q, params),
        *(_equals_condition(f, v, params) for f, v in q.equals),
        _search_condition(q, params),
    ]
    if q.filter_tree is not None:
        geometry = GeometryContext(
            column=q.collection.geometry_expression, name=q.collection.geometry_column, crs=q.filter_crs
        )
        compiler = FilterCompiler({f.name: f for f in q.readable}, geometry, params, q.collection.id)
        present.append(compiler.compile(q.filter_tree))
    return [c for c in present if c is not None]


def condition(q: FeatureQuery, params: Params) -> sql.Composable:
    """The conditions of the request as one boolean expression over `t` (TRUE when none)."""
    present = _conditions(q, params)
    return sql.SQL(" AND ").join(present) if present else sql.SQL("TRUE")


def where_clause(q: FeatureQuery, params: Params, paging: bool = False) -> sql.Composable:
    """WHERE for every condition of the request (or nothing); `paging` adds the keyset bound."""
    present = _conditions(q, params, paging)
    if not present:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(present)


def order_clause(q: FeatureQuery) -> sql.Composable:
    """ORDER BY the requested fields, then the id so that pages never overlap.

    A caller limited to one département, without sortby, reads in (département, id) order:
    the same rows in the same order, since the département is one value, but an order only
    the (departement_code, id) index gives without sorting. In plain id order, PostgreSQL's
    generic plan of a prepared page (the one it keeps after five runs) guesses that the
    département's rows are spread over the table and walks the primary key, discarding every
    other département's rows met before the page (20,000 of them for the Gironde's first page
    at 100,000 sites: bench/ANALYSIS.md).
    """
    keys = [sql.SQL("{} {}").format(f.expression, sql.SQL("DESC" if desc else "ASC")) for f, desc in q.sortby]
    scope = SCOPE_COLUMNS.get(q.collection.id)
    if not q.sortby and scope is not None and q.departements is not None and len(q.departements) == 1:
        keys.append(sql.SQL("t.{}").format(sql.Identifier(scope)))
    keys.append(q.collection.id_expression)
    return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(keys)


def items_statement(q: FeatureQuery, count_cap: int | None = None) -> tuple[sql.Composed, Params]:
    """One page of features as a JSON array of GeoJSON Features, built by PostgreSQL.

    The row also holds how many features the page has and its last id, so that Python passes
    the array on without parsing it, and, with `count_cap`, how many features match, counting
    at most `count_cap` + 1 rows (one statement, one round trip; NULL without a cap).
    """
    params = Params()
    if (q.offset and q.after is None) or q.collection.page_ids_first:
        page = _ids_first_page(q, params)
    else:
        where = where_clause(q, params, paging=True)
        page = sql.SQL(
            "SELECT {feature} AS feature, {id} AS id FROM {table} t{where}{order} LIMIT {limit}"
        ).format(
            feature=_feature_json(q),
            id=q.collection.id_expression,
            table=source(q),
            where=where,
            order=order_clause(q),
            limit=_limit(q.limit),
        )
    count: sql.Composable = sql.SQL("NULL::int")
    if count_cap is not None:
        count = sql.SQL(
            "(SELECT count(*)::int FROM (SELECT 1 FROM {table} t{where} LIMIT {cap}) matched)"
        ).format(table=source(q), where=where_clause(q, params), cap=_limit(count_cap + 1))
    statement = sql.SQL(
        "SELECT coalesce(json_agg(page.feature), '[]'::json)::text, count(*)::int, max(page.id), {count} "
        "FROM ({page}) page"
    ).format(count=count, page=page)
    return statement, params


def _limit(n: int) -> sql.Composable:
    """A LIMIT as a literal (an int we validated), not a parameter.

    psycopg prepares a statement run five times, and PostgreSQL then keeps one generic plan
    for every run, unless that plan looks costlier than planning each run anew. With `LIMIT $1`
    the generic plan assumes a tenth of the table is wanted and always looks costlier, so each
    page was planned again: ~6 ms of PostgreSQL's CPU for a page's ~100 columns and their
    sub-selects, more than running it. A literal LIMIT keeps one statement per page size (a
    handful) and lets the generic plan serve.
    """
    return sql.Literal(int(n))


def _ids_first_page(q: FeatureQuery, params: Params) -> sql.Composable:
    """A page whose ids are chosen first: the rows skipped or sorted cost only their ids, and
    only the page's rows are projected. For a page after `offset` rows, as clients send it
    (`offset=50000`), and for every page of a collection marked `page_ids_first`.

    A plain `LIMIT … OFFSET …` would build the Feature of every skipped row before throwing it
    away (~2 s for offset=50000 with ~100 columns). The ids are chosen first, in the request's
    order, then the page's rows are read by id (the primary key) and ordered again; the
    conditions apply again to those rows, so that a table of versions (`datetime`) keeps the
    one version of each id the inner query chose. Row-level security applies to both reads.
    """
    present = _conditions(q, params, paging=True)
    skip: sql.Composable = sql.Literal(int(q.offset))
    start = _block_start(q, params)
    if start is not None:
        present.append(sql.SQL("{} >= (SELECT first_id FROM start)").format(q.collection.id_expression))
        skip = sql.SQL("{} - (SELECT before FROM start)").format(skip)
    ids = sql.SQL("{start}SELECT {id} FROM {table} t{where}{order} LIMIT {limit} OFFSET {skip}").format(
        start=sql.SQL("WITH start AS ({}) ").format(start) if start is not None else sql.SQL(""),
        id=q.collection.id_expression,
        table=source(q),
        where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(present) if present else sql.SQL(""),
        order=order_clause(q),
        limit=_limit(q.limit),
        skip=skip,
    )
    chosen = sql.SQL("{} = ANY(ARRAY({}))").format(q.collection.id_expression, ids)
    again = [chosen, *_conditions(q, params)]
    return sql.SQL("SELECT {feature} AS feature, {id} AS id FROM {table} t WHERE {where}{order}").format(
        feature=_feature_json(q),
        id=q.collection.id_expression,
        table=source(q),
        where=sql.SQL(" AND ").join(again),
        order=order_clause(q),
    )


def _block_start(q: FeatureQuery, params: Params) -> sql.Composable | None:
    """Where a page after `offset` rows, in id order and with no condition of its own, starts:
    the block of ids its first row is in (`first_id`), and how many of the caller's rows come
    before that block (`before`), from the counts per block (`blocks:` in the catalog).

    The counts are the caller's under the rows' own read rule (the nation's for a reader of every
    département, those of its départements for the others), and exact in every snapshot (their
    triggers write in the rows' transaction): the page then skips `offset - before` rows from
    the block's first id, at most a block's, instead of `offset` (50,000 entries of an index,
    ~4 ms). The blocks' `before` grows with their `first_id`, so the block is the last one with
    `before <= offset`, and both maxima are its own. With no block at all (a reader who reads
    none of the blocks asked for), the page starts from the smallest id and skips the whole
    offset. None when the page cannot start from a block.
    """
    blocks = q.collection.blocks_tables
    plain = not (
        q.bbox or q.interval or q.equals or q.terms or q.sortby or q.filter_tree is not None or q.after
    )
    if blocks is None or not plain or not q.offset:
        return None
    if q.departements is None:
        table, where = blocks.nation, sql.SQL("")
    else:
        table = blocks.departements
        codes = params.add(list(q.departements))
        where = sql.SQL(" WHERE b.departement_code = ANY({}::text[])").format(codes)
    return sql.SQL(
        "SELECT coalesce(max(first_id), '-9223372036854775808'::bigint) AS first_id, "
        "coalesce(max(before), 0) AS before FROM ("
        "SELECT first_id, (sum(sum(sites)) OVER (ORDER BY first_id) - sum(sites))::bigint AS before "
        "FROM {table} b{where} GROUP BY first_id) placed WHERE before <= {offset}"
    ).format(table=sql.Identifier(*table.split(".")), where=where, offset=sql.Literal(int(q.offset)))


def count_statement(q: FeatureQuery, cap: int | None) -> tuple[sql.Composed, Params]:
    """How many features match, counting at most `cap` + 1 rows when a cap is given.

    With no condition at all, on a collection that keeps its counts per département
    (`counts:`), the sum of the counts the caller reads (its row-level security is the rows'):
    at most 101 rows instead of every row tested against the read policy.
    """
    params = Params()
    present = _conditions(q, params)
    if q.collection.counts_table and cap is None and not present:
        table = sql.Identifier(*q.collection.counts_table.split("."))
        return sql.SQL("SELECT coalesce(sum(c.sites), 0)::bigint FROM {} c").format(table), params
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(present) if present else sql.SQL("")
    inner = sql.SQL("SELECT 1 FROM {table} t{where}").format(table=source(q), where=where)
    if cap is not None:
        inner = sql.SQL("{} LIMIT {}").format(inner, params.add(cap + 1))
    return sql.SQL("SELECT count(*) FROM ({}) matched").format(inner), params


def item_statement(
    q: FeatureQuery, identifier: Any, version: sql.Composable | None = None
) -> tuple[bytes, Params]:
    """One feature by id, as GeoJSON text (no row when it does not exist).

    With `version` (an expression over `t`), the row also holds the item's ETag, read in the
    same statement rather than in a second transaction. The statement's text depends on the
    request's shape only, never on the id (a parameter): it is composed and encoded once per
    shape and process (`_ITEM_SQL`), and psycopg then finds it among its prepared statements.
    """
    params = Params()
    placeholder = params.add(identifier)
    key = (id(q.collection), q.properties, q.skip_geometry, q.crs, id(version))
    hit = _ITEM_SQL.get(key)
    if hit is not None and hit[0] is q.collection and hit[1] is version:
        return hit[2], params
    statement = sql.SQL("SELECT {feature}::text, {version} FROM {table} t WHERE {id} = {value}").format(
        feature=_feature_json(q),
        version=version if version is not None else sql.SQL("NULL::text"),
        table=q.collection.table_sql,
        id=q.collection.id_expression,
        value=placeholder,
    )
    encoded = statement.as_bytes()
    if len(_ITEM_SQL) < _FEATURE_SQL_MAX:
        # the collection and the version expression are kept, so that their id()s are never reused
        _ITEM_SQL[key] = (q.collection, version, encoded)
    return encoded, params


# The single-item statement of each request shape seen, as the bytes psycopg sends (see
# `item_statement`): composing and encoding it cost ~0.1 ms of every one-item request.
_ITEM_SQL: dict[tuple[Any, ...], tuple[Collection, sql.Composable | None, bytes]] = {}


def _geometry_wkb(q: FeatureQuery, crs: Crs) -> sql.Composable:
    """The geometry as WKB in `crs` (longitude first in EPSG:4326, as GDAL stores it)."""
    stored = q.collection.geometry_expression
    geom = (
        stored if crs.srid == 4326 else sql.SQL("ST_Transform({}, {})").format(stored, sql.Literal(crs.srid))
    )
    wkb = sql.SQL("ST_AsBinary({})").format(geom)
    box = lonlat_domain(crs.srid)
    if box is None:
        return wkb
    # A feature a UTM zone cannot express gets no geometry, as in GeoJSON (`_geometry_json`).
    return sql.SQL("CASE WHEN {} @ ST_MakeEnvelope({}, {}, {}, {}, 4326) THEN {} END").format(
        stored, *(sql.Literal(v) for v in box), wkb
    )


def rows_statement(q: FeatureQuery, geometry: Crs | None = None) -> tuple[sql.Composed, Params]:
    """Every matching row as plain columns, in the request's order, for files and spreadsheets.

    With `geometry`, the first column is the geometry as WKB in that CRS; then the values of
    `q.properties`, in their order (no paging: the caller reads them all, by batch).
    """
    params = Params()
    where = where_clause(q, params)
    columns = [f.expression for f in q.properties]
    if geometry is not None:
        columns.insert(0, _geometry_wkb(q, geometry))
    statement = sql.SQL("SELECT {columns} FROM {table} t{where}{order}").format(
        columns=sql.SQL(", ").join(columns), table=source(q), where=where, order=order_clause(q)
    )
    return statement, params
