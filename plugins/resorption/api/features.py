"""The features face: items and single items of our catalog's collections.

We answer these routes ourselves, in front of pygeoapi's blueprint, because
pygeoapi parses `filter` with pygeofilter before any provider sees it
(refusing standard CQL2), transforms a `bbox-crs` box by its two corners
only, and answers mistakes in English without saying which value was
wrong. Each request goes parse → authorize → build → run → render; HTML
still comes from pygeoapi's own templates, CSV (`f=csv`) from our own writer
(formula-like text made inert). A file format, or a page above the bulk
threshold, is a bulk read governed by the export right (`resorption.bulk`).
"""

from __future__ import annotations

import urllib.parse
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import orjson
from flask import Request, Response
from pygeoapi import l10n
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_HTML, F_JSON, F_JSONLD, FORMAT_TYPES
from pygeoapi.linked_data import geojson2jsonld
from pygeoapi.util import render_j2_template

from resorption import bulk
from resorption.api import negotiation
from resorption.api.features_write import WRITABLE
from resorption.caller import Caller
from resorption.catalog import Collection, Field
from resorption.crs import Crs
from resorption.editing import version_sql
from resorption.errors import InvalidParameter
from resorption.params import check_known_parameters, parse_item, parse_items
from resorption.query import FeatureQuery
from resorption.reader import FeatureReader
from resorption.spreadsheets.writers import CSV, write_plain_csv
from resorption.web import display

GEOJSON = "application/geo+json"
# The changelog collection of a collection's items, linked from each item (rel version-history).
CHANGELOGS = {"sites": ("site_changes", "site_id"), "actions": ("action_changes", "action_id")}
# The journal of a collection's items, linked from each item (rel related), by its parent property.
JOURNAL_LINKS = {"sites": ("site_comments", "site_id"), "actions": ("action_comments", "action_id")}
# The query parameter of keyset `next` links: the id of the previous page's last feature.
AFTER = "after"
# Formats that make a file of the items (`f=`): their media types. Each is a bulk read.
FILE_FORMATS = {"csv": CSV}
SUPPORTED_FORMATS = (F_JSON, F_HTML, F_JSONLD, *FILE_FORMATS)


def _asked(api: API, request: Request) -> negotiation.Asked:
    """The negotiated format and language (400 for a format we do not write)."""
    asked = negotiation.negotiate(api, request)
    if asked.request.format not in (None, *SUPPORTED_FORMATS):
        raise InvalidParameter(
            f"Format « {asked.request.format} » non pris en charge : "
            f"utilisez f={', f='.join(SUPPORTED_FORMATS)}."
        )
    return asked


def _bulk(api_request: APIRequest, reader: FeatureReader, fq: FeatureQuery) -> FeatureQuery:
    """A file, or a page above the bulk threshold, of a collection the policy governs: an export.

    A file format is read within the export scope (403 without the export right). A page of
    more than `bulk_threshold` items is read within the export scope by those who may
    export, and reduced to `bulk_threshold` items for the others, rather than refused: the
    standard lets a server return fewer items than `limit` asks, and every client (QGIS,
    GDAL, the web map) then follows the `next` link, so those who may not export still read
    all they may read, one page at a time, never the whole table in one answer. The QGIS
    project asks for pages of the size the caller's right allows (`qgis_project.page_size`).
    """
    if not bulk.governs(reader.collection.id):
        return fq
    if api_request.format in FILE_FORMATS:
        reader.exporting()
        return fq
    threshold = reader.settings.bulk_threshold
    if fq.hits_only or fq.limit <= threshold:
        return fq
    if reader.caller.may_export():
        reader.exporting()
        return fq
    return replace(fq, limit=threshold)


def _content_crs(headers: dict[str, str], crs: Crs) -> None:
    headers["Content-Crs"] = f"<{crs.uri}>"


def _response(content: Any, status: int, headers: dict[str, str]) -> Response:
    return Response(content, status=status, headers=headers)


def items(
    api: API, request: Request, collection: Collection, caller: Caller, body: str | None = None
) -> Response:
    """GET /collections/{id}/items (or POST with a CQL2 JSON filter as `body`)."""
    asked = _asked(api, request)
    api_request = asked.request
    reader = FeatureReader(caller, collection)
    check_known_parameters(collection, reader.readable, request.args.keys(), (AFTER,))
    fq = parse_items(collection, reader.readable, request.args, caller.settings.limits, body=body)
    after = request.args.get(AFTER)
    if after is not None:
        fq = replace(fq, after=_after(collection, after))
    fq = _bulk(api_request, reader, fq)

    uri = f"{api.get_collections_url()}/{collection.id}/items"
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in ("f", "offset", AFTER)]
    headers = dict(asked.headers)
    _content_crs(headers, fq.crs)
    if _is_geojson(api_request):
        # The fast path: PostgreSQL's JSON array goes out as it came, never parsed in Python.
        fast = reader.page(fq)
        next_after = fast.last_id if not fq.sortby and fast.returned else None
        links = _page_links(
            api_request, uri, query, fq.offset, fq.limit, fast.returned, fast.matched, next_after
        )
        tail: dict[str, Any] = {} if fast.matched is None else {"numberMatched": fast.matched}
        tail |= {"numberReturned": fast.returned, "links": links, "timeStamp": _timestamp()}
        content = b"".join(
            (b'{"type":"FeatureCollection","features":', fast.features, b",", orjson.dumps(tail)[1:])
        )
        headers["Content-Type"] = GEOJSON
        headers["Link"] = link_header(links)
        return _response(content, HTTPStatus.OK, headers)

    page = reader.features(fq)
    page["links"] = _page_links(
        api_request, uri, query, fq.offset, fq.limit, len(page["features"]), page.get("numberMatched"), None
    )
    headers["Link"] = link_header(page["links"])
    page["timeStamp"] = _timestamp()

    def html() -> dict[str, Any]:
        return {
            "title": l10n.translate(api.config["resources"][collection.id]["title"], api_request.locale),
            "itemtype": "feature",
            "items_path": uri,
            "dataset_path": uri.rsplit("/", 1)[0],
            "collections_path": api.get_collections_url(),
            "offset": fq.offset,
            "id_field": collection.title_field or collection.id_field,
            "title_field": collection.title_field,
            **_items_display(api_request, collection, page, fq.select, uri),
        }

    return _render(api, api_request, reader, fq, page, headers, "collections/items/index.html", html)


def item(api: API, request: Request, collection: Collection, caller: Caller, identifier: str) -> Response:
    """GET /collections/{id}/items/{itemId}, with the item's version as ETag when it has one."""
    asked = _asked(api, request)
    api_request = asked.request
    reader = FeatureReader(caller, collection)
    fq = parse_item(collection, reader.readable, request.args)
    fq = _bulk(api_request, reader, fq)
    version_expression = version_sql(collection) if collection.id in WRITABLE else None
    raw, version = reader.feature_json(fq, identifier, version_expression)

    headers = dict(asked.headers)
    _content_crs(headers, fq.crs)
    if _is_geojson(api_request):
        links, headers["Link"] = _geojson_links(api, collection, api_request.locale, identifier)
        if version:
            headers["ETag"] = version
            if _not_modified(request, version):
                return _response(b"", HTTPStatus.NOT_MODIFIED, {"ETag": version})
        # PostgreSQL's Feature object ends with "}": the links go in before it, nothing is parsed.
        content = b"".join((raw[:-1], b',"links":', links, b"}"))
        headers["Content-Type"] = GEOJSON
        return _response(content, HTTPStatus.OK, headers)

    title = _title(api, collection, api_request.locale)
    base = f"{api.get_collections_url()}/{collection.id}"
    uri = f"{base}/items/{urllib.parse.quote(identifier, safe='')}"
    item_links = _item_links(
        api,
        collection,
        title,
        api_request.format == F_HTML,
        urllib.parse.quote(identifier, safe=""),
        urllib.parse.quote_plus(identifier),
    )
    headers["Link"] = link_header(item_links)
    if version:
        headers["ETag"] = version
    feature = orjson.loads(raw)
    feature["links"] = item_links

    def html() -> dict[str, Any]:
        return {
            "title": title,
            "id_field": collection.id_field,
            "title_field": collection.title_field,
            "collections_path": api.get_collections_url(),
            **_item_display(api_request, collection, feature, f"{base}/items"),
        }

    return _render(api, api_request, reader, fq, feature, headers, "collections/items/item.html", html, uri)


def _title(api: API, collection: Collection, locale: Any) -> str:
    return l10n.translate(api.config["resources"][collection.id]["title"], locale)


def _item_links(
    api: API, collection: Collection, title: str, is_html: bool, path_id: str, query_id: str
) -> list[dict[str, str]]:
    """An item's links; `path_id` and `query_id`: its id quoted for a path and for a query."""
    collections = api.get_collections_url()
    base = f"{collections}/{collection.id}"
    uri = f"{base}/items/{path_id}"
    links = [
        _link("alternate" if is_html else "self", GEOJSON, "Cet élément en GeoJSON", f"{uri}?f=json"),
        _link("self" if is_html else "alternate", "text/html", "Cet élément en HTML", f"{uri}?f=html"),
        _link("collection", "application/json", title, base),
    ]
    # (the queries as urlencode writes them: the names and orders are plain, the id is quoted)
    if collection.id in CHANGELOGS:
        changelog, key = CHANGELOGS[collection.id]
        href = f"{collections}/{changelog}/items?{key}={query_id}&sortby=valid_from"
        links.append(_link("version-history", GEOJSON, "Historique des versions", href))
    if collection.id in JOURNAL_LINKS:
        journal, parent = JOURNAL_LINKS[collection.id]
        href = f"{collections}/{journal}/items?{parent}={query_id}&sortby=-created_at"
        links.append(_link("related", GEOJSON, "Journal (messages)", href))
    return links


# Where an item's id goes in the links' template: as a path segment, as a query value.
PATH_SLOT = "{{chemin-de-l-element}}"
QUERY_SLOT = "{{valeur-de-l-element}}"


@dataclass(frozen=True, slots=True)
class _LinksTemplate:
    """An item's GeoJSON links (JSON text) and `Link` header, with slots for its quoted id."""

    json: str
    header: str


_links_templates: weakref.WeakKeyDictionary[API, dict[tuple[str, str], _LinksTemplate | None]] = (
    weakref.WeakKeyDictionary()
)


def _geojson_links(api: API, collection: Collection, locale: Any, identifier: str) -> tuple[bytes, str]:
    """An item's links in its GeoJSON (JSON bytes) and its `Link` header, from the template of
    the collection's links: only the id changes from one item to the next."""
    path_id = urllib.parse.quote(identifier, safe="")
    query_id = urllib.parse.quote_plus(identifier)
    template = _item_links_template(api, collection, locale)
    if template is None:
        links = _item_links(api, collection, _title(api, collection, locale), False, path_id, query_id)
        return orjson.dumps(links), link_header(links)
    # (quoted, an id holds no character that JSON or a header would escape, nor a slot's braces)
    return (
        template.json.replace(PATH_SLOT, path_id).replace(QUERY_SLOT, query_id).encode(),
        template.header.replace(PATH_SLOT, path_id).replace(QUERY_SLOT, query_id),
    )


def _item_links_template(api: API, collection: Collection, locale: Any) -> _LinksTemplate | None:
    """The GeoJSON links of `collection`'s items in `locale`, with slots for the id, made once per
    process and application (None in the absurd case of a title holding a slot)."""
    key = (collection.id, str(locale))
    known = _links_templates.get(api)
    if known is None:
        known = _links_templates.setdefault(api, {})
    if key in known:
        return known[key]
    title = _title(api, collection, locale)
    links = _item_links(api, collection, title, False, PATH_SLOT, QUERY_SLOT)
    template = _LinksTemplate(orjson.dumps(links).decode(), link_header(links))
    fixed = title + api.get_collections_url()
    known[key] = None if PATH_SLOT in fixed or QUERY_SLOT in fixed else template
    return known[key]


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_geojson(api_request: APIRequest) -> bool:
    """Whether the negotiated format is plain GeoJSON (not HTML, JSON-LD or a file)."""
    fmt = api_request.format
    return fmt != F_HTML and fmt != F_JSONLD and fmt not in FILE_FORMATS


def _not_modified(request: Request, version: str) -> bool:
    """Whether the client's If-None-Match already names `version` (weak comparison)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or version in tags


def _after(collection: Collection, raw: str) -> Any:
    """The keyset bound of a `next` link: an id of the collection."""
    if not collection.id_is_integer:
        return raw
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter(f"{AFTER} doit être l'identifiant d'un élément, reçu « {raw} ».")
    return int(raw)


def _items_display(
    api_request: APIRequest,
    collection: Collection,
    page: dict[str, Any],
    select: tuple[Field, ...] | None,
    items_path: str,
) -> dict[str, Any]:
    """The items page's extra context: the labelled table and the map's light features."""
    language = api_request.locale.language
    features = page["features"]
    selected = [f.name for f in select] if select is not None else None
    return {
        "table": display.table(collection, features, selected, items_path, language),
        "map_features": [display.map_feature(collection, f, items_path, language) for f in features],
    }


def _item_display(
    api_request: APIRequest, collection: Collection, feature: dict[str, Any], items_path: str
) -> dict[str, Any]:
    """The item page's extra context: its title, its properties grouped and labelled, its map feature."""
    language = api_request.locale.language
    return {
        "item_title": display.item_title(collection, feature, language),
        "sections": display.sections(collection, feature.get("properties") or {}, language),
        "map_feature": display.map_feature(collection, feature, items_path, language),
        "items_path": items_path,
    }


def _render(
    api: API,
    api_request: APIRequest,
    reader: FeatureReader,
    fq: FeatureQuery,
    content: dict[str, Any],
    headers: dict[str, str],
    template: str,
    html: Callable[[], dict[str, Any]],
    item_uri: str | None = None,
) -> Response:
    """The response in the negotiated format: GeoJSON, HTML, JSON-LD or a file (CSV).

    `html` builds the page context only when HTML is asked for, to keep JSON requests lean.
    """
    collection = reader.collection
    fmt = api_request.format
    if fmt == F_HTML:
        page = render_j2_template(
            api.tpl_config,
            api.get_dataset_templates(collection.id),
            template,
            {**content, **html()},
            api_request.locale,
        )
        # pygeoapi says `text/html` without a charset; clients other than browsers then guess Latin-1.
        headers["Content-Type"] = "text/html; charset=utf-8"
        return _response(page, HTTPStatus.OK, headers)
    if fmt == F_JSONLD:
        headers["Content-Type"] = FORMAT_TYPES[F_JSONLD]
        # pygeoapi reads a single feature (not a collection) when it is given the item's URI.
        body = geojson2jsonld(api, content, collection.id, item_uri, id_field="id")
        return _response(body, HTTPStatus.OK, headers)
    if fmt in FILE_FORMATS:
        features = content.get("features", [content])
        headers["Content-Type"] = FILE_FORMATS[fmt]
        headers["Content-Disposition"] = f'attachment; filename="{collection.id}.{fmt}"'
        file = _csv(collection, [f.name for f in fq.properties], features)
        if bulk.governs(collection.id):
            groups = {f.group.sensitive for f in fq.properties if f.group.sensitive}
            detail = {"format": fmt, "features": len(features)}
            reader.caller.audit("export", collection.id, None, groups, detail)
        return _response(file, HTTPStatus.OK, headers)
    headers["Content-Type"] = GEOJSON
    return _response(orjson.dumps(content), HTTPStatus.OK, headers)


def _csv(collection: Collection, names: Sequence[str], features: Sequence[dict[str, Any]]) -> bytes:
    """Features as CSV for programs: the id (unless it is a property), then each property asked for."""
    lead = [] if collection.id_field in names else ["id"]
    rows = (
        [*([f.get("id")] if lead else []), *((f.get("properties") or {}).get(n) for n in names)]
        for f in features
    )
    return write_plain_csv([*lead, *names], rows)


def _link(rel: str, media_type: str, title: str, href: str) -> dict[str, str]:
    return {"rel": rel, "type": media_type, "title": title, "href": href}


# The links of a page that also go in its HTTP `Link` header (RFC 8288).
HEADER_RELS = ("self", "alternate", "next", "prev")


def link_header(links: Sequence[dict[str, str]]) -> str:
    """The page's self, alternate, next and prev links as an HTTP `Link` header.

    OGC API Features Part 1 recommends them (/rec/core/fc-links, §7.15.8): a client can
    page through items without parsing the body. Titles stay in the body (they are French,
    and header values are Latin-1).
    """
    return ", ".join(
        f'<{link["href"]}>; rel="{link["rel"]}"; type="{link["type"]}"'
        for link in links
        if link["rel"] in HEADER_RELS
    )


def _page_links(
    api_request: APIRequest,
    uri: str,
    query: list[tuple[str, str]],
    offset: int,
    limit: int,
    returned: int,
    matched: int | None,
    next_after: Any,
) -> list[dict[str, str]]:
    """self/alternate, and next/prev built from the public base URL with every parameter kept.

    With `next_after` (a page sorted by id only), `next` also names the page's last id: the
    next page then starts right after it (keyset) instead of skipping `offset` rows again.
    """

    def href(fmt: str, new_offset: int | None, after: Any = None) -> str:
        params = [("f", fmt), *query]
        if new_offset:
            params.append(("offset", str(new_offset)))
        if after is not None:
            params.append((AFTER, str(after)))
        return f"{uri}?{urllib.parse.urlencode(params)}"

    is_html = api_request.format == F_HTML
    links = [
        _link(
            "alternate" if is_html else "self",
            GEOJSON,
            "Cette page en GeoJSON",
            href("json", offset),
        ),
        _link(
            "self" if is_html else "alternate",
            "text/html",
            "Cette page en HTML",
            href("html", offset),
        ),
    ]
    links.append(_link("collection", "application/json", "La collection", uri.rsplit("/", 1)[0]))
    fmt, media = ("html", "text/html") if is_html else ("json", GEOJSON)
    has_next = offset + returned < matched if matched is not None else returned == limit
    if has_next and returned:
        links.append(_link("next", media, "Page suivante", href(fmt, offset + limit, next_after)))
    if offset > 0:
        links.append(_link("prev", media, "Page précédente", href(fmt, max(0, offset - limit))))
    return links
