"""Security headers, caching and no version banner; every page type works under its CSP.

Over HTTP: each page carries the Content-Security-Policy (no inline script), frame-ancestors,
nosniff and Referrer-Policy, and holds no inline script, handler or style; whatever a signed-in
caller reads is `private, no-store`; nothing names pygeoapi's version. In Chromium (Playwright):
each page type draws what it should with the policy in force, and the `pages` fixture fails a
test whose pages report any CSP violation.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import psycopg
import pygeoapi
import pytest
import requests
from flask import Flask, render_template
from playwright.sync_api import Page, expect

from resorption.response_headers import content_security_policy, tile_source
from resorption.web import TEMPLATES_DIR
from tests.api import created_site
from tests.fix_browser import Pages
from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import TestUser

ADMIN = "national-admin-nation"
# A site name that would close a script block, open another one and hide the rest of the page.
HOSTILE_NAME = "</script><script>pwned=1</script>"  # names have 35 characters at most
HTML_PAGES = [
    "/",
    "/collections",
    "/collections/sites",
    "/collections/sites/items",
    "/collections/sites/items/{site}",
    "/collections/sites/queryables",
    "/collections/sites/schema",
    "/collections/departements/items",
    "/conformance",
    "/openapi",
    "/processes",
    "/processes/territory-statistics",
    "/jobs",
    "/tableau-de-bord/departement-33",
    "/carte",
    "/connexion",
]


@pytest.fixture(scope="module")
def site(db: psycopg.Connection) -> int:
    """Any site of Gironde."""
    return db.execute("SELECT min(id) FROM resorption.sites WHERE departement_code = '33'").fetchone()[0]


@pytest.fixture(scope="module")
def hostile_site(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[int]:
    """A site of Gironde whose name is markup meant to break out of a script block."""
    properties = {"name": HOSTILE_NAME, "population_total": 3, "declared_at": "2024-03-01"}
    with created_site(base_url, users["correspondent-departement-33"].headers, database_url, properties) as site:
        yield site


def csp(response: requests.Response) -> dict[str, str]:
    """The directives of a response's Content-Security-Policy."""
    policy = response.headers.get("Content-Security-Policy")
    assert policy, f"{response.url} : pas de Content-Security-Policy"
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


class Inline(HTMLParser):
    """Scripts, event handlers and styles written in a page itself (what the CSP refuses)."""

    DATA_TYPES = ("application/json", "application/ld+json")

    def __init__(self, text: str) -> None:
        super().__init__()
        self.found: list[str] = []
        self.data_blocks: dict[str, str] = {}
        self.scripts = 0
        self._block: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self.scripts += 1
            if values.get("type") in self.DATA_TYPES:
                self._block = values.get("id") or "?"
                self.data_blocks[self._block] = ""
            elif not values.get("src"):
                self.found.append("<script> inline")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._block = None

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self.data_blocks[self._block] += data


def html_page(http: requests.Session, path: str) -> requests.Response:
    r = http.get(
        path, params={"f": "html"} if not path.startswith(("/carte", "/connexion", "/tableau")) else None
    )
    assert r.status_code == 200, f"{path} : {r.status_code} {r.text[:300]}"
    assert r.headers["Content-Type"].startswith("text/html")
    return r


# -- headers of every page --------------------------------------------------------------------------


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_page_has_the_security_headers_and_no_inline_code(
    http: requests.Session, site: int, path: str
) -> None:
    r = html_page(http, path.format(site=site))
    directives = csp(r)
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"
    # A signed-in user's page: neither a proxy nor the browser's disk keeps it.
    assert r.headers["Cache-Control"] == "private, no-store"
    assert {"Authorization", "Cookie"} <= {v.strip() for v in r.headers["Vary"].split(",")}
    page = Inline(r.text)
    assert not page.found, f"{path} : {page.found}"


def test_anonymous_pages_have_the_security_headers_too(anonymous: requests.Session) -> None:
    for path in ("/", "/collections", "/connexion", "/collections/departements/items"):
        r = html_page(anonymous, path)
        assert csp(r)["frame-ancestors"] == "'none'"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert not Inline(r.text).found


def test_errors_have_the_security_headers(anonymous: requests.Session, http: requests.Session) -> None:
    for r in (anonymous.get("/nulle-part"), http.get("/collections/sites/items", params={"limit": "x"})):
        assert 400 <= r.status_code < 500
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert csp(r)["frame-ancestors"] == "'none'"


def test_the_base_map_is_the_only_other_image_source() -> None:
    assert "img-src 'self' data:;" in content_security_policy(None)
    policy = content_security_policy("https://{s}.tuiles.example.gouv.fr/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tuiles.example.gouv.fr;" in policy
    assert tile_source("javascript:alert(1)") is None
    assert tile_source("") is None


# -- caching ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/collections/sites/items?f=json&limit=2",
        "/collections/sites/items/{site}",
        "/collections/sites/items?f=csv&limit=2",
        "/collections/sites/queryables",
        "/collections/sites/tiles/WebMercatorQuad/6/22/31",
        "/collections/sites",
        "/jobs?f=json",
        "/carte/moi",
        "/tableau-de-bord/departement-33.csv",
        "/collections/departements/items/33",
    ],
)
def test_what_a_signed_in_caller_reads_is_never_stored(http: requests.Session, site: int, path: str) -> None:
    r = http.get(path.format(site=site))
    assert r.status_code in (200, 204), r.text
    assert r.headers["Cache-Control"] == "private, no-store"
    assert {"Authorization", "Cookie"} <= {v.strip() for v in r.headers["Vary"].split(",")}


def test_a_process_result_is_never_stored(http: requests.Session) -> None:
    r = http.post(
        "/processes/territory-statistics/execution",
        json={
            "inputs": {
                "level": "departement",
                "code": "33",
                "start": "2022-01-01",
                "end": "2023-01-01",
                "step": "year",
            }
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "private, no-store"


def test_public_answers_and_assets_keep_their_caching(anonymous: requests.Session) -> None:
    tile = anonymous.get("/collections/departements/tiles/WebMercatorQuad/6/22/31")
    assert tile.status_code == 200
    assert "no-store" not in tile.headers["Cache-Control"]
    assert "Authorization" in tile.headers["Vary"]
    asset = anonymous.get("/static/js/maps.js")
    assert asset.status_code == 200
    assert "no-store" not in asset.headers.get("Cache-Control", "")
    assert "Authorization" not in asset.headers.get("Vary", "")
    assert asset.headers["X-Content-Type-Options"] == "nosniff"


# -- no version banner ----------------------------------------------------------------------------------


def test_no_version_banner(http: requests.Session, anonymous: requests.Session, site: int) -> None:
    version = pygeoapi.__version__
    answers = [
        http.get(f"/collections/sites/items/{site}"),
        http.get("/collections/sites/items", params={"f": "html"}),
        anonymous.get("/"),
        anonymous.get("/", params={"f": "html"}),
        anonymous.get("/conformance"),
        anonymous.get("/nulle-part"),
        anonymous.get("/collections/sites/items"),
        anonymous.get("/static/css/resorption.css"),
    ]
    for r in answers:
        assert "X-Powered-By" not in r.headers, r.url
        assert not re.search(r"\d", r.headers.get("Server", "")), r.headers["Server"]
        assert version not in str(r.headers), r.url
    assert version not in answers[3].text  # the page footer
    document = anonymous.get("/openapi", params={"f": "json"}).json()
    assert document["info"]["version"] == "1.0.0"  # our API's version, not pygeoapi's


# -- script data blocks cannot be escaped ------------------------------------------------------------


def test_a_name_cannot_close_the_map_data_block(http: requests.Session, hostile_site: int) -> None:
    for path, params in (
        (f"/collections/sites/items/{hostile_site}", {"f": "html"}),
        ("/collections/sites/items", {"f": "html", "id": hostile_site}),
    ):
        r = http.get(path, params=params)
        assert r.status_code == 200
        page = Inline(r.text)
        assert not page.found
        data = json.loads(page.data_blocks["map-data"])["features"]
        features = data if isinstance(data, list) else data.get("features", [data])
        assert [f["properties"]["title"] for f in features] == [HOSTILE_NAME]
        assert "<" not in page.data_blocks["map-data"]


def test_the_map_configuration_cannot_close_its_block() -> None:
    """/carte's configuration is written by tojson: any text stays data (here, rendered directly)."""
    app = Flask(__name__, template_folder=str(TEMPLATES_DIR))
    config = {"me": {"username": HOSTILE_NAME}, "styles": {}}
    with app.test_request_context("/carte"):
        text = render_template(
            "carte/page.html", root="", config=config, csrf_token="x", me={"username": "u"}
        )
    page = Inline(text)
    assert not page.found
    assert json.loads(page.data_blocks["carte-config"]) == config


# -- every page type works under the policy, in Chromium ---------------------------------------------


def _signed_in_page(pages: Pages, users: dict[str, TestUser]) -> Page:
    admin = users[ADMIN]
    return pages.open(admin.username, admin.token)


def _go(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    assert response.headers["content-security-policy"]


def test_items_page_under_the_policy(pages: Pages, screenshot, users: dict[str, TestUser]) -> None:
    page = _signed_in_page(pages, users)
    _go(page, "/collections/sites/items?f=html&limit=50&offset=50")
    expect(page.locator("#items-map.leaflet-container")).to_be_visible()
    page.wait_for_selector(".marker-cluster, .leaflet-marker-icon")
    expect(page.locator("#limits")).to_have_value("50")
    page.select_option("#limits", "100")  # static/js/pages.js: new size, back to the first page
    page.wait_for_url(re.compile(r"limit=100"))
    assert "offset" not in page.url
    page.wait_for_selector('head script[type="application/ld+json"]', state="attached")  # jsonld.js
    screenshot(page, "elements")
    assert not pages.console_errors


def test_item_page_under_the_policy(
    pages: Pages, screenshot, users: dict[str, TestUser], hostile_site: int
) -> None:
    page = _signed_in_page(pages, users)
    _go(page, f"/collections/sites/items/{hostile_site}?f=html")
    page.wait_for_selector("#items-map .leaflet-marker-icon")
    expect(page.locator("h1")).to_have_text(HOSTILE_NAME)
    assert page.evaluate("() => window.pwned") is None  # the name stayed data
    screenshot(page, "element")
    assert not pages.console_errors


def test_jobs_page_under_the_policy(pages: Pages, users: dict[str, TestUser]) -> None:
    page = _signed_in_page(pages, users)
    _go(page, "/jobs?f=html")
    page.select_option("#limits", "100")  # data-submit-on-change submits the form
    page.wait_for_url(re.compile(r"limit=100"))
    assert not pages.console_errors


def test_swagger_ui_under_the_policy(pages: Pages, screenshot, users: dict[str, TestUser]) -> None:
    page = _signed_in_page(pages, users)
    _go(page, "/openapi?f=html")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Résorption", timeout=30_000)
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    screenshot(page, "swagger")
    assert not pages.console_errors


@pytest.mark.parametrize(
    "path",
    [
        "/?f=html",
        "/collections?f=html",
        "/collections/sites?f=html",
        "/collections/sites/queryables?f=html",
        "/conformance?f=html",
        "/processes?f=html",
        "/processes/territory-statistics?f=html",
        "/connexion",
    ],
)
def test_other_pages_under_the_policy(pages: Pages, users: dict[str, TestUser], path: str) -> None:
    page = _signed_in_page(pages, users)
    _go(page, path)
    page.wait_for_load_state("networkidle")
    assert not pages.console_errors


def test_dashboard_and_map_under_the_policy(pages: Pages, screenshot, users: dict[str, TestUser]) -> None:
    page = _signed_in_page(pages, users)
    _go(page, "/tableau-de-bord/departement-33")
    page.wait_for_function("() => [...document.querySelectorAll('canvas')].some((c) => c.width > 0)")
    _go(page, "/carte")
    page.wait_for_function(
        "() => document.querySelector('#carte').dataset.sitesDrawn !== undefined", timeout=60_000
    )
    expect(page.locator("path.site-marker").first).to_be_attached()
    screenshot(page, "carte")
    assert not pages.console_errors


# A 1×1 transparent PNG: every tile of the test base map.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABXvMqGgAAAABJRU5ErkJggg=="
)


class _Tiles(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.asked.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def with_base_map(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[str]]]:
    """A second server of the app whose pages draw over a base map (a local tile server)."""
    tiles = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    tiles.asked = []  # type: ignore[attr-defined]
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    port = free_port()
    runtime = tmp_path_factory.mktemp("fond-de-carte")
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
        "RESORPTION_MAP_TILES_URL": f"http://localhost:{tiles.server_address[1]}/{{z}}/{{x}}/{{y}}.png",
        "RESORPTION_MAP_ATTRIBUTION": "Fond de carte des tests",
    }
    try:
        with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port) as url:
            yield url, tiles.asked  # type: ignore[attr-defined]
    finally:
        tiles.shutdown()
        tiles.server_close()


def test_maps_over_a_base_map_under_the_policy(
    pages: Pages, users: dict[str, TestUser], with_base_map: tuple[str, list[str]], site: int
) -> None:
    """The base map's host is the one other image source the policy allows; the extent map draws."""
    url, asked = with_base_map
    r = requests.get(f"{url}/", timeout=60)
    assert "img-src 'self' data: http://localhost:" in r.headers["Content-Security-Policy"]
    page = _signed_in_page(pages, users)
    _go(page, f"{url}/collections/sites?f=html")
    page.wait_for_selector("#collection-map .leaflet-interactive")  # the extent's rectangle
    page.wait_for_selector("#collection-map img.leaflet-tile-loaded")
    _go(page, f"{url}/collections/sites/items/{site}?f=html")
    page.wait_for_selector("#items-map img.leaflet-tile-loaded")
    expect(page.locator("#items-map .leaflet-control-attribution")).to_contain_text("Fond de carte des tests")
    assert asked, "aucune tuile du fond de carte n'a été demandée"
    assert not pages.console_errors


def test_the_policy_refuses_what_it_should(pages: Pages) -> None:
    """The check itself: an inline script in one of our pages is reported, and does not run."""
    page = pages.open()
    _go(page, "/connexion")
    page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                   document.body.appendChild(s); }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None
    assert any("script-src" in v for v in pages.csp_violations)
    pages.csp_violations.clear()  # seen: the fixture's own check must not fail this test
