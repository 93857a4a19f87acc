"""Small helpers to read our API the way a client does (following `next` links)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import requests

# A point of Bordeaux (commune 33063), in Gironde.
BORDEAUX = (-0.5792, 44.8378)


def all_features(
    http: requests.Session, path: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every feature of a query, following `next` links, 1000 at a time."""
    features: list[dict[str, Any]] = []
    url: str | None = path
    query: dict[str, Any] | None = {"limit": 1000, **(params or {})}
    while url:
        r = http.get(url, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        features.extend(body["features"])
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        query = None  # the next link carries every parameter
    return features


def number_matched(http: requests.Session, collection: str, params: dict[str, Any] | None = None) -> int:
    """numberMatched of `resulttype=hits` for a query of a collection."""
    r = http.get(f"/collections/{collection}/items", params={"resulttype": "hits", **(params or {})})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body.get("numberMatched"), int), body
    return body["numberMatched"]


@contextmanager
def created_site(base_url: str, headers: dict[str, str], database_url: str, properties: dict[str, Any]) -> Iterator[int]:
    """A site in Bordeaux created through the API with `headers`' credentials; deleted as the
    owner afterwards."""
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(BORDEAUX)}, "properties": properties}
    r = requests.post(f"{base_url}/collections/sites/items", json=feature, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    site_id = int(r.headers["Location"].rsplit("/", 1)[1])
    try:
        yield site_id
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM resorption.sites WHERE id = %s", (site_id,))


_REQUEST_ID = re.compile(r',?\s*"requestId"\s*:\s*"[^"]*"')


def body_text(r: requests.Response) -> str:
    """The body of an answer without its request id (each answer names its own request: two
    refusals that must say the same differ only there)."""
    return _REQUEST_ID.sub("", r.text)
