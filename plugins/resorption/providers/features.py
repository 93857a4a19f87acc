"""Our pygeoapi feature provider: pygeoapi's contract over the core's `FeatureReader`.

pygeoapi builds a provider per request (`load_plugin`) and calls `query`, `get`,
`get_fields` and `get_schema`; each translates pygeoapi's arguments into a `FeatureQuery`
and reads through `resorption.reader` as the request's caller. Our own faces use the
reader directly.
"""

from __future__ import annotations

from typing import Any

import orjson
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderGenericError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
    SchemaType,
)
from pygeofilter.backends.cql2_json import to_cql2

from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.crs import parse_crs
from resorption.errors import InvalidParameter, NotFound, ResorptionError
from resorption.params import parse_datetime
from resorption.query import (
    Bbox,
    FeatureQuery,
)
from resorption.reader import FeatureReader


class FeatureProvider(BaseProvider):
    """Sites, actions and territories from PostGIS, limited to what the caller may read."""

    def __init__(self, provider_def: dict[str, Any], caller: Caller | None = None) -> None:
        """pygeoapi's constructor: the request's caller, reading through the core's reader."""
        super().__init__(provider_def)
        caller = caller or Caller.of_request()
        if self.data not in caller.catalog:
            raise ProviderGenericError(f"collection {self.data} absente du catalogue")
        self.collection: Collection = caller.catalog[self.data]
        self.reader = FeatureReader(caller, self.collection)
        self.readable = self.reader.readable
        self.id_field = self.collection.id_field
        self.title_field = self.collection.title_field
        self._schema: dict[str, Any] | None = None

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
            return self.reader.features(fq)
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
            return self.reader.feature(fq, identifier)
        except ResorptionError as exc:
            raise _provider_error(exc) from exc


def _provider_error(exc: ResorptionError) -> ProviderGenericError:
    """Our errors at pygeoapi's boundary, keeping the French message for the client."""
    if isinstance(exc, NotFound):
        return ProviderItemNotFoundError(exc.message, user_msg=exc.message)
    if isinstance(exc, InvalidParameter):
        return ProviderInvalidQueryError(exc.message, user_msg=exc.message)
    return ProviderQueryError(exc.message, user_msg=exc.message)
