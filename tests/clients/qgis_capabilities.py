"""What Debian's QGIS can do with our endpoints: edit an OAPIF layer? read our MapLibre style?

Run by `tests/test_qgis_capabilities.py` with Debian's Python (python3-qgis is not in the venv):

    QT_QPA_PLATFORM=offscreen OAPIF_USERNAME=… OAPIF_PASSWORD=… \
        /usr/bin/python3 tests/clients/qgis_capabilities.py URL STYLE_COLLECTION PNG

It prints one JSON document: QGIS's version; the editing capabilities its OAPIF provider
reports for the sites layer (as the QGIS "Toggle editing" button reads them); and, for the
public style of STYLE_COLLECTION (`/collections/{id}/styles/default`), what QGIS's MapLibre
style converter made of it (its styles, their layer and colour), plus a picture of the vector
tile layer drawn with that style, saved to PNG. It judges nothing and imports nothing of ours.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any


def oapif_capabilities(url: str) -> dict[str, Any]:
    from qgis.core import QgsVectorDataProvider, QgsVectorLayer

    uri = f"url='{url}' typename='sites' restrictToRequestBBOX='0'"
    if os.environ.get("OAPIF_USERNAME"):
        uri += f" username='{os.environ['OAPIF_USERNAME']}' password='{os.environ['OAPIF_PASSWORD']}'"
    layer = QgsVectorLayer(uri, "sites", "OAPIF")
    caps = layer.dataProvider().capabilities() if layer.isValid() else 0
    names = ("AddFeatures", "DeleteFeatures", "ChangeAttributeValues", "ChangeGeometries")
    return {
        "valid": layer.isValid(),
        "features": layer.featureCount(),
        **{name: bool(caps & getattr(QgsVectorDataProvider, name)) for name in names},
    }


def style_rendering(url: str, collection: str, png: str) -> dict[str, Any]:
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsMapBoxGlStyleConversionContext,
        QgsMapBoxGlStyleConverter,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsRectangle,
        QgsVectorTileLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    with urllib.request.urlopen(f"{url}/collections/{collection}/styles/default", timeout=60) as r:
        style = json.loads(r.read())
    with urllib.request.urlopen(style["sources"][collection]["url"], timeout=60) as r:
        tilejson = json.loads(r.read())
    converter = QgsMapBoxGlStyleConverter()
    result = converter.convert(style, QgsMapBoxGlStyleConversionContext())
    renderer = converter.renderer()
    styles = [
        {
            "layer": s.layerName(),
            "name": s.styleName(),
            "colour": s.symbol().color().name() if s.symbol() else None,
        }
        for s in (renderer.styles() if renderer else [])
    ]
    template = tilejson["tiles"][0]
    layer = QgsVectorTileLayer(
        f"type=xyz&url={template}&zmin={tilejson['minzoom']}&zmax={tilejson['maxzoom']}", collection
    )
    drawn = 0
    if layer.isValid() and renderer is not None:
        layer.setRenderer(renderer)
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
        # Nouvelle-Aquitaine, in Web Mercator metres: départements at zoom 6–7.
        settings.setExtent(QgsRectangle(-200_000, 5_300_000, 300_000, 5_800_000))
        settings.setOutputSize(QSize(600, 600))
        settings.setBackgroundColor(QColor("white"))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        image = job.renderedImage()
        image.save(png)
        # Outlines are grey, the style's background nearly white: count the dark pixels.
        drawn = sum(image.pixelColor(x, y).red() < 200 for x in range(600) for y in range(0, 600, 2))
    return {
        "converted": int(result) == 0,
        "warnings": list(converter.warnings()),
        "styles": styles,
        "tile_layer_valid": layer.isValid(),
        "dark_pixels": drawn,
    }


def main() -> None:
    url, collection, png = sys.argv[1], sys.argv[2], sys.argv[3]
    from qgis.core import Qgis, QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    report = {
        "version": Qgis.QGIS_VERSION_INT,
        "oapif": oapif_capabilities(url),
        "style": style_rendering(url, collection, png),
    }
    print(json.dumps(report))
    app.exitQgis()


if __name__ == "__main__":
    main()
