"""A real browser for the suite: Debian's Chromium driven by Playwright, cut off from the internet.

Playwright never downloads a browser here: it drives `/usr/bin/chromium` (package `chromium`,
installed by `make test`). Every page runs in a context that lets requests reach the test
server only; any other request is aborted and recorded, and the test that caused it fails.
Every page also reports what its Content-Security-Policy blocked (the `securitypolicyviolation`
events and the console's "Content Security Policy" errors): a test whose pages hit the policy fails.
Screenshots land in `tests/output/screenshots/` (kept by CI as part of the test output).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("RESORPTION_TEST_OUTPUT", ROOT / "tests" / "output")) / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Run in every page before its own scripts: reports each violation of the page's CSP.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) =>
  window.reportCspViolation(`${e.violatedDirective} ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, without GPU or background network chatter."""
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield instance
        instance.close()


@dataclass
class Pages:
    """Opens pages as a given user (HTTP Basic with their token, or anonymous)."""

    browser: Browser
    base_url: str
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    _contexts: list = field(default_factory=list)

    def open(self, username: str | None = None, secret: str | None = None, locale: str = "fr-FR") -> Page:
        # Chromium sends Basic credentials only after a 401 challenge, and our HTML pages send
        # anonymous visitors to /connexion instead: the header goes with every request.
        headers = {}
        if username and secret:
            basic = base64.b64encode(f"{username}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        context = self.browser.new_context(
            base_url=self.base_url,
            extra_http_headers=headers,
            locale=locale,
            viewport={"width": 1400, "height": 900},
        )
        context.route("**/*", self._only_localhost)
        context.expose_binding("reportCspViolation", lambda _source, text: self.csp_violations.append(text))
        context.add_init_script(CSP_LISTENER)
        self._contexts.append(context)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def _only_localhost(self, route: Route) -> None:
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, base_url: str) -> Iterator[Pages]:
    """Page factory; the test fails if any page tried to reach beyond the test server."""
    opened = Pages(browser, base_url)
    yield opened
    opened.close()
    assert not opened.blocked, f"requêtes hors de localhost : {opened.blocked}"
    assert not opened.csp_violations, f"bloqué par la Content-Security-Policy : {opened.csp_violations}"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot named after the test: `screenshot(page, "carte")`."""

    def save(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{request.node.name}-{name}").strip("-")
        path = SCREENSHOTS / f"{stem}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
