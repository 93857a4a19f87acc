"""Open a Résorption QGIS project (.qgz) with QGIS, as a user would, and print what QGIS makes of it.

Debian's python3-qgis is importable only from Debian's Python, so `tests/test_qgis_project.py`
runs this file as a script:

    QT_QPA_PLATFORM=offscreen OAPIF_USERNAME=… OAPIF_PASSWORD=… \
        /usr/bin/python3 tests/clients/qgis_project_check.py PROJECT.qgz XMIN,YMIN,XMAX,YMAX

Like a user, it creates a Basic authentication configuration (username and API token) in
QGIS's authentication database, reads the project without loading its layers, attaches the
configuration to every layer (the layers come with an empty `authcfg`), then loads them. For
each layer it reports its validity, fields and aliases, renderer (type, attribute, categories
and their colours, data-defined size), visibility and how many features it reads: every feature,
or, for a layer drawn only when zoomed in (communes), those in the given CRS84 rectangle. It
prints one JSON document on stdout and judges nothing; it imports nothing of ours.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _auth_config() -> str:
    """A Basic authentication configuration with the user's username and token; its id."""
    from qgis.core import QgsApplication, QgsAuthMethodConfig

    manager = QgsApplication.authManager()
    manager.setMasterPassword("mot-de-passe-maitre-des-tests", True)
    config = QgsAuthMethodConfig()
    config.setName("Résorption")
    config.setMethod("Basic")
    config.setConfig("username", os.environ["OAPIF_USERNAME"])
    config.setConfig("password", os.environ["OAPIF_PASSWORD"])
    if not manager.storeAuthenticationConfig(config):
        raise SystemExit("QGIS n'a pas enregistré la configuration d'authentification")
    return config.id()


def _renderer(layer: Any) -> dict[str, Any]:
    from qgis.core import QgsSymbolLayer

    renderer = layer.renderer()
    out: dict[str, Any] = {"type": renderer.type() if renderer else None}
    if renderer is None:
        return out
    if renderer.type() == "categorizedSymbol":
        out["attribute"] = renderer.classAttribute()
        # Keep the copies alive: a symbol belongs to its category, freed with it.
        categories = renderer.categories()
        out["categories"] = [
            {"value": c.value(), "label": c.label(), "colour": c.symbol().color().name()} for c in categories
        ]
        symbol = categories[0].symbol()
        properties = symbol.symbolLayer(0).dataDefinedProperties()
        prop = properties.property(QgsSymbolLayer.PropertySize)
        out["size_expression"] = prop.expressionString() if prop.isActive() else None
        out["sizes"] = _sizes(out["size_expression"] or "")
    else:
        symbol = renderer.symbol()
        layer0 = symbol.symbolLayer(0)
        out["symbol"] = {
            "type": symbol.type(),
            "class": layer0.layerType(),
            "props": dict(layer0.properties()),
        }
    return out


def _sizes(expression: str) -> dict[str, Any]:
    """What QGIS computes from the size expression for a few populations (NULL: unknown)."""
    from qgis.core import QgsExpression

    populations = ["NULL", "1", "9", "10", "49", "50", "99", "100", "199", "200", "10000"]
    return {p: QgsExpression(expression.replace('"population_total"', p)).evaluate() for p in populations}


def _count(layer: Any, rectangle: list[float], zoomed_only: bool) -> int:
    from qgis.core import QgsFeatureRequest, QgsRectangle

    request = QgsFeatureRequest()
    if zoomed_only:
        request.setFilterRect(QgsRectangle(*rectangle))
    request.setNoAttributes()
    return sum(1 for _ in layer.getFeatures(request))


def main(argv: list[str]) -> int:
    """Read the project, attach the credentials, load and describe every layer."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, rectangle = argv[1], [float(v) for v in argv[2].split(",")]

    from qgis.core import (
        Qgis,
        QgsApplication,
        QgsDataProvider,
        QgsDataSourceUri,
        QgsProject,
        QgsWkbTypes,
    )

    app = QgsApplication([], False)
    app.initQgis()
    authcfg = _auth_config()
    project = QgsProject.instance()
    if not project.read(path, QgsProject.FlagDontResolveLayers):
        raise SystemExit(f"QGIS ne lit pas le projet : {project.error()}")
    root = project.layerTreeRoot()
    layers = []
    for node in root.findLayers():
        layer = node.layer()
        uri = QgsDataSourceUri(layer.source())
        before = {"authcfg_in_project": uri.authConfigId(), "source": layer.source()}
        uri.setAuthConfigId(authcfg)
        layer.setDataSource(
            uri.uri(False), layer.name(), layer.providerType(), QgsDataProvider.ProviderOptions()
        )
        fields = [f.name() for f in layer.fields()]
        report: dict[str, Any] = {
            "id": layer.id(),
            "name": layer.name(),
            "provider": layer.providerType(),
            "valid": layer.isValid(),
            "visible": node.isVisible(),
            "scale_based": layer.hasScaleBasedVisibility(),
            **before,
        }
        if layer.isValid():
            report.update(
                {
                    "crs": layer.crs().authid(),
                    "wkb_type": QgsWkbTypes.displayString(layer.wkbType()),
                    "fields": fields,
                    "aliases": {name: layer.attributeAlias(i) for i, name in enumerate(fields)},
                    "renderer": _renderer(layer),
                    "features": _count(layer, rectangle, layer.hasScaleBasedVisibility()),
                    "errors": [str(e) for e in layer.dataProvider().errors()],
                }
            )
        layers.append(report)
    view = project.viewSettings().defaultViewExtent()
    json.dump(
        {
            "qgis_version": Qgis.QGIS_VERSION,
            "title": project.title(),
            "crs": project.crs().authid(),
            "view": {
                "crs": view.crs().authid(),
                "extent": [view.xMinimum(), view.yMinimum(), view.xMaximum(), view.yMaximum()],
            },
            "layers": layers,
        },
        sys.stdout,
        ensure_ascii=False,
    )
    sys.stdout.flush()
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
