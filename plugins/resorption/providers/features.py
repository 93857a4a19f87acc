"""Our pygeoapi feature provider: catalog × policy × request → one SQL statement.

pygeoapi builds a provider per request (`load_plugin`), so `__init__` only
looks things up: the catalog and the pool are process-wide. The caller (ours
pass it; pygeoapi's requests get the request's) decides, once, which fields
exist for this provider; nothing else is ever named in SQL, and every
statement runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
    SchemaType,
)
from pygeofilter.backends.cql2_json import to_cql2

from resorption import bulk
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.crs import parse_crs
from resorption.errors import InvalidParameter, NotFound, ResorptionError
from resorption.params import parse_datetime
from resorption.policy import NATION, Scope
from resorption.query import (
    SCOPE_COLUMNS,
    Bbox,
    FeatureQuery,
    count_statement,
    item_statement,
    items_statement,
)


class FeatureProvider(BaseProvider):
    """Sites, actions and territories from PostGIS, limited to what the caller may read."""

    def __init__(self, provider_def: dict[str, Any], caller: Caller | None = None) -> None:
        """pygeoapi's constructor; our own faces pass their caller, pygeoapi the request's."""
        super().__init__(provider_def)
        self.caller = caller or Caller.of_request()
        self.settings = self.caller.settings
        if self.data not in self.caller.catalog:
            raise ProviderGenericError(f"collection {self.data} absente du catalogue")
        self.collection: Collection = self.caller.catalog[self.data]
        # A collection the caller may not read has no fields: every query names none and
        # finds nothing, and the app answers 401/404 before it gets here.
        self.readable = (
            self.caller.readable_fields(self.collection) if self.caller.may_read(self.collection) else ()
        )
        self.id_field = self.collection.id_field
        self.title_field = self.collection.title_field
        self._schema: dict[str, Any] | None = None
        # Where this provider exports (`exporting`); None: it reads as the Features API reads.
        self.export: Scope | None = None

    def exporting(self, within: Scope = NATION) -> FeatureProvider:
        """This provider reading as an export: 403 without the export right, rows within its scope.

        The rows are limited by row-level security with the read scopes narrowed to the export
        scope (and to `within`, a territory the caller chose): see `Caller.exporting`.
        """
        self.export = self.caller.export_scope(within)
        return self

    @property
    def fields(self) -> dict[str, Any]:
        """pygeoapi's view of the fields (its base class would read an empty `_fields`)."""
        return self._readable_schema()

    def _readable_schema(self) -> dict[str, Any]:
        # Built on first use only: the items route never needs it, and it costs more than a page.
        if self._schema is None:
            self._schema = {f.name: f.json_schema() for f in self.readable}
        return self._schema

    # -- pygeoapi's contract ---------------------------------------------------

    def get_fields(self) -> dict[str, Any]:
        """The readable fields as JSON Schema properties (feeds /schema and queryables)."""
        return self._readable_schema()

    def get_schema(self, schema_type: SchemaType = SchemaType.item) -> tuple[str, dict[str, Any]]:
        """The item schema: geometry plus readable properties."""
        return "application/geo+json", {
            "type": "object",
            "properties": {
                "geometry": {"$ref": "https://geojson.org/schema/Geometry.json"},
                **self._readable_schema(),
            },
        }

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, Any]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        crs_transform_spec: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """pygeoapi's entry point, for callers other than our own items route."""
        by_name = {f.name: f for f in self.readable}
        try:
            unknown = [
                n
                for n in [
                    *(select_properties or []),
                    *(s["property"] for s in sortby or []),
                    *(k for k, _ in properties or []),
                ]
                if n not in by_name
            ]
            if unknown:
                raise InvalidParameter(f"Propriété inconnue : {unknown[0]}.")
            fq = FeatureQuery(
                collection=self.collection,
                readable=self.readable,
                limit=limit,
                offset=offset,
                select=tuple(by_name[n] for n in select_properties) if select_properties else None,
                skip_geometry=skip_geometry,
                bbox=Bbox(*bbox[:2], *bbox[-2:]) if bbox else None,
                interval=parse_datetime(datetime_),
                equals=tuple((by_name[k], v) for k, v in properties or []),
                sortby=tuple((by_name[s["property"]], s["order"] == "-") for s in sortby or []),
                terms=tuple(t for t in (q or "").split(",") if t.strip()),
                filter_tree=orjson.loads(to_cql2(filterq)) if filterq is not None else None,
                crs=parse_crs(getattr(crs_transform_spec, "target_crs_uri", None), "crs"),
                hits_only=resulttype == "hits",
            )
            return self.features(fq)
        except ResorptionError as exc:
            raise _provider_error(exc) from exc

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        """One feature by id (pygeoapi's contract)."""
        crs_spec = kwargs.get("crs_transform_spec")
        fq = FeatureQuery(
            collection=self.collection,
            readable=self.readable,
            crs=parse_crs(getattr(crs_spec, "target_crs_uri", None), "crs"),
        )
        try:
            return self.feature(fq, identifier)
        except ResorptionError as exc:
            raise _provider_error(exc) from exc

    # -- our own entry points (raise our errors) -------------------------------

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
        with self._transaction(_planner(fq)) as conn:
            if fq.hits_only:
                return Page(b"[]", 0, self._count(conn, fq, cap=None), None)
            cap = self.settings.count_limit
            statement, params = items_statement(fq, count_cap=cap or None)
            cur = conn.cursor()
            cur.adapters.register_loader("text", _Utf8Bytes)
            features, returned, last, counted = cur.execute(statement, params).fetchone()
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
            row = conn.execute(statement, params).fetchone()
        if row is None:
            raise NotFound(self._not_found(identifier))
        self._audit_read(fq, identifier, 1)
        return row[0].encode(), row[1]

    def _transaction(self, planner: dict[str, str] | None = None) -> Any:
        """A read-only transaction as the caller (within its export scope when exporting)."""
        if not self.caller.may_read(self.collection):
            raise NotFound(f"La collection « {self.collection.id} » n'existe pas.")
        if self.export is None:
            return self.caller.reading(planner)
        return self.caller.exporting(self.export, planner)

    def _scoped(self, fq: FeatureQuery) -> FeatureQuery:
        """The query with the caller's départements as a plain condition, where RLS is by département."""
        if self.collection.id not in SCOPE_COLUMNS:
            return fq
        scope = self.caller.scope(self.collection.id)
        if self.export is not None:
            scope = bulk.narrow(scope, self.export)
        return fq if scope.nation else replace(fq, departements=tuple(sorted(scope.departements)))

    def _audit_read(self, fq: FeatureQuery, identifier: str | None, count: int) -> None:
        """Log reads that returned sensitive fields (owner, justice, finances)."""
        groups = {f.group.sensitive for f in fq.properties if f.group.sensitive}
        if groups and count:
            self.caller.audit("read", self.collection.id, identifier, groups, {"features": count})

    def _count(self, conn: Any, fq: FeatureQuery, cap: int | None) -> int:
        statement, params = count_statement(fq, cap)
        return conn.execute(statement, params).fetchone()[0]

    def _not_found(self, identifier: str) -> str:
        return f"L'élément « {identifier} » n'existe pas dans la collection « {self.collection.id} »."


# Planner settings of a request's transaction. A page reads a few rows: JIT compilation and
# parallel workers cost more to start (10–50 ms) than the whole page. A full count may use them.
PAGE_PLANNER = {"jit": "off", "max_parallel_workers_per_gather": "0"}
COUNT_PLANNER = {"jit": "off"}


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


def _provider_error(exc: ResorptionError) -> ProviderGenericError:
    """Our errors at pygeoapi's boundary, keeping the French message for the client."""
    if isinstance(exc, NotFound):
        return ProviderItemNotFoundError(exc.message, user_msg=exc.message)
    if isinstance(exc, InvalidParameter):
        return ProviderInvalidQueryError(exc.message, user_msg=exc.message)
    return ProviderQueryError(exc.message, user_msg=exc.message)
