"""The web face: what our HTML pages need beyond pygeoapi's templates.

`static/` is the folder pygeoapi serves at `/static`: pygeoapi's own few files
and the front-end libraries vendored from npm (`vendor.py` copies them, no
CDN); `display.py` turns a feature's properties into the labelled, grouped
rows the item and items pages show. The templates themselves live in
`resorption/templates/`, where pygeoapi looks first.
"""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR.parent / "templates"
