"""What every response says besides its body: security headers, caching, and no version banner.

- **Content-Security-Policy.** Scripts, styles, fonts and data come from our own origin
  only: no inline script, no inline event handler, no `eval` (the templates load their
  code from `/static/js/` and pass it data in `<script type="application/json">` blocks or
  `data-` attributes); images may also be `data:` URIs (Leaflet's and Swagger UI's icons)
  and tiles of the configured base map (`RESORPTION_MAP_TILES_URL`), the only other host
  a page may reach. `frame-ancestors 'none'` (and `X-Frame-Options: DENY` for older
  browsers) keeps every page out of another site's frames (clickjacking of the edit
  buttons); `form-action 'self'` and `base-uri 'none'` keep an injected tag from sending a
  form or the page's links elsewhere. One page only has another policy, stricter: a received
  e-mail shown on the demo's /courriels (`SANDBOXED_CSP`: nothing runs, its inline styles apply).
- `X-Content-Type-Options: nosniff`: a JSON or CSV answer holding a site's name is never
  run as a script or a page. `Referrer-Policy: same-origin`: addresses carry filters (a
  CQL2 expression may name a site or a person) and leave the site in no `Referer`.
  `Cross-Origin-Opener-Policy: same-origin`: a page opened from another site cannot keep a
  handle on ours. `Strict-Transport-Security` when the public URL is https.
- **Caching.** A response computed for a signed-in caller (JSON, GeoJSON, CSV, tiles,
  downloads, HTML pages showing their name) is `Cache-Control: private, no-store`: no
  proxy and no browser disk keeps data a person was allowed to read once. Every dynamic
  response varies on `Authorization` and `Cookie`. Anonymous answers (open data,
  territories) keep their own caching; static assets are public.
- **No banner.** pygeoapi names itself and its version in `X-Powered-By`; the header goes
  (and the page footer names no version). gunicorn's `Server: gunicorn` has no version.
"""

from __future__ import annotations

import urllib.parse

from flask import Response
from werkzeug.datastructures import Headers

from resorption.identity import Principal

# Directives of every response; `img-src` gains the base map's host when one is configured.
CSP_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# The policy of a page that is a received e-mail (the HTML part of a message on /courriels):
# nothing loads or runs (no script, not even ours; a sandbox without permissions; no form, no
# frame), but the message's own inline styles apply, as in a mail client.
SANDBOXED_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)
PRIVATE = "private, no-store"
VARY = ("Authorization", "Cookie")
BANNERS = ("X-Powered-By",)
HSTS = "max-age=31536000"


def content_security_policy(map_tiles_url: str | None = None) -> str:
    """The CSP header's value; `map_tiles_url` is the base map's URL template, if any."""
    directives = dict(CSP_DIRECTIVES)
    tiles = tile_source(map_tiles_url)
    if tiles:
        directives["img-src"] += f" {tiles}"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def tile_source(url: str | None) -> str | None:
    """The CSP source of a tile URL template: its scheme and host (`{s}.` becomes `*.`)."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


class ResponseHeaders:
    """Adds the headers above to a response; built once per app."""

    def __init__(self, public_url: str, map_tiles_url: str | None) -> None:
        self.security = {
            "Content-Security-Policy": content_security_policy(map_tiles_url),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if public_url.startswith("https://"):
            self.security["Strict-Transport-Security"] = HSTS
        # The headers a response loses (lower case), as it is static, anonymous or private.
        replaced = {name.lower() for name in (*BANNERS, *self.security)}
        self._dropped = {
            "static": frozenset(replaced),
            "anonymous": frozenset(replaced | {"vary"}),
            "private": frozenset(replaced | {"vary", "cache-control", "expires"}),
        }

    def apply(self, response: Response, principal: Principal, static: bool) -> Response:
        """Set the security headers; mark a signed-in caller's answer private and unstored.

        In one pass over the response's headers, into a new list: werkzeug's `Headers.set`
        scans the whole list for each header it sets (a tenth of a small answer's time)."""
        kind = "static" if static else "anonymous" if principal.is_anonymous else "private"
        dropped = self._dropped[kind]
        kept: list[tuple[str, str]] = []
        vary: list[str] = []
        sandboxed = False
        for name, value in response.headers.items():
            key = name.lower()
            if key not in dropped:
                kept.append((name, value))
            elif key == "vary":
                vary.extend(v.strip() for v in value.split(",") if v.strip())
            elif key == "content-security-policy":
                sandboxed = value == SANDBOXED_CSP
        security = self.security
        if sandboxed:  # the one other policy a view may choose, stricter than the site's
            security = {**security, "Content-Security-Policy": SANDBOXED_CSP}
        kept.extend(security.items())
        if kind != "static":
            present = {v.lower() for v in vary}
            vary.extend(name for name in VARY if name.lower() not in present)
            kept.append(("Vary", ", ".join(vary)))
        if kind == "private":
            kept.append(("Cache-Control", PRIVATE))
        response.headers = Headers(kept)
        return response
