"""The Flask application around pygeoapi: `create_app(settings)`.

It validates our configuration, gives pygeoapi a configuration enriched from
the catalog, mounts pygeoapi's blueprint, answers feature requests of our
collections itself (`features_api`) and renders every error as an OGC
exception in French. Nothing happens at import time.
"""

from __future__ import annotations

import logging
import os
import tempfile
from http import HTTPStatus
from pathlib import Path
from typing import Any

import orjson
import yaml
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from resorption import features_api, queryables
from resorption import settings as app_settings
from resorption.catalog import Collection, load_catalog
from resorption.errors import ConfigurationError, NotFound, ResorptionError
from resorption.identity import ANONYMOUS, set_principal
from resorption.pygeoapi_config import build_config, write_openapi

LOGGER = logging.getLogger(__name__)


def create_app(settings: app_settings.Settings | None = None) -> Flask:
    """Build the WSGI application; raises ConfigurationError with a clear message."""
    settings = settings or app_settings.Settings.from_env()
    app_settings.configure(settings)
    catalog = load_catalog(settings.collections_dir)

    runtime = Path(
        os.environ.get("RESORPTION_RUNTIME_DIR") or tempfile.mkdtemp(prefix="resorption-")
    )
    runtime.mkdir(parents=True, exist_ok=True)
    config = build_config(settings, catalog)
    config_path = runtime / "pygeoapi-config.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(write_openapi(config, runtime / "openapi.json"))

    # pygeoapi builds its API object when its Flask module is imported.
    from pygeoapi import flask_app as pygeoapi_flask

    api = pygeoapi_flask.api_
    app = Flask(__name__, static_folder=None)
    app.url_map.strict_slashes = False
    app.register_blueprint(pygeoapi_flask.BLUEPRINT)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    @app.before_request
    def authenticate_and_route() -> Response | None:
        set_principal(ANONYMOUS)
        if request.endpoint == "pygeoapi.collection_queryables" and request.method == "GET":
            collection_id = (request.view_args or {}).get("collection_id", "")
            return queryables.queryables(api, request, catalog, collection_id)
        collection = _our_collection(catalog)
        if collection is None or request.method != "GET":
            return None
        if request.endpoint != "pygeoapi.collection_items":
            return None
        item_id = (request.view_args or {}).get("item_id")
        if item_id is None:
            return features_api.items(api, request, collection)
        return features_api.item(api, request, collection, item_id)

    @app.errorhandler(ResorptionError)
    def ogc_error(exc: ResorptionError) -> Response:
        if exc.status >= 500:
            LOGGER.error("%s", exc.message, exc_info=exc)
        return ogc_exception(exc.status, exc.ogc_code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == HTTPStatus.NOT_FOUND:
            return ogc_exception(HTTPStatus.NOT_FOUND, "NotFound", "Cette adresse n'existe pas.")
        if exc.code == HTTPStatus.METHOD_NOT_ALLOWED:
            return ogc_exception(exc.code, "InvalidRequest", "Méthode HTTP non permise ici.")
        return ogc_exception(
            exc.code or 500, "InvalidRequest", exc.description or "Requête invalide."
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        LOGGER.exception("unexpected error on %s %s", request.method, request.path)
        return ogc_exception(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "NoApplicableCode",
            "Erreur interne du serveur : l'équipe technique a été prévenue.",
        )

    app.config["RESORPTION_SETTINGS"] = settings
    return app


def _our_collection(catalog: dict[str, Collection] | Any) -> Collection | None:
    """The catalog collection named in the request path, if any."""
    collection_id = (request.view_args or {}).get("collection_id")
    if collection_id is None:
        return None
    collection = catalog.get(collection_id)
    if collection is None and request.endpoint == "pygeoapi.collection_items":
        raise NotFound(f"La collection « {collection_id} » n'existe pas.")
    return collection


def ogc_exception(status: int, code: str, description: str) -> Response:
    """An OGC API exception document (JSON) with the given status."""
    body = orjson.dumps({"code": code, "type": code, "description": description})
    return Response(body, status=status, content_type="application/json")


def wsgi() -> Flask:
    """Entry point for gunicorn: `gunicorn 'resorption.app:wsgi()'`."""
    try:
        return create_app()
    except ConfigurationError as exc:
        raise SystemExit(f"Configuration invalide : {exc.message}") from exc
