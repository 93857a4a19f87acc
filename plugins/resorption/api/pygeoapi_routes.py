"""The routes pygeoapi answers, served with the pygeoapi `API` object of the app that got the request.

pygeoapi's own Flask module builds one `API` object, from environment variables, when it is
imported: a process could then hold one configuration only, and building an app meant
writing files and changing the environment. These are its routes (those we publish: landing
page, OpenAPI, conformance, collections, schemas, items and queryables, processes and
jobs), each calling pygeoapi's function with `current_app.extensions["pygeoapi"]`, the `API`
object `create_app` built from its own settings. Our own faces answer the items, the
queryables and the tiles before these views are reached (the app's `before_request`, the
tiles blueprint). The blueprint keeps pygeoapi's name, so endpoints read `pygeoapi.<view>`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
from flask import Blueprint, Response, current_app, make_response, request
from pygeoapi.api import API, APIRequest, apply_gzip

NAME = "pygeoapi"


def pygeoapi_api() -> API:
    """The pygeoapi `API` object of the running app."""
    return current_app.extensions[NAME]


def run(function: Callable[..., tuple[dict, int, Any]], *args: Any, check_format: bool = True) -> Response:
    """Call one of pygeoapi's API functions for the running request (pygeoapi's execute_from_flask)."""
    api = pygeoapi_api()
    api_request = APIRequest.from_flask(request, api.locales)
    if check_format and not api_request.is_valid():
        headers, status, content = api.get_format_exception(api_request)
    else:
        headers, status, content = function(api, api_request, *args)
        if isinstance(content, str | bytes):  # not a file sent part by part (processes.job_files)
            content = apply_gzip(headers, content)
    response = make_response(content, status)
    if headers:
        response.headers = headers
    return response


def blueprint(static_folder: Path) -> Blueprint:
    """pygeoapi's routes that we publish, with our static files under /static."""
    bp = Blueprint(NAME, __name__, static_folder=str(static_folder))

    def landing_page() -> Response:
        return run(core_api.landing_page)

    def openapi() -> Response:
        return run(core_api.openapi_)

    def conformance() -> Response:
        return run(core_api.conformance)

    def asyncapi() -> Response:
        response = run(core_api.asyncapi_)
        if response.headers.get("Content-Type") == "text/html":  # French, not Latin-1
            response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    def collections(collection_id: str | None = None) -> Response:
        return run(core_api.describe_collections, collection_id)

    def collection_schema(collection_id: str) -> Response:
        return run(core_api.get_collection_schema, collection_id)

    def collection_queryables(collection_id: str) -> Response:
        return run(itemtypes_api.get_collection_queryables, collection_id)

    def collection_items(collection_id: str, item_id: str | None = None) -> Response:
        # Every collection we publish is answered before this view (app._route); pygeoapi's
        # reading of the items is the fallback for one the catalog would not know.
        if item_id is None:
            return run(itemtypes_api.get_collection_items, collection_id, check_format=False)
        return run(itemtypes_api.get_collection_item, collection_id, item_id)

    def get_processes(process_id: str | None = None) -> Response:
        return run(processes_api.describe_processes, process_id)

    def execute_process_jobs(process_id: str) -> Response:
        return run(processes_api.execute_process, process_id)

    def get_jobs(job_id: str | None = None) -> Response:
        if job_id is not None and request.method == "DELETE":
            return run(processes_api.delete_job, job_id)
        return run(processes_api.get_jobs, job_id)

    def get_job_result(job_id: str) -> Response:
        return run(processes_api.get_job_result, job_id)

    rules: list[tuple[str, Callable[..., Response], list[str]]] = [
        ("/", landing_page, ["GET"]),
        ("/openapi", openapi, ["GET"]),
        ("/conformance", conformance, ["GET"]),
        ("/asyncapi", asyncapi, ["GET"]),
        ("/collections", collections, ["GET"]),
        ("/collections/<path:collection_id>", collections, ["GET"]),
        ("/collections/<path:collection_id>/schema", collection_schema, ["GET"]),
        ("/collections/<path:collection_id>/queryables", collection_queryables, ["GET"]),
        ("/collections/<path:collection_id>/items", collection_items, ["GET", "POST", "OPTIONS"]),
        (
            "/collections/<path:collection_id>/items/<path:item_id>",
            collection_items,
            ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"],
        ),
        ("/processes", get_processes, ["GET"]),
        ("/processes/<process_id>", get_processes, ["GET"]),
        ("/processes/<process_id>/execution", execute_process_jobs, ["POST"]),
        ("/jobs", get_jobs, ["GET"]),
        ("/jobs/<job_id>", get_jobs, ["GET", "DELETE"]),
        ("/jobs/<job_id>/results", get_job_result, ["GET"]),
    ]
    for rule, view, methods in rules:
        # The items answer OPTIONS themselves (the methods the caller may use: app._route).
        automatic = "OPTIONS" not in methods
        bp.add_url_rule(rule, view_func=view, methods=methods, provide_automatic_options=automatic)
    return bp
