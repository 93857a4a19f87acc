"""Load collections of an OGC API Features server with QGIS's own OAPIF provider; print what QGIS sees.

Debian's python3-qgis is importable only from Debian's Python, so `tests/test_qgis.py`
runs this file as a script:

    QT_QPA_PLATFORM=offscreen OAPIF_USERNAME=… OAPIF_PASSWORD=… \
        /usr/bin/python3 tests/clients/qgis_load.py URL PAGE_SIZE COLLECTION...

For each collection it opens the layer exactly as QGIS's "Add WFS / OGC API Features
layer" dialog does, with the basic authentication of that dialog (the layer URI's
username and password, taken from OAPIF_USERNAME and OAPIF_PASSWORD; no credentials
when they are unset), reads every feature (the provider pages through the server's
`next` links, `PAGE_SIZE` features at a time), reprojects each geometry to
Lambert-93 (EPSG:2154) with QGIS's own transformation, and prints one JSON document
on stdout, with every HTTP request QGIS made: its URL, the user of its Basic
`Authorization` header and the status and challenge of the answer. It judges nothing:
the test compares that document with our API and the database. It must not import
anything of ours: it runs outside the project's venv.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from typing import Any

TARGET_CRS = "EPSG:2154"


def _value(value: Any) -> Any:
    """A QGIS attribute value as plain JSON (NULL → None, dates → ISO 8601 text)."""
    from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime, QVariant

    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return None
    if isinstance(value, QDate | QDateTime | QTime):
        return value.toString(Qt.ISODate)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _geometry(geometry: Any, transform: Any) -> dict[str, Any]:
    """Type, Lambert-93 coordinates (points) or area and bounds (everything), as QGIS computes them."""
    from qgis.core import QgsGeometry, QgsWkbTypes

    if geometry is None or geometry.isNull():
        return {"type": None}
    projected = QgsGeometry(geometry)
    if projected.transform(transform) != 0:
        return {"type": QgsWkbTypes.displayString(geometry.wkbType()), "transform_failed": True}
    box = projected.boundingBox()
    out: dict[str, Any] = {
        "type": QgsWkbTypes.displayString(projected.wkbType()),
        "area": projected.area(),
        "parts": projected.constGet().partCount(),
        "bounds": [box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()],
    }
    if QgsWkbTypes.flatType(projected.wkbType()) == QgsWkbTypes.Point:
        point = projected.asPoint()
        out["xy"] = [point.x(), point.y()]
    return out


class Exchanges:
    """Every request QGIS's network manager sends (from any thread) and the answer it gets."""

    def __init__(self) -> None:
        self._by_id: dict[int, dict[str, Any]] = {}
        self.messages: list[str] = []

    def clear(self) -> None:
        self._by_id.clear()
        self.messages.clear()

    def logged(self, message: str, tag: str, level: Any) -> None:
        """What QGIS writes to its message log (where the provider explains a failure)."""
        self.messages.append(f"{tag}: {message}")

    def requested(self, params: Any) -> None:
        request = params.request()
        self._by_id[params.requestId()] = {
            "url": request.url().toString(),
            "user": _basic_user(bytes(request.rawHeader(b"Authorization"))),
            "status": None,
            "challenge": None,
        }

    def answered(self, reply: Any) -> None:
        exchange = self._by_id.get(reply.requestId())
        if exchange is not None:
            status = reply.attribute(_status_attribute())
            exchange["status"] = status if isinstance(status, int) else None
            challenge = bytes(reply.rawHeader(b"WWW-Authenticate"))
            # HTTP header values are ISO 8859-1 on the wire.
            exchange["challenge"] = challenge.decode("latin-1") if challenge else None

    def report(self) -> list[dict[str, Any]]:
        return list(self._by_id.values())


def _status_attribute() -> Any:
    from qgis.PyQt.QtNetwork import QNetworkRequest

    return QNetworkRequest.HttpStatusCodeAttribute


def _basic_user(header: bytes) -> str | None:
    """The user name of a Basic `Authorization` header; `""` for another scheme, None without one."""
    if not header:
        return None
    scheme, _, encoded = header.partition(b" ")
    if scheme.lower() != b"basic":
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def load(base_url: str, page_size: int, collection: str, exchanges: Exchanges) -> dict[str, Any]:
    """Open one collection as an OAPIF layer and read all of it."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsDataSourceUri,
        QgsProject,
        QgsVectorLayer,
        QgsWkbTypes,
    )
    from qgis.PyQt.QtCore import QCoreApplication

    uri = QgsDataSourceUri()
    uri.setParam("url", base_url)
    uri.setParam("typename", collection)
    uri.setParam("pageSize", str(page_size))
    uri.setParam("hideDownloadProgressDialog", "1")  # no GUI to show it in
    shown = QgsDataSourceUri(uri)
    if os.environ.get("OAPIF_USERNAME"):
        # The dialog's "Basic" authentication tab: QGIS sends it with every request.
        uri.setUsername(os.environ["OAPIF_USERNAME"])
        uri.setPassword(os.environ.get("OAPIF_PASSWORD", ""))
        shown.setUsername(os.environ["OAPIF_USERNAME"])
        shown.setPassword("***")
    exchanges.clear()
    layer = QgsVectorLayer(uri.uri(False), collection, "OAPIF")
    result: dict[str, Any] = {"uri": shown.uri(False), "valid": layer.isValid()}
    if not layer.isValid():
        QCoreApplication.processEvents()
        result["error"] = layer.dataProvider().error().message() if layer.dataProvider() else ""
        result["requests"] = exchanges.report()
        result["log"] = list(exchanges.messages)
        return result

    transform = QgsCoordinateTransform(
        layer.crs(), QgsCoordinateReferenceSystem(TARGET_CRS), QgsProject.instance()
    )
    names = [field.name() for field in layer.fields()]
    features = []
    for feature in layer.getFeatures():
        features.append(
            {
                "attributes": {n: _value(v) for n, v in zip(names, feature.attributes(), strict=True)},
                "geometry": _geometry(feature.geometry(), transform),
            }
        )
    # Requests made by the download thread are announced to the main thread's manager
    # through queued signals: let them arrive before reporting.
    QCoreApplication.processEvents()
    result.update(
        {
            "crs": layer.crs().authid(),
            "wkb_type": QgsWkbTypes.displayString(layer.wkbType()),
            "provider_feature_count": layer.dataProvider().featureCount(),
            "fields": [{"name": f.name(), "type": f.typeName()} for f in layer.fields()],
            "features": features,
            "errors": [str(e) for e in layer.dataProvider().errors()],
            "requests": exchanges.report(),
            "log": list(exchanges.messages),
        }
    )
    return result


def main(argv: list[str]) -> int:
    """Initialise QGIS without a GUI, load each collection, print the JSON report."""
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, page_size, collections = argv[1], int(argv[2]), argv[3:]

    from qgis.core import (
        Qgis,
        QgsApplication,
        QgsNetworkAccessManager,
        QgsNetworkReplyContent,
        QgsNetworkRequestParameters,
    )

    app = QgsApplication([], False)
    app.initQgis()
    exchanges = Exchanges()
    manager = QgsNetworkAccessManager.instance()
    manager.requestAboutToBeCreated[QgsNetworkRequestParameters].connect(exchanges.requested)
    manager.finished[QgsNetworkReplyContent].connect(exchanges.answered)
    QgsApplication.messageLog().messageReceived.connect(exchanges.logged)
    report = {
        "qgis_version": Qgis.QGIS_VERSION,
        "collections": {c: load(base_url, page_size, c, exchanges) for c in collections},
    }
    json.dump(report, sys.stdout, ensure_ascii=False)
    sys.stdout.flush()
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
