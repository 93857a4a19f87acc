"""Copy the front-end files our pages use into `static/`, so that no page needs a CDN.

Run after `npm ci` in this folder (see README.md):

    cd plugins/resorption/web && npm ci && python -m resorption.web.vendor

It copies only the files the templates load (and each package's licence)
from `node_modules/` into `static/vendor/<package>/`, dropping npm's `dist/`
prefix so that a stylesheet keeps its relative `images/` beside it. It also
makes the glyphs of map labels from the DSFR's Marianne (`resorption.glyphs`), and copies the few
static files of the installed pygeoapi that its templates and
ours still reference. The copied files are committed; `node_modules/` is not.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import pygeoapi

from resorption import glyphs
from resorption.web import STATIC_DIR, WEB_DIR

NODE_MODULES = WEB_DIR / "node_modules"
VENDOR_DIR = STATIC_DIR / "vendor"

# npm package → the files taken from it, relative to the package folder.
VENDORED: Mapping[str, tuple[str, ...]] = {
    # The State's design system: its stylesheet (plus every font and icon it names, found by
    # `_stylesheet_assets`), its script (a file: the CSP forbids inline code), the favicons and
    # the three pictograms of the display-settings dialog (light, dark, system).
    "@gouvfr/dsfr": (
        "dist/dsfr.min.css",
        "dist/dsfr.module.min.js",
        "dist/dsfr.nomodule.min.js",
        "dist/favicon/favicon.svg",
        "dist/favicon/favicon.ico",
        "dist/favicon/apple-touch-icon.png",
        "dist/artwork/pictograms/environment/sun.svg",
        "dist/artwork/pictograms/environment/moon.svg",
        "dist/artwork/pictograms/system/system.svg",
        "LICENSE.md",
    ),
    "chart.js": ("dist/chart.umd.min.js", "LICENSE.md"),
    "leaflet": (
        "dist/leaflet.css",
        "dist/leaflet.js",
        "dist/images/layers.png",
        "dist/images/layers-2x.png",
        "dist/images/marker-icon.png",
        "dist/images/marker-icon-2x.png",
        "dist/images/marker-shadow.png",
        "LICENSE",
    ),
    "leaflet.markercluster": (
        "dist/MarkerCluster.css",
        "dist/MarkerCluster.Default.css",
        "dist/leaflet.markercluster.js",
        "MIT-LICENCE.txt",
    ),
    # The package ships no LICENSE file: its package.json states the licence (Beerware).
    "leaflet.vectorgrid": ("dist/Leaflet.VectorGrid.bundled.min.js", "package.json"),
    # For map developers and the tests' MapLibre page (tests/test_map_styles.py), not /carte.
    "maplibre-gl": ("dist/maplibre-gl.js", "dist/maplibre-gl.css", "LICENSE.txt"),
    "swagger-ui-dist": (
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "favicon-16x16.png",
        "favicon-32x32.png",
        "LICENSE",
        "NOTICE",
    ),
}

# The glyphs of map labels (SDF PBF ranges, `resorption.glyphs`) are made from the DSFR's Marianne, into
# static/vendor/glyphs/{fontstack}/{range}.pbf, served at /styles/glyphs/… (api/map_styles.py).
GLYPH_FONTS = "@gouvfr/dsfr/dist/fonts"
GLYPHS_DIR = VENDOR_DIR / "glyphs"

# Stylesheets whose `url(…)` files (fonts, icons) are copied with them, beside them.
STYLESHEETS_WITH_ASSETS = ("@gouvfr/dsfr/dist/dsfr.min.css",)

# Packages the tests use, copied under tests/vendor/ (never served): axe-core, the
# accessibility engine the Chromium tests inject into every page type.
TESTS_VENDOR_DIR = WEB_DIR.parents[2] / "tests" / "vendor"
TESTS_VENDORED: Mapping[str, tuple[str, ...]] = {
    "axe-core": ("axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"),
}

# pygeoapi's own static files, still referenced by its templates and ours.
PYGEOAPI_STATIC = ("css/default.css", "img/favicon.ico", "img/logo.png", "img/pygeoapi.png")


def _destination(package: str, relative: str, root: Path = VENDOR_DIR) -> Path:
    # "@gouvfr/dsfr" is served at /static/vendor/dsfr/ (no scope folder in our URLs).
    return root / package.split("/")[-1] / relative.removeprefix("dist/")


def _stylesheet_assets(stylesheet: Path) -> list[str]:
    """The relative files a stylesheet's `url(…)` names (fonts, icons), `data:` URIs left out."""
    found = re.findall(r"url\((['\"]?)([^'\")]+)\1\)", stylesheet.read_text(encoding="utf-8"))
    return sorted({url.split("?")[0].split("#")[0] for _, url in found if not url.startswith("data:")})


def _listed(node_modules: Path) -> dict[str, tuple[str, ...]]:
    """`VENDORED` plus the assets of the stylesheets that name some."""
    listed = {package: tuple(files) for package, files in VENDORED.items()}
    for stylesheet in STYLESHEETS_WITH_ASSETS:
        package = next(name for name in listed if stylesheet.startswith(name + "/"))
        relative = stylesheet.removeprefix(package + "/")
        folder = relative.rpartition("/")[0]
        path = node_modules / stylesheet
        if path.is_file():
            assets = tuple(f"{folder}/{asset}" for asset in _stylesheet_assets(path))
            listed[package] = listed[package] + assets
    return listed


def vendor(node_modules: Path = NODE_MODULES) -> list[Path]:
    """Replace `static/vendor/` by the listed npm files and refresh pygeoapi's; returns what was written."""
    listed = _listed(node_modules)
    missing = [
        f"{package}/{relative}"
        for package, files in [*listed.items(), *TESTS_VENDORED.items()]
        for relative in files
        if not (node_modules / package / relative).is_file()
    ]
    if missing:
        raise SystemExit(
            f"Fichiers absents de {node_modules} : {', '.join(missing)}. "
            f"Lancez d'abord `npm ci` dans {WEB_DIR}."
        )
    written: list[Path] = []
    for root, packages in ((VENDOR_DIR, listed), (TESTS_VENDOR_DIR, TESTS_VENDORED)):
        shutil.rmtree(root, ignore_errors=True)
        for package, files in packages.items():
            for relative in files:
                target = _destination(package, relative, root)
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(Path(shutil.copyfile(node_modules / package / relative, target)))
    written += glyphs.build(node_modules / GLYPH_FONTS, GLYPHS_DIR)
    pygeoapi_static = Path(pygeoapi.__file__).resolve().parent / "static"
    for relative in PYGEOAPI_STATIC:
        target = STATIC_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copyfile(pygeoapi_static / relative, target)))
    return written


def main() -> None:
    """Command-line entry: copy, then list what was written."""
    for path in vendor():
        print(path.relative_to(WEB_DIR.parents[2]))


if __name__ == "__main__":
    main()
