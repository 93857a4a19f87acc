"""OGC API – Publish-Subscribe discovery: the landing page and collections link the broker and
the AsyncAPI document, which is valid AsyncAPI 3.0 and shown in French as HTML."""

from __future__ import annotations

import requests
from pygeoapi.asyncapi import validate_asyncapi_document

from tests.fix_users import TestUser


def test_the_landing_page_links_the_broker_and_the_asyncapi_document(base_url: str) -> None:
    links = requests.get(f"{base_url}/?f=json", timeout=30).json()["links"]
    hub = [link for link in links if link["rel"] == "hub"]
    assert hub and hub[0]["href"].startswith("mqtt://") and hub[0]["channel"] == "resorption/v1"
    assert "@" not in hub[0]["href"]  # no credentials
    desc = [link for link in links if link["rel"] == "service-desc" and "asyncapi" in link["href"]]
    assert desc and desc[0]["type"] == "application/asyncapi+json"


def test_the_asyncapi_document_is_valid_and_lists_channels_and_security(base_url: str) -> None:
    r = requests.get(f"{base_url}/asyncapi?f=json", timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/asyncapi+json")
    doc = r.json()
    assert validate_asyncapi_document(doc)
    assert doc["channels"]["sites-mqtt"]["address"] == "resorption/v1/sites/departement/{departement}/{item}"
    assert doc["channels"]["sites-sse"]["address"] == "/collections/sites/events"
    tiered = doc["channels"]["sites-mqtt-groupes"]
    assert tiered["address"] == "resorption/v1/groupes/{groupes}/sites/departement/{departement}/{item}"
    assert set(tiered["parameters"]["groupes"]["enum"]) == {"justice", "owner", "justice,owner"}
    assert doc["channels"]["actions-mqtt-groupes"]["parameters"]["groupes"]["enum"] == ["finances"]
    assert "site_comments-mqtt-groupes" not in doc["channels"]
    assert set(doc["components"]["securitySchemes"]) == {"token", "bearer", "basic"}
    assert "@" not in doc["servers"]["mqtt"]["host"]


def test_the_asyncapi_page_is_french_html_without_scripts(base_url: str) -> None:
    r = requests.get(f"{base_url}/asyncapi?f=html", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "changements en temps réel" in r.text
    assert "resorption/v1/sites/departement/{departement}/{item}" in r.text
    assert "unpkg" not in r.text and "<script>" not in r.text


def test_a_streamed_collection_links_its_channels(base_url: str, users: dict[str, TestUser]) -> None:
    r = requests.get(
        f"{base_url}/collections/sites?f=json", headers=users["operator-departement-33"].headers, timeout=30
    )
    links = r.json()["links"]
    assert any(
        link["rel"] == "hub"
        and link["href"].startswith("mqtt://")
        and "resorption/v1/sites/" in link["title"]
        for link in links
    )
    assert any(
        link.get("type") == "text/event-stream" and link["href"].endswith("/collections/sites/events")
        for link in links
    )
