"""Small helpers to read our API the way a client does (following `next` links)."""

from __future__ import annotations

import re
from typing import Any

import requests


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


_REQUEST_ID = re.compile(r',?\s*"requestId"\s*:\s*"[^"]*"')


def body_text(r: requests.Response) -> str:
    """The body of an answer without its request id (each answer names its own request: two
    refusals that must say the same differ only there)."""
    return _REQUEST_ID.sub("", r.text)
