"""Standard map documents: TileJSON 3.0 per tileset and MapLibre styles, under the caller's rights.

A style names only fields the caller's tiles carry (never a hidden one), leaves out the
collections the caller may not read, uses the colours and population classes of
`resorption.styles`, and a real MapLibre GL JS (vendored, in Chromium) draws our sites from
our TileJSON and style alone.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser

from resorption import styles
from tests.fix_browser import CHROMIUM, SCREENSHOTS, Pages
from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import CATALOG, TestUser

STYLE = "application/vnd.mapbox.style+json"
TILEJSON = "/collections/{}/tiles/WebMercatorQuad/tilejson.json"
TILED = ("sites", "actions", "regions", "departements", "communes")
SENSITIVE = {name for c in ("sites", "actions") for name, f in CATALOG[c].fields.items() if f.group.sensitive}
MAPLIBRE_PAGE = Path(__file__).parent / "clients" / "maplibre.html"
# A Gironde site cluster, zoomed in enough (≥ 9) for sites to be drawn one by one.
GIRONDE = (-0.58, 44.84, 10)


def get(base_url: str, path: str, user: TestUser | None, **params: str) -> requests.Response:
    return requests.get(base_url + path, headers=user.headers if user else {}, params=params, timeout=60)


def named_properties(node: Any) -> set[str]:
    """Every property a style expression reads (`["get", name]`, `["has", name]`)."""
    found: set[str] = set()
    if isinstance(node, list):
        if len(node) >= 2 and node[0] in ("get", "has") and isinstance(node[1], str):
            found.add(node[1])
        for child in node:
            found |= named_properties(child)
    elif isinstance(node, dict):
        for child in node.values():
            found |= named_properties(child)
    return found


def test_tilejson_of_each_tileset(base_url: str, users: dict[str, TestUser]) -> None:
    """TileJSON 3.0.0 (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0): required
    members `tilejson`, `tiles`, `vector_layers` (each with `id` and `fields`), and a URL
    template that gives the tiles of OGC API Tiles."""
    admin = users["national-admin-nation"]
    for collection in TILED:
        r = get(base_url, TILEJSON.format(collection), admin)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["tilejson"] == "3.0.0"
        assert doc["tiles"] == [
            f"{base_url}/collections/{collection}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"
        ]
        labels = ["communes_noms"] if collection == "communes" else []
        assert [layer["id"] for layer in doc["vector_layers"]] == [collection, *labels]
        assert 0 <= doc["minzoom"] <= doc["maxzoom"] <= 22
        assert len(doc["bounds"]) == 4 and len(doc["center"]) == 3
    fields = get(base_url, TILEJSON.format("sites"), admin).json()["vector_layers"][0]["fields"]
    assert set(fields) == {"id", "name", "status", "population_total", "count", "population"}
    # The template works: a tile of Gironde, fetched as the TileJSON says.
    template = get(base_url, TILEJSON.format("departements"), None).json()["tiles"][0]
    assert requests.get(template.format(z=6, y=23, x=31), timeout=60).status_code == 200


def test_tilejson_and_styles_follow_rights(base_url: str, users: dict[str, TestUser]) -> None:
    """The app's rule for every reading: a collection the caller may not read is 401
    (anonymous) or 404, for its TileJSON and its style as for its items."""
    for path in (
        TILEJSON.format("sites"),
        "/collections/sites/styles/default",
        "/collections/actions/styles",
    ):
        assert get(base_url, path, None).status_code == 401
    # Territories are public: their documents too.
    assert get(base_url, TILEJSON.format("regions"), None).status_code == 200
    public = get(base_url, "/styles/carte", None)
    assert public.status_code == 200 and public.headers["Content-Type"] == STYLE
    # An anonymous visitor's map has the base layer only: no source or layer of sites or actions.
    doc = public.json()
    assert set(doc["sources"]) == {"regions", "departements", "communes"}
    assert not any(layer["id"].startswith(("sites", "actions")) for layer in doc["layers"])
    assert '"sites"' not in public.text and "population" not in public.text


@pytest.mark.parametrize(
    "username",
    ["national-admin-nation", "external-observer-departement-33", "intervener-departement-33", None],
)
def test_style_names_only_fields_the_tiles_give(
    base_url: str, users: dict[str, TestUser], username: str | None
) -> None:
    """A style never names a field the caller's tiles do not carry (so never a hidden one):
    every `get`/`has` of every layer is a field of that layer's TileJSON for the same caller."""
    user = users[username] if username else None
    doc = get(base_url, "/styles/carte", user).json()
    for layer in doc["layers"]:
        if "source-layer" not in layer:
            continue
        tilejson = get(base_url, TILEJSON.format(layer["source"]), user)
        assert tilejson.status_code == 200
        vector_layers = {v["id"]: v for v in tilejson.json()["vector_layers"]}
        fields = set(vector_layers[layer["source-layer"]]["fields"])
        named = named_properties(layer)
        assert named <= fields, (layer["id"], named - fields)
        assert not named & SENSITIVE
    for collection in ("sites", "actions"):
        assert (collection in doc["sources"]) == (user is not None)


def test_style_has_the_shared_colours_and_classes(base_url: str, users: dict[str, TestUser]) -> None:
    """The same status colours and population classes as /carte and the QGIS project."""
    doc = get(base_url, "/collections/sites/styles/default", users["national-admin-nation"]).json()
    sites = next(layer for layer in doc["layers"] if layer["id"] == "sites")
    colour = sites["paint"]["circle-color"]
    assert dict(zip(colour[2:-1:2], colour[3:-1:2], strict=True)) == dict(styles.STATUS_COLOURS)
    radius = sites["paint"]["circle-radius"]
    assert radius[3:] == [v for c in styles.POPULATION_CLASSES for v in (c.minimum, c.radius)]
    assert sites["paint"]["circle-stroke-color"] == styles.OUTLINE_COLOUR
    listed = get(base_url, "/styles", None).json()
    assert [s["id"] for s in listed["styles"]] == ["carte", "fond"]
    assert all(link["type"] == STYLE for s in listed["styles"] for link in s["links"])
    # An unknown style is a 404, an unknown parameter a 400.
    assert get(base_url, "/styles/satellite", None).status_code == 404
    assert get(base_url, "/styles/carte", None, ooga="booga").status_code == 400


def test_no_external_base_map_by_default(base_url: str) -> None:
    """Offline by default: the base layer is our territories; no source names another server."""
    doc = requests.get(f"{base_url}/styles/fond", timeout=60).json()
    assert all(
        url.startswith(base_url)
        for source in doc["sources"].values()
        for url in [source.get("url", base_url), *source.get("tiles", [])]
    )
    assert doc["layers"][0]["type"] == "background"


@pytest.fixture(scope="module")
def webgl_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium with software WebGL (SwiftShader): MapLibre draws with WebGL, and CI has no GPU.

    Launched by the suite's own Playwright (one per process: a second `sync_playwright` would fail).
    """
    instance = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-background-networking",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
        ],
    )
    yield instance
    instance.close()


def test_maplibre_draws_our_sites_from_our_documents_alone(
    webgl_browser: Browser, base_url: str, users: dict[str, TestUser]
) -> None:
    """A map developer's page (tests/clients/maplibre.html): vendored MapLibre GL JS, our style
    URL, nothing else. It draws the sites the caller may read, with boundaries behind them."""
    user = users["operator-departement-33"]
    pages = Pages(webgl_browser, base_url)
    page = pages.open(user.username, user.token)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.route(f"{base_url}/essai-maplibre**", lambda route: route.fulfill(
        body=MAPLIBRE_PAGE.read_text(encoding="utf-8"), content_type="text/html; charset=utf-8"
    ))  # fmt: skip
    lon, lat, zoom = GIRONDE
    page.goto(f"/essai-maplibre?style={base_url}/styles/carte&lon={lon}&lat={lat}&zoom={zoom}")
    page.wait_for_function("() => document.body.dataset.done === '1'", timeout=90_000)
    body = page.evaluate("() => ({...document.body.dataset})")
    assert "error" not in body, body["error"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "maplibre-style-carte.png"
    page.screenshot(path=str(shot))
    pages.close()
    assert not pages.blocked and not pages.console_errors, (pages.blocked, pages.console_errors)

    drawn = json.loads(body["sites"])
    assert drawn, "aucun site dessiné"
    assert int(body["boundaries"]) > 0
    # What was drawn is the caller's: sites of Gironde, with the tiles' fields only.
    ids = {f["id"] for f in drawn}
    api = requests.get(
        f"{base_url}/collections/sites/items",
        params={
            "filter": f"id IN ({','.join(map(str, ids))})",
            "limit": 1000,
            "properties": "departement_code",
        },
        headers=user.headers,
        timeout=60,
    ).json()
    assert {f["id"] for f in api["features"]} == ids
    assert {f["properties"]["departement_code"] for f in api["features"]} == {"33"}
    assert {k for f in drawn for k in f} <= {"id", "name", "status", "population_total"}
    # Only our documents, tiles and the vendored library were asked for.
    assert all(url.startswith(base_url) for url in requested)
    assert any("/tilejson.json" in url for url in requested)
    assert any("/tiles/WebMercatorQuad/10/" in url for url in requested)
    # The picture has status colours on it (the screenshot is kept for a person to look at).
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    colours = {c for _, c in image.getcolors(maxcolors=1 << 20)}
    status_rgb = {tuple(int(v[i : i + 2], 16) for i in (1, 3, 5)) for v in styles.STATUS_COLOURS.values()}
    assert colours & status_rgb, "aucune couleur de statut à l'écran"


def glyph_ids(pbf: bytes) -> list[int]:
    """The code points of a glyphs PBF (glyphs.proto: stacks=1 › glyphs=3 › id=1), read by hand."""

    def fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
        i = 0
        while i < len(data):
            key, i = varint(data, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, i = varint(data, i)
                yield number, wire, value
            elif wire == 2:
                length, i = varint(data, i)
                yield number, wire, data[i : i + length]
                i += length
            else:
                raise AssertionError(f"type de champ inattendu : {wire}")

    def varint(data: bytes, i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[i]
            value |= (byte & 0x7F) << shift
            i, shift = i + 1, shift + 7
            if byte < 0x80:
                return value, i

    ids = []
    for number, _, stack in fields(pbf):
        assert number == 1
        for n, _, glyph in fields(stack):
            if n == 3:
                ids += [v for f, _, v in fields(glyph) if f == 1]
    return ids


def test_labels_of_communes_with_our_own_glyphs(base_url: str) -> None:
    """The offline base layer writes commune names from zoom 10 with glyphs we serve (the DSFR's
    Marianne as SDF ranges): the style's `glyphs` URL is ours, a range has the letters of French
    place names, a range we did not make is empty (not an error), and the tiles carry one label
    point per commune (`communes_noms`), so a commune cut by tile edges is named once."""
    doc = requests.get(f"{base_url}/styles/fond", timeout=60).json()
    assert doc["glyphs"] == f"{base_url}/styles/glyphs/{{fontstack}}/{{range}}.pbf"
    labels = next(layer for layer in doc["layers"] if layer["type"] == "symbol")
    assert labels["source-layer"] == "communes_noms" and labels["minzoom"] == 10
    assert labels["layout"]["text-field"] == ["get", "name"]
    font = labels["layout"]["text-font"][0]
    r = requests.get(f"{base_url}/styles/glyphs/{font}/0-255.pbf", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-protobuf"
    ids = glyph_ids(r.content)
    assert {ord(c) for c in "Saint-Médard-en-Jalles Villenave-d'Ornon Bègles Eysines"} <= set(ids)
    extended = glyph_ids(requests.get(f"{base_url}/styles/glyphs/{font}/256-511.pbf", timeout=60).content)
    assert ord("œ") in extended  # Sallebœuf
    empty = requests.get(f"{base_url}/styles/glyphs/{font}/19968-20223.pbf", timeout=60)
    assert empty.status_code == 200 and glyph_ids(empty.content) == []
    assert requests.get(f"{base_url}/styles/glyphs/Arial/0-255.pbf", timeout=60).status_code == 404
    assert requests.get(f"{base_url}/styles/glyphs/{font}/3-258.pbf", timeout=60).status_code == 404
    # The tiles: from zoom 10, a second layer with one point per commune, inside it.
    tilejson = requests.get(base_url + TILEJSON.format("communes"), timeout=60).json()
    assert [v["id"] for v in tilejson["vector_layers"]] == ["communes", "communes_noms"]
    assert set(tilejson["vector_layers"][1]["fields"]) == {"code", "name"}
    tile = requests.get(f"{base_url}/collections/communes/tiles/WebMercatorQuad/10/369/510", timeout=60)
    decoded = mapbox_vector_tile.decode(tile.content)
    points = decoded["communes_noms"]["features"]
    assert points and all(f["geometry"]["type"] == "Point" for f in points)
    codes = [f["properties"]["code"] for f in points]
    assert len(codes) == len(set(codes))
    assert set(codes) <= {f["properties"]["code"] for f in decoded["communes"]["features"]}
    nine = requests.get(f"{base_url}/collections/communes/tiles/WebMercatorQuad/9/184/255", timeout=60)
    assert "communes_noms" not in mapbox_vector_tile.decode(nine.content)


def test_maplibre_writes_commune_names(webgl_browser: Browser, base_url: str) -> None:
    """MapLibre on our public base style, zoomed on Bordeaux: glyph requests answered 200 by us,
    commune names drawn once each (the screenshot is kept for a person to look at)."""
    pages = Pages(webgl_browser, base_url)
    page = pages.open()
    glyphs: list[tuple[int, str]] = []
    page.on("response", lambda r: glyphs.append((r.status, r.url)) if "/styles/glyphs/" in r.url else None)
    page.route(f"{base_url}/essai-maplibre**", lambda route: route.fulfill(
        body=MAPLIBRE_PAGE.read_text(encoding="utf-8"), content_type="text/html; charset=utf-8"
    ))  # fmt: skip
    page.goto(f"/essai-maplibre?style={base_url}/styles/fond&lon=-0.58&lat=44.84&zoom=11")
    page.wait_for_function("() => document.body.dataset.done === '1'", timeout=90_000)
    body = page.evaluate("() => ({...document.body.dataset})")
    assert "error" not in body, body["error"]
    names = page.evaluate(
        "() => window.maplibreMap.queryRenderedFeatures({layers: ['communes-noms']}).map(f => f.properties.name)"
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "maplibre-noms-communes.png"))
    pages.close()
    assert not pages.blocked and not pages.console_errors, (pages.blocked, pages.console_errors)
    assert glyphs and all(status == 200 for status, _ in glyphs), glyphs
    assert {"Bordeaux", "Mérignac", "Talence", "Pessac"} <= set(names), names
    assert len(names) == len(set(names)), "une commune nommée deux fois"


def test_external_base_map_when_configured(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, users: dict[str, TestUser]
) -> None:
    """A deployment with internet names a base map (e.g. IGN Plan): the styles put it under our
    layers, as a raster source with its attribution; our own layers stay on top."""
    runtime = tmp_path_factory.mktemp("fond-externe")
    port = free_port()
    tiles = "https://data.geopf.fr/wmts?LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
        "RESORPTION_MAP_TILES_URL": tiles,
        "RESORPTION_MAP_ATTRIBUTION": "IGN-F / Géoportail",
    }
    with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port) as url:
        doc = get(url, "/styles/carte", users["national-admin-nation"]).json()
    assert doc["sources"]["fond-externe"] == {
        "type": "raster",
        "tiles": [tiles],
        "tileSize": 256,
        "attribution": "IGN-F / Géoportail",
    }
    ids = [layer["id"] for layer in doc["layers"]]
    assert ids[:2] == ["fond", "fond-externe"] and ids[-1] == "sites"


def test_items_map_is_never_blank(pages: Pages, users: dict[str, TestUser], screenshot: Any) -> None:
    """The items page's map has no external base map by default: it draws the outlines of the
    départements in view from our own API behind the sites (no request leaves localhost)."""
    user = users["operator-departement-33"]
    page = pages.open(user.username, user.token)
    page.goto("/collections/sites/items?f=html&limit=20")
    page.wait_for_function(
        "() => document.querySelectorAll('path.fond-territoires').length > 0", timeout=60_000
    )
    assert page.locator("path.fond-territoires").count() >= 1
    screenshot(page, "elements-fond")
