"""Reading features as a caller: one page, one feature or a count, in one statement each.

The one way the faces, the pygeoapi provider and the exports read features. A `FeatureReader`
is a caller and a collection: the fields the caller may read (nothing else is ever named in
SQL), the transaction it reads in (`Caller.reading`, or `Caller.exporting` once `exporting()`
narrows it to the export scope), and the statements `query` composes from the catalog.
PostgreSQL writes the GeoJSON; a page's bytes are passed on without being parsed here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from resorption import bulk
from resorption.caller import Caller
from resorption.catalog import Collection, Field
from resorption.errors import NotFound
from resorption.policy import NATION, Scope
from resorption.query import (
    SCOPE_COLUMNS,
    SCOPE_VIEWS,
    FeatureQuery,
    count_statement,
    item_statement,
    items_statement,
)


class FeatureReader:
    """The features of one collection, as one caller may read them."""

    def __init__(self, caller: Caller, collection: Collection) -> None:
        self.caller = caller
        self.settings = caller.settings
        self.collection = collection
        # A collection the caller may not read has no fields: every query names none and
        # finds nothing, and the faces answer 401/404 before it gets here.
        self.readable: tuple[Field, ...] = (
            caller.readable_fields(collection) if caller.may_read(collection) else ()
        )
        # Where this reader exports (`exporting`); None: it reads as the Features API reads.
        self.export: Scope | None = None

    def exporting(self, within: Scope = NATION) -> FeatureReader:
        """This reader reading as an export: 403 without the export right, rows within its scope.

        The rows are limited by row-level security with the read scopes narrowed to the export
        scope (and to `within`, a territory the caller chose): see `Caller.exporting`.
        """
        self.export = self.caller.export_scope(within)
        return self

    def features(self, fq: FeatureQuery) -> dict[str, Any]:
        """A FeatureCollection page, with numberMatched when it is cheap or asked for."""
        page = self.page(fq)
        result: dict[str, Any] = {"type": "FeatureCollection", "features": orjson.loads(page.features)}
        if page.matched is not None:
            result["numberMatched"] = page.matched
        result["numberReturned"] = page.returned
        return result

    def page(self, fq: FeatureQuery) -> Page:
        """A page as PostgreSQL wrote it: the features' JSON array as bytes, never parsed here.

        numberMatched is exact when it costs nothing (a short first page), or when asked for
        (`resulttype=hits`), or when counting stops within `count_limit` rows; otherwise it is
        left out, as the standard allows: counting a million rows for every page of a layer
        would cost more than the page.
        """
        fq = self._scoped(fq)
        if fq.hits_only:
            statement, params = count_statement(fq, None)
            with self._transaction(_planner(fq)) as conn:
                counting = conn.execute(statement, params)
            return Page(b"[]", 0, counting.fetchone()[0], None)
        cap = self.settings.count_limit
        statement, params = items_statement(fq, count_cap=cap or None)
        with self._transaction(_planner(fq)) as conn:
            cur = conn.cursor()
            cur.adapters.register_loader("text", _Utf8Bytes)
            cur.execute(statement, params)
        # Fetched once the transaction is over: BEGIN, settings, page and COMMIT in one round trip.
        features, returned, last, counted = cur.fetchone()
        if fq.offset == 0 and fq.after is None and returned < fq.limit:
            matched: int | None = returned
        else:
            matched = counted if counted is not None and counted <= cap else None
        self._audit_read(fq, None, returned)
        if isinstance(last, bytes):  # a text id (territory codes), loaded as bytes like the page
            last = last.decode()
        return Page(features, returned, matched, last)

    def feature(self, fq: FeatureQuery, identifier: str) -> dict[str, Any]:
        """One feature, or NotFound (also for ids outside the caller's scope)."""
        return orjson.loads(self.feature_json(fq, identifier)[0])

    def feature_json(
        self, fq: FeatureQuery, identifier: str, version: sql.Composable | None = None
    ) -> tuple[bytes, str | None]:
        """One feature as PostgreSQL wrote it, and its version (ETag) when `version` says how.

        Raises NotFound, also for ids outside the caller's scope.
        """
        key: Any = identifier
        if self.collection.id_is_integer:
            if not identifier.isdigit() or len(identifier) > 18:
                raise NotFound(self._not_found(identifier))
            key = int(identifier)
        statement, params = item_statement(fq, key, version)
        with self._transaction(PAGE_PLANNER) as conn:
            found = conn.execute(statement, params)
        row = found.fetchone()  # after the transaction: one round trip for all of it
        if row is None:
            raise NotFound(self._not_found(identifier))
        self._audit_read(fq, identifier, 1)
        return row[0].encode(), row[1]

    def _transaction(self, planner: dict[str, str] | None = None) -> Any:
        """A read-only transaction as the caller (within its export scope when exporting), in
        pipeline mode: its statement's cursor is read after the block, so that BEGIN, the
        settings, the statement and COMMIT make one round trip."""
        if not self.caller.may_read(self.collection):
            raise NotFound(f"La collection « {self.collection.id} » n'existe pas.")
        if self.export is None:
            return self.caller.reading(planner, pipeline=True)
        return self.caller.exporting(self.export, planner, pipeline=True)

    def _scoped(self, fq: FeatureQuery) -> FeatureQuery:
        """The query with the caller's départements as a plain condition, where RLS is by département."""
        if self.collection.id not in SCOPE_COLUMNS and self.collection.id not in SCOPE_VIEWS:
            return fq
        scope = self.caller.scope(self.collection.id)
        if self.export is not None:
            scope = bulk.narrow(scope, self.export)
        return fq if scope.nation else replace(fq, departements=tuple(sorted(scope.departements)))

    def _audit_read(self, fq: FeatureQuery, identifier: str | None, count: int) -> None:
        """Log reads that returned sensitive fields (owner, justice, finances)."""
        groups = {f.group.sensitive for f in fq.properties if f.group.sensitive}
        if groups and count:
            self.caller.audit_read(self.collection.id, identifier, groups, count)

    def _not_found(self, identifier: str) -> str:
        return f"L'élément « {identifier} » n'existe pas dans la collection « {self.collection.id} »."


# Planner settings of a request's transaction. A page reads a few rows: JIT compilation and
# parallel workers cost more to start (10–50 ms) than the whole page. A full count neither:
# counting 100,000 sites in an index-only scan takes ~30 ms alone, ~170 ms with two workers to
# start and gather (and the workers' CPU is taken from the other requests of a busy server).
PAGE_PLANNER = {"jit": "off", "max_parallel_workers_per_gather": "0"}
COUNT_PLANNER = PAGE_PLANNER


def _planner(fq: FeatureQuery) -> dict[str, str]:
    """The planner settings of a request.

    Row-level security's predicate reads a setting, so PostgreSQL cannot estimate it and
    guesses that it keeps ~1 % of the rows: a plain page in id order then looks cheaper as a
    full scan and a sort than as the primary key read in order (100,000 rows scanned for 10).
    For a caller who sees the nation and a page with no condition of its own, the id order
    is always right: sorting is ruled out. With conditions (bbox, filter…) or a département
    scope, the planner keeps its choice.
    """
    if fq.hits_only:
        return COUNT_PLANNER
    # A single `datetime` instant only chooses versions: the history's id index serves it too.
    interval = fq.interval is not None and not fq.interval.single
    plain = not (fq.bbox or interval or fq.equals or fq.terms or fq.sortby or fq.filter_tree is not None)
    if plain and fq.departements is None:
        return {**PAGE_PLANNER, "enable_sort": "off"}
    return PAGE_PLANNER


class _Utf8Bytes(Loader):
    """Loads a text column as its UTF-8 bytes: JSON built by PostgreSQL goes out undecoded."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of features as PostgreSQL built it."""

    features: bytes  # a JSON array of GeoJSON Features
    returned: int
    matched: int | None
    last_id: Any  # the id of its last feature (keyset paging)
