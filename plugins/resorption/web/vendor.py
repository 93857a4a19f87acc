"""Copy the front-end files our pages use into `static/`, so that no page needs a CDN.

Run after `npm ci` in this folder (see README.md):

    cd plugins/resorption/web && npm ci && python -m resorption.web.vendor

It copies only the files the templates load (and each package's licence)
from `node_modules/` into `static/vendor/<package>/`, dropping npm's `dist/`
prefix so that a stylesheet keeps its relative `images/` beside it. It also
copies the few static files of the installed pygeoapi that its templates and
ours still reference. The copied files are committed; `node_modules/` is not.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pygeoapi

from resorption.web import STATIC_DIR, WEB_DIR

NODE_MODULES = WEB_DIR / "node_modules"
VENDOR_DIR = STATIC_DIR / "vendor"

# npm package → the files taken from it, relative to the package folder.
VENDORED: Mapping[str, tuple[str, ...]] = {
    "bootstrap": ("dist/css/bootstrap.min.css", "LICENSE"),
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

# pygeoapi's own static files, still referenced by its templates and ours.
PYGEOAPI_STATIC = ("css/default.css", "img/favicon.ico", "img/logo.png", "img/pygeoapi.png")


def _destination(package: str, relative: str) -> Path:
    return VENDOR_DIR / package / relative.removeprefix("dist/")


def vendor(node_modules: Path = NODE_MODULES) -> list[Path]:
    """Replace `static/vendor/` by the listed npm files and refresh pygeoapi's; returns what was written."""
    missing = [
        f"{package}/{relative}"
        for package, files in VENDORED.items()
        for relative in files
        if not (node_modules / package / relative).is_file()
    ]
    if missing:
        raise SystemExit(
            f"Fichiers absents de {node_modules} : {', '.join(missing)}. "
            f"Lancez d'abord `npm ci` dans {WEB_DIR}."
        )
    shutil.rmtree(VENDOR_DIR, ignore_errors=True)
    written: list[Path] = []
    for package, files in VENDORED.items():
        for relative in files:
            target = _destination(package, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            written.append(Path(shutil.copyfile(node_modules / package / relative, target)))
    pygeoapi_static = Path(pygeoapi.__file__).resolve().parent / "static"
    for relative in PYGEOAPI_STATIC:
        target = STATIC_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copyfile(pygeoapi_static / relative, target)))
    return written


def main() -> None:
    """Command-line entry: copy, then list what was written."""
    for path in vendor():
        print(path.relative_to(WEB_DIR))


if __name__ == "__main__":
    main()
