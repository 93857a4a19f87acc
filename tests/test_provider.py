"""Our provider at pygeoapi's own contract (`query`, `get`, `fields`), as pygeoapi calls it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError
from pygeofilter.parsers.ecql import parse as parse_ecql

from resorption import database
from resorption.app import create_app
from resorption.identity import Principal, reset_principal, set_principal
from resorption.providers.features import FeatureProvider
from resorption.settings import Settings

DEFINITION = {"name": "resorption.providers.features.FeatureProvider", "type": "feature", "data": "sites"}


@pytest.fixture(scope="module")
def app(database_url: str) -> Iterator[Flask]:
    """An app of our own, in this process: pygeoapi builds providers inside its requests."""
    yield create_app(Settings.from_env(database_url))
    database.close_pool()


@pytest.fixture(scope="module")
def provider(app: Flask) -> Iterator[FeatureProvider]:
    # pygeoapi builds providers inside a request, after we have set its principal.
    with app.test_request_context("/collections/sites/items"):
        token = set_principal(Principal(username="admin", role="national_admin"))
        yield FeatureProvider(DEFINITION)
        reset_principal(token)


def test_anonymous_provider_reads_nothing(app: Flask) -> None:
    """Built for an anonymous caller, the provider has no field and refuses to query."""
    with app.test_request_context("/collections/sites/items"):
        anonymous = FeatureProvider(DEFINITION)
        assert anonymous.fields == {}
        with pytest.raises(ProviderItemNotFoundError):
            anonymous.get("1")


def test_fields_are_json_schema_with_french_titles(provider: FeatureProvider) -> None:
    assert provider.fields["population_total"]["type"] == "integer"
    assert provider.fields["population_total"]["title"] == "Nombre de personnes"
    assert provider.fields["status"]["enum"][0] == "open"


def test_query_with_pygeoapi_arguments(provider: FeatureProvider, db: psycopg.Connection) -> None:
    page = provider.query(
        offset=0,
        limit=5,
        bbox=[-1.3, 44.2, 0.35, 45.6],
        sortby=[{"property": "population_total", "order": "-"}],
        select_properties=["name", "population_total"],
        properties=[("status", "open")],
    )
    expected = [
        row[0]
        for row in db.execute(
            "SELECT id FROM resorption.sites WHERE status = 'open' AND "
            "ST_Intersects(location, ST_MakeEnvelope(-1.3, 44.2, 0.35, 45.6, 4326)) "
            "ORDER BY population_total DESC, id LIMIT 5"
        )
    ]
    assert [f["id"] for f in page["features"]] == expected
    assert set(page["features"][0]["properties"]) == {"name", "population_total"}


def test_query_with_a_pygeofilter_ast(provider: FeatureProvider, db: psycopg.Connection) -> None:
    """pygeoapi hands providers a pygeofilter AST; we translate it to CQL2 JSON and compile it."""
    page = provider.query(limit=1, resulttype="hits", filterq=parse_ecql("population_total > 100"))
    expected = db.execute("SELECT count(*) FROM resorption.sites WHERE population_total > 100").fetchone()[0]
    assert page["numberMatched"] == expected


def test_unknown_property_is_an_invalid_query(provider: FeatureProvider) -> None:
    with pytest.raises(ProviderInvalidQueryError) as info:
        provider.query(sortby=[{"property": "nope", "order": "+"}])
    assert "nope" in info.value.message


def test_get_and_missing_item(provider: FeatureProvider, db: psycopg.Connection) -> None:
    site_id = db.execute("SELECT min(id) FROM resorption.sites").fetchone()[0]
    assert provider.get(str(site_id))["id"] == site_id
    with pytest.raises(ProviderItemNotFoundError):
        provider.get("123456789")
