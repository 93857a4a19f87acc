"""pygeoapi's configuration and OpenAPI document, completed from our catalog.

`pygeoapi-config.yml` names the collections and their provider; titles,
descriptions, keywords, CRS lists and id fields come from `collections/` so
that they are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pygeoapi.util import yaml_load

from resorption.api import asyncapi, tiles
from resorption.api.openapi import build_openapi
from resorption.catalog import Collection
from resorption.crs import CRS84, URIS
from resorption.errors import ConfigurationError
from resorption.identity import Principal, reset_principal, set_principal
from resorption.settings import Settings
from resorption.web import STATIC_DIR, TEMPLATES_DIR

# Metropolitan France and the overseas départements, in CRS84.
FRANCE_BBOX = [-61.81, -21.39, 55.84, 51.09]


def build_config(settings: Settings, catalog: Mapping[str, Collection]) -> dict[str, Any]:
    """pygeoapi's configuration: the YAML file, its variables expanded, completed from the catalog."""
    try:
        with settings.pygeoapi_config.open(encoding="utf-8") as fh:
            config = yaml_load(fh)
    except OSError as exc:
        raise ConfigurationError(f"{settings.pygeoapi_config} est illisible ({exc}).") from exc
    config["server"]["url"] = settings.public_url
    # Our templates first (French, labelled, no CDN), pygeoapi's for the rest; /static serves ours.
    config["server"].setdefault("templates", {"path": str(TEMPLATES_DIR), "static": str(STATIC_DIR)})
    for name, resource in config.get("resources", {}).items():
        for provider in resource.get("providers", []):
            if provider.get("name") != "resorption.providers.features.FeatureProvider":
                continue
            collection = catalog.get(provider.get("data"))
            if collection is None:
                raise ConfigurationError(
                    f"pygeoapi-config.yml : la ressource « {name} » désigne « {provider.get('data')} », "
                    f"absente de collections/ ({', '.join(sorted(catalog))})."
                )
            _complete(resource, provider, collection)
            if collection.id in tiles.LAYERS:  # its vector tiles (OGC API Tiles)
                resource["links"].append(tiles.tilesets_link(settings.public_url, collection.id))
            if collection.id in asyncapi.STREAMED:  # its changes (MQTT, Server-Sent Events)
                resource["links"] += asyncapi.collection_links(settings.public_url, collection.id)
    return config


def _complete(resource: dict[str, Any], provider: dict[str, Any], c: Collection) -> None:
    resource.setdefault("title", c.title.as_pygeoapi())
    resource.setdefault("description", c.description.as_pygeoapi())
    resource.setdefault("keywords", dict(c.keywords) or [c.id])
    resource.setdefault("links", [])
    extents: dict[str, Any] = {"spatial": {"bbox": FRANCE_BBOX, "crs": CRS84}}
    if c.temporal_start:
        extents["temporal"] = {"begin": "2010-01-01T00:00:00Z", "end": None}
    resource.setdefault("extents", extents)
    provider.setdefault("id_field", c.id_field)
    if c.title_field:
        provider.setdefault("title_field", c.title_field)
    provider.setdefault("geom_field", c.geometry_column)
    provider.setdefault("crs", list(URIS))
    provider.setdefault("storage_crs", CRS84)
    if c.temporal_start:
        provider.setdefault("time_field", c.temporal_start)


def build_openapi_document(config: dict[str, Any], catalog: Mapping[str, Collection]) -> dict[str, Any]:
    """The self-contained OpenAPI document for `config` (inside the app's context)."""
    # pygeoapi asks each provider for its fields while it writes the document: it does so for a
    # reader of every row and no sensitive field, so that one document describes all of it.
    token = set_principal(DOCUMENTATION_READER)
    try:
        return orjson.loads(orjson.dumps(build_openapi(config, catalog)))
    finally:
        reset_principal(token)


DOCUMENTATION_READER = Principal(username="documentation", role="external_observer", area_level="nation")
