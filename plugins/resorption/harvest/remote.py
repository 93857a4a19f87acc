"""The remote side of a harvest: page through an OGC API Features collection.

Only the first request is built here (limit, filter, datetime); every following page
is the server's own `next` link, as OGC API Features asks: offsets, cursors or tokens
are the server's business. A failure of the source (network, HTTP status, not GeoJSON,
a `next` link that loops) ends the harvest with a French message naming the source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from resorption.errors import ResorptionError
from resorption.harvest.sources import Source

ACCEPT = "application/geo+json, application/json;q=0.9"


class SourceUnavailable(ResorptionError):
    """The remote collection could not be read completely."""

    default_message = "La source de moissonnage n'a pas pu être lue."


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the remote collection."""

    number: int
    features: list[dict[str, Any]]
    matched: int | None  # numberMatched, when the source gives it


def first_query(source: Source, since: datetime | None) -> dict[str, str]:
    """The parameters of the first page: page size, the source's filter, the changes since `since`."""
    params = {"limit": str(source.page_size)}
    filters = [f"({source.static_filter})"] if source.static_filter else []
    inc = source.incremental
    if since is not None and inc is not None:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if inc.mode == "datetime":
            params["datetime"] = f"{stamp}/.."
        else:
            filters.append(f"{inc.field} >= TIMESTAMP('{stamp}')")
    if filters:
        params["filter"] = " AND ".join(filters)
        params["filter-lang"] = "cql2-text"
    return params


def pages(source: Source, since: datetime | None) -> Iterator[Page]:
    """Every page of the remote collection, following `next` links to the end."""
    headers, auth = (
        ({}, None) if source.credentials is None else source.credentials.headers_and_auth(source.name)
    )
    with requests.Session() as session:
        session.headers.update({"Accept": ACCEPT, "User-Agent": "resorption-moissonnage", **headers})
        session.auth = auth
        url: str | None = source.items_url
        params: dict[str, str] | None = first_query(source, since)
        seen: set[str] = set()
        number = 0
        while url:
            number += 1
            body = _get(session, source, url, params)
            features = body.get("features")
            if not isinstance(features, list):
                raise SourceUnavailable(
                    f"Source « {source.name} » : la page {number} n'est pas une collection GeoJSON "
                    f"(« features » manque) ; vérifiez l'url et la collection ({source.items_url})."
                )
            matched = body.get("numberMatched")
            yield Page(number, features, matched if isinstance(matched, int) else None)
            url = _next_link(body)
            params = None  # the next link carries every parameter
            if url is not None:
                if url in seen:
                    raise SourceUnavailable(
                        f"Source « {source.name} » : le lien « next » de la page {number} renvoie à une "
                        "page déjà lue ; la pagination de la source est défaillante."
                    )
                seen.add(url)
            if not features:
                break  # a server announcing a next page after an empty one would never end


def _next_link(body: dict[str, Any]) -> str | None:
    for link in body.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            return link["href"]
    return None


def _get(
    session: requests.Session, source: Source, url: str, params: dict[str, str] | None
) -> dict[str, Any]:
    try:
        response = session.get(url, params=params, timeout=source.timeout)
    except requests.RequestException as exc:
        raise SourceUnavailable(
            f"Source « {source.name} » injoignable ({type(exc).__name__}) à {url} : "
            "vérifiez l'url et le réseau."
        ) from exc
    if response.status_code in (401, 403):
        raise SourceUnavailable(
            f"Source « {source.name} » : accès refusé (HTTP {response.status_code}) ; "
            "vérifiez l'identifiant, le mot de passe ou le jeton donnés par les variables "
            "d'environnement de la source."
        )
    if response.status_code != 200:
        detail = _detail(response)
        raise SourceUnavailable(
            f"Source « {source.name} » : la page {url} a répondu HTTP {response.status_code}"
            + (f" ({detail})" if detail else "")
            + "."
        )
    try:
        body = response.json()
    except ValueError:
        raise SourceUnavailable(
            f"Source « {source.name} » : la réponse de {url} n'est pas du JSON."
        ) from None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"Source « {source.name} » : la réponse de {url} n'est pas un objet GeoJSON.")
    return body


def _detail(response: requests.Response) -> str:
    """The description of an OGC exception body, shortened."""
    try:
        body = response.json()
    except ValueError:
        return ""
    text = body.get("description") if isinstance(body, dict) else None
    return str(text)[:200] if text else ""
