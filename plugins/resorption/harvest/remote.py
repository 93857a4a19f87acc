"""The remote side of a harvest: page through an OGC API Features collection.

Only the first request is built here (limit, filter, datetime); every following page
is the server's own `next` link, as OGC API Features asks: offsets, cursors or tokens
are the server's business. A failure of the source (network, HTTP status, not GeoJSON,
a `next` link that loops) ends the harvest with a French message naming the source.

Requests go only where the configuration says: to the origin (scheme, host, port) of the
source's url. A `next` link or a redirect to another origin stops the harvest before
anything is sent there, so the credentials (sent over https only: `sources`) never leave
that origin; redirects are followed by hand, within it. Each response is read as a stream
and cut off past the source's size cap (`taille_max`) or time cap (`delai`, from the
request to the last byte), and a harvest reads at most `pages_max` pages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import orjson
import requests
import urllib3

from resorption.errors import ResorptionError
from resorption.harvest.sources import Source
from resorption.urls import origin

ACCEPT = "application/geo+json, application/json;q=0.9"
# Redirects followed in a row (within the source's origin) before giving up.
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
# What is read of an error answer to quote its description.
ERROR_BODY = 64 * 1024


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
    """Every page of the remote collection, following `next` links (of the source's origin) to the end."""
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
            if number > source.max_pages:
                raise SourceUnavailable(
                    f"Source « {source.name} » : plus de {source.max_pages} pages ; le moissonnage "
                    "s'arrête là. Augmentez pages_max ou taille_page dans la description de la source "
                    "si la collection est vraiment si grande."
                )
            body = _get(session, source, url, params)
            features = body.get("features")
            if not isinstance(features, list):
                raise SourceUnavailable(
                    f"Source « {source.name} » : la page {number} n'est pas une collection GeoJSON "
                    f"(« features » manque) ; vérifiez l'url et la collection ({source.items_url})."
                )
            matched = body.get("numberMatched")
            yield Page(number, features, matched if isinstance(matched, int) else None)
            link = _next_link(body)
            url = (
                None
                if link is None
                else _same_origin(source, urljoin(url, link), f"le lien « next » de la page {number}")
            )
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


def _same_origin(source: Source, url: str, what: str) -> str:
    """`url` when it lies at the source's origin; else the harvest stops, nothing sent there."""
    if origin(url) != source.origin:
        scheme, host, port = source.origin
        raise SourceUnavailable(
            f"Source « {source.name} » : {what} mène à une autre adresse ({url[:200]}) que celle "
            f"de la source ({scheme}://{host}:{port}) ; le moissonnage s'arrête sans l'appeler. "
            "Une source ne doit renvoyer que vers elle-même : corrigez l'url de la source ou "
            "signalez-le à son administrateur."
        )
    return url


def _next_link(body: dict[str, Any]) -> str | None:
    for link in body.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            return link["href"]
    return None


def _get(
    session: requests.Session, source: Source, url: str, params: dict[str, str] | None
) -> dict[str, Any]:
    """One page as JSON, read within the source's caps, redirects followed within its origin."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = session.get(
                url, params=params, timeout=source.timeout, stream=True, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise SourceUnavailable(
                f"Source « {source.name} » injoignable ({type(exc).__name__}) à {url} : "
                "vérifiez l'url et le réseau."
            ) from exc
        with response:
            if response.is_redirect:
                url = _same_origin(
                    source, urljoin(url, response.headers["Location"]), f"la redirection de {url}"
                )
                params = None  # the Location carries every parameter
                continue
            return _page(source, url, response)
    raise SourceUnavailable(
        f"Source « {source.name} » : plus de {MAX_REDIRECTS} redirections à la suite depuis {url} ; "
        "donnez l'adresse finale comme url de la source."
    )


def _page(source: Source, url: str, response: requests.Response) -> dict[str, Any]:
    """The JSON object of a response, or the French reason why not."""
    if response.status_code in (401, 403):
        raise SourceUnavailable(
            f"Source « {source.name} » : accès refusé (HTTP {response.status_code}) ; "
            "vérifiez l'identifiant, le mot de passe ou le jeton donnés par les variables "
            "d'environnement de la source."
        )
    if response.status_code != 200:
        detail = _detail(_read(source, url, response, ERROR_BODY, cut=True))
        raise SourceUnavailable(
            f"Source « {source.name} » : la page {url} a répondu HTTP {response.status_code}"
            + (f" ({detail})" if detail else "")
            + "."
        )
    content = _read(source, url, response, source.max_bytes)
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise SourceUnavailable(
            f"Source « {source.name} » : la réponse de {url} n'est pas du JSON."
        ) from None
    if not isinstance(body, dict):
        raise SourceUnavailable(f"Source « {source.name} » : la réponse de {url} n'est pas un objet GeoJSON.")
    return body


def _read(source: Source, url: str, response: requests.Response, cap: int, cut: bool = False) -> bytes:
    """The body as a stream: at most `cap` bytes (past it: the harvest stops, or with `cut` the
    rest is dropped), within the source's time cap from the request on."""
    started = time.monotonic() - response.elapsed.total_seconds()
    declared = response.headers.get("Content-Length", "")
    if not cut and declared.isdigit() and int(declared) > cap:
        raise _too_big(source, url, cap)
    chunks: list[bytes] = []
    size = 0
    try:
        # read1: whatever has arrived, at most CHUNK bytes, so that a source that sends a byte at a
        # time is stopped by the time cap (a plain read waits until CHUNK bytes are there).
        while chunk := response.raw.read1(CHUNK, decode_content=True):
            size += len(chunk)
            if size > cap:
                if cut:
                    break
                raise _too_big(source, url, cap)
            chunks.append(chunk)
            if time.monotonic() - started > source.timeout:
                raise SourceUnavailable(
                    f"Source « {source.name} » : la réponse de {url} dépasse le délai de "
                    f"{source.timeout:g} secondes (delai) ; le moissonnage s'arrête. Allongez « delai » "
                    "ou réduisez « taille_page » si la source est lente."
                )
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise SourceUnavailable(
            f"Source « {source.name} » : la réponse de {url} s'est interrompue ({type(exc).__name__})."
        ) from exc
    return b"".join(chunks)


def _too_big(source: Source, url: str, cap: int) -> SourceUnavailable:
    return SourceUnavailable(
        f"Source « {source.name} » : la réponse de {url} dépasse {cap / 1_000_000:g} Mo (taille_max) ; "
        "le moissonnage s'arrête. Réduisez « taille_page », ou augmentez « taille_max » si des pages "
        "de cette taille sont normales pour cette source."
    )


def _detail(content: bytes) -> str:
    """The description of an OGC exception body, shortened."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    text = body.get("description") if isinstance(body, dict) else None
    return str(text)[:200] if text else ""
