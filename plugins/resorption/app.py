"""The Flask application around pygeoapi: `create_app(settings)`.

It validates our configuration, gives pygeoapi a configuration enriched from
the catalog, mounts pygeoapi's blueprint, answers feature requests of our
collections itself (`api/features.py`) and renders every error as an OGC
exception in French. Nothing happens at import time.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
import pygeoapi.api as core_api
from flask import Flask, Response, render_template, request
from pygeoapi.api import API, APIRequest, apply_gzip
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from resorption import audit, forgery, replicas, request_log, response_headers, sealing, serving_worker
from resorption import settings as app_settings
from resorption.api import (
    asyncapi,
    conformance,
    events,
    features,
    features_write,
    functions,
    map_styles,
    opendata,
    operations,
    pygeoapi_routes,
    queryables,
    tiles,
)
from resorption.api import attachments as attachments_api
from resorption.api.pygeoapi_config import build_config, build_openapi_document
from resorption.authentication import PrincipalChanged
from resorption.caller import Caller, current_settings
from resorption.catalog import Collection, load_catalog
from resorption.database import defer, settle
from resorption.editing import Mode
from resorption.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    InvalidParameter,
    NotFound,
    ResorptionError,
    Unauthorized,
    exception_document,
)
from resorption.identity import ANONYMOUS, Principal, current_principal, set_principal
from resorption.limits import body_too_large, check_json_depth
from resorption.policy import Policy, load_policy
from resorption.processes import callbacks, downloads
from resorption.web import STATIC_DIR, sessions, site_forms, webmap
from resorption.web.accounts import blueprint as accounts_blueprint
from resorption.web.action_dashboard import blueprint as action_dashboard_blueprint
from resorption.web.action_pages import blueprint as action_pages_blueprint
from resorption.web.action_results import blueprint as action_results_blueprint
from resorption.web.activity import blueprint as activity_blueprint
from resorption.web.dashboard import blueprint as dashboard_blueprint
from resorption.web.dashboard import render
from resorption.web.mail_page import blueprint as mail_page_blueprint
from resorption.web.navigation import install as install_navigation
from resorption.web.public_pages import blueprint as public_pages_blueprint
from resorption.web.qgis_download import blueprint as qgis_blueprint

LOGGER = logging.getLogger(__name__)
INTERNAL_ERROR = "Erreur interne du serveur : l'équipe technique a été prévenue."
# What a person reads on the HTML errors of pygeoapi's own pages, by status.
PYGEOAPI_ERRORS = {
    400: "La requête n'est pas valide : vérifiez les paramètres de l'adresse.",
    404: "Cette ressource n'existe pas, ou vous n'y avez pas accès.",
    405: "Cette action n'est pas permise ici.",
}


class _Flask(Flask):
    """Flask, remembering whether each hook and view is a coroutine function: Flask asks
    `inspect.iscoroutinefunction` of each of them on every request (eight hooks each time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Any, Any] = {}

    def ensure_sync(self, func: Any) -> Any:
        try:
            return self._synced[func]
        except KeyError:
            pass
        except TypeError:  # not hashable: asked each time, as Flask does
            return super().ensure_sync(func)
        synced = super().ensure_sync(func)
        if len(self._synced) >= 1024:  # (bound methods of ever new objects would pile up)
            self._synced.clear()
        self._synced[func] = synced
        return synced


def create_app(settings: app_settings.Settings | None = None) -> Flask:
    """Build the WSGI application; raises ConfigurationError with a clear message."""
    settings = settings or app_settings.Settings.from_env()
    catalog = load_catalog(settings.collections_dir)
    policy = load_policy(settings.policy_path, settings.collections_dir)

    app = _Flask(__name__, static_folder=None)
    app.url_map.strict_slashes = False
    app.config["RESORPTION_SETTINGS"] = settings
    request_log.install(app)  # request id, metrics and the request's log line, around everything
    config = build_config(settings, catalog)
    with app.app_context():  # the OpenAPI document asks our providers for their fields
        api = API(config, build_openapi_document(config, catalog))
    # OGC API – Publish-Subscribe discovery: the AsyncAPI document (/asyncapi, also rendered by
    # our template from the configuration) and the broker's link on the landing page.
    api.asyncapi = asyncapi.document(settings, catalog, policy)
    api.tpl_config["asyncapi"] = api.asyncapi
    api.pubsub_client = asyncapi.BrokerLink(asyncapi.mqtt_public_url())
    app.extensions[pygeoapi_routes.NAME] = api
    app.register_blueprint(operations.blueprint)  # /sante, /pret, /metrics
    conformance.register()
    app.register_blueprint(map_styles.create_blueprint())  # TileJSON and styles, before pygeoapi's
    tiles.register(app)  # before pygeoapi's routes: our tile routes win the URL match
    app.register_blueprint(attachments_api.blueprint)  # …and the attachments of items too
    app.register_blueprint(events.blueprint)  # GET /events, /collections/{id}/events (SSE)
    app.register_blueprint(pygeoapi_routes.blueprint(STATIC_DIR))
    app.register_blueprint(dashboard_blueprint(api))
    app.register_blueprint(action_dashboard_blueprint(api))
    app.register_blueprint(action_results_blueprint(api))
    app.register_blueprint(activity_blueprint(api))
    app.register_blueprint(action_pages_blueprint(api))
    app.register_blueprint(accounts_blueprint(api))  # /demande-acces, /administration/…, /mon-compte
    app.register_blueprint(mail_page_blueprint(api))  # /courriels (demo and tests only)
    app.register_blueprint(public_pages_blueprint(api))  # open data, accessibility, legal notice
    install_navigation()  # the navigation bar of every page knows who is signed in
    app.register_blueprint(sessions.blueprint)
    app.register_blueprint(webmap.blueprint)
    app.register_blueprint(qgis_blueprint)  # GET /qgis/projet.qgz
    app.register_blueprint(site_forms.blueprint)  # /carte/sites/nouveau, confirmation
    app.register_blueprint(functions.blueprint)  # GET /functions (S_DWITHIN)
    app.register_blueprint(opendata.blueprint)  # /donnees-ouvertes/: DCAT-AP catalogue and files
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # werkzeug stops reading any body (chunked ones included) and any form past this size.
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_body_bytes
    if settings.proxy_count:
        n = settings.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    base_map = config["server"].get("map", {}).get("url")
    headers = response_headers.ResponseHeaders(settings.public_url, base_map)

    @app.before_request
    def authenticate_and_route() -> Response | None:
        # A worker's thread keeps its context between requests: nobody is signed in until proven.
        set_principal(ANONYMOUS)
        # Where its reads may go: a replica for a request that only reads (resorption.replicas).
        sent = None
        if settings.replica_urls:  # (without replicas, no cookie to parse)
            sent = request.headers.get(replicas.HEADER) or request.cookies.get(replicas.COOKIE)
        if sent:
            # sealed: in clear, WAL positions would tell how much everyone wrote in between
            sent = sealing.unseal(sealing.secret(settings), sent)
        replicas.begin_request(_reads_may_lag(), sent)
        _check_body(settings.limits)
        _reject_nul_bytes()
        if _is_static() or request.endpoint in operations.ENDPOINTS:
            # Stylesheets and scripts are public: a browser re-sends its Basic credentials with
            # each of them, and checking a password (argon2) for every asset would be wasted time.
            # The operators' endpoints need no caller (and must answer with the database down).
            return None
        client = request.remote_addr or "inconnu"
        defer(None)  # a worker's thread keeps its context between requests
        audit.set_request(audit.RequestInfo(request.method, request.full_path.rstrip("?"), client))
        # Writes from another site's pages, and JSON bodies sent as forms, before any credential.
        forgery.check(request, settings)
        try:
            return authenticated_route(client, deferring=True)
        except PrincipalChanged:  # the token's user changed since this worker remembered it
            return authenticated_route(client, deferring=False)

    def authenticated_route(client: str, deferring: bool) -> Response | None:
        # The Authorization header, else the browser session cookie (CSRF-checked for writes).
        # With `defer`, a remembered token's check rides in the round trip of the first read
        # (database.Precheck) and is settled, at the latest, before anything is answered: a
        # refused token gets its 401 instead of whatever the request would have had.
        principal = sessions.principal_of_request(request, client, settings, defer=deferring)
        set_principal(principal)
        try:
            _guard(policy, catalog, principal)
            listing = request.endpoint == "pygeoapi.collections"
            if listing and not (request.view_args or {}).get("collection_id"):
                response = _collections_list(api, policy, catalog, principal)
            else:
                response = _route(api, catalog)
        except BaseException:
            settle(settings)
            raise
        settle(settings)  # before pygeoapi's views too (a None response lets them answer)
        return response

    @app.after_request
    def stream_without_the_turn(response: Response) -> Response:
        # A response that streams (SSE, exports, files) is written after its worker's turn is
        # given back: the worker serves its next request meanwhile (resorption.serving_worker).
        if response.is_streamed:
            serving_worker.leave_slot()
        return response

    @app.after_request
    def declare_charset(response: Response) -> Response:
        # pygeoapi's HTML pages say text/html without a charset; non-browser clients then misread French.
        if response.mimetype == "text/html" and "charset" not in response.headers.get("Content-Type", ""):
            response.headers["Content-Type"] = "text/html; charset=utf-8"
        return response

    @app.after_request
    def follow_own_writes(response: Response) -> Response:
        # After a write, the client's next reads wait for a replica to replay it (or go to the
        # primary): its position goes back in a cookie (browsers, QGIS) and a header (scripts).
        position = replicas.written()
        if position is not None:
            position = sealing.seal(sealing.secret(settings), position)
            response.headers[replicas.HEADER] = position
            response.set_cookie(
                replicas.COOKIE,
                position,
                max_age=replicas.COOKIE_SECONDS,
                **sessions.cookie_options(settings.public_url),
            )
        return response

    @app.after_request
    def pygeoapi_errors_as_our_page(response: Response) -> Response:
        # pygeoapi renders its HTML errors itself (exception.html) without their HTTP status and,
        # for some, in English or as a bare identifier: a person gets our page of that status.
        endpoint = request.endpoint or ""
        if (
            endpoint.startswith("pygeoapi.")
            and response.status_code >= 400
            # (pygeoapi sets the Content-Type header by hand: `mimetype` does not see it)
            and response.headers.get("Content-Type", "").startswith("text/html")
        ):
            return _html_error(
                api, response.status_code, PYGEOAPI_ERRORS.get(response.status_code, INTERNAL_ERROR)
            )
        return response

    # A file made by a process (an export) is downloaded under its name.
    app.after_request(downloads.as_attachment)

    @app.after_request
    def secure(response: Response) -> Response:
        # CSP, nosniff, frame-ancestors, Referrer-Policy; private, no-store for a signed-in caller.
        return headers.apply(response, current_principal(), _is_static())

    @app.errorhandler(ResorptionError)
    def ogc_error(exc: ResorptionError) -> Response:
        if isinstance(exc, DatabaseUnavailable):
            # An outage is one cause for many requests: one line each, without a stack.
            LOGGER.warning("database unavailable: %s", type(exc.__cause__ or exc).__name__)
            return _unavailable(exc, settings)
        if exc.status >= 500:
            LOGGER.error("%s", exc.message, exc_info=exc)
        if isinstance(exc, Unauthorized) and sessions.wants_html(request):
            # A browser goes to the sign-in form: a Basic challenge would make it keep credentials
            # that it then sends with any other site's requests.
            return sessions.sign_in_redirect(request)
        if _wants_html_error():
            return _html_error(api, exc.status, exc.message, exc.headers)
        response = ogc_exception(exc.status, exc.ogc_code, exc.message, exc.body)
        # A 401 carries the Basic challenge (QGIS and GDAL then ask for credentials), a 429 Retry-After.
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if isinstance(exc, RequestEntityTooLarge):  # a form or a body read past the limit
            return ogc_error(body_too_large(settings.limits))
        if exc.code == HTTPStatus.NOT_FOUND:
            if _wants_html_error():
                return _html_error(api, HTTPStatus.NOT_FOUND, "Cette adresse n'existe pas.")
            return ogc_exception(HTTPStatus.NOT_FOUND, "NotFound", "Cette adresse n'existe pas.")
        if isinstance(exc, MethodNotAllowed):
            response = ogc_exception(exc.code, "InvalidRequest", "Méthode HTTP non permise ici.")
            response.headers["Allow"] = ", ".join(exc.valid_methods or [])
            return response
        if (exc.code or 500) >= 500:
            LOGGER.error("HTTP %s on %s %s: %s", exc.code, request.method, request.path, exc.description)
            if _wants_html_error():
                return _html_error(api, exc.code or 500, INTERNAL_ERROR)
            return ogc_exception(exc.code or 500, "NoApplicableCode", INTERNAL_ERROR)
        # werkzeug's descriptions are English: a browser gets the French page of the status.
        if _wants_html_error():
            return _html_error(api, exc.code or 400, "La requête n'a pas pu être traitée.")
        return ogc_exception(exc.code or 400, "InvalidRequest", exc.description or "Requête invalide.")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        LOGGER.exception("unexpected error on %s %s", request.method, request.path)
        if _wants_html_error():
            return _html_error(api, HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
        return ogc_exception(HTTPStatus.INTERNAL_SERVER_ERROR, "NoApplicableCode", INTERNAL_ERROR)

    return app


# pygeoapi endpoints that we answer ourselves for the collections of our catalog.
OUR_ENDPOINTS = {"pygeoapi.collection_items", "pygeoapi.collection_queryables"}
# A POST on items with one of these types is a CQL2 JSON query (see `_is_cql2_query`).
CQL2_QUERY_TYPES = {"application/query-cql-json", "application/cql2+json"}


# Processes that only read (statistics, exports): their reads may go to a replica, like a GET's.
READ_ONLY_PROCESSES = frozenset(
    {"territory-statistics", "export-collection", "export-actions", "export-sites"}
)
# Reads of a GET that must see the primary: the event streams check each event of the primary's
# outbox against what the caller may read, which a lagging replica may not hold yet.
PRIMARY_READS = frozenset({"events.all_events", "events.collection_events"})


def _reads_may_lag() -> bool:
    """Whether this request only reads, so that a streaming replica may serve its reads."""
    if request.method in ("GET", "HEAD"):
        return request.endpoint not in PRIMARY_READS
    return (
        request.method == "POST"
        and request.endpoint == "pygeoapi.execute_process_jobs"
        and (request.view_args or {}).get("process_id") in READ_ONLY_PROCESSES
    )


def _route(api: Any, catalog: Mapping[str, Collection]) -> Response | None:
    """Answer the requests of OUR_ENDPOINTS; let pygeoapi answer everything else."""
    if request.endpoint not in OUR_ENDPOINTS:
        return None
    args = request.view_args or {}
    collection = catalog.get(args.get("collection_id", ""))
    if collection is None:
        raise NotFound(f"La collection « {args.get('collection_id')} » n'existe pas.")
    method = "GET" if request.method == "HEAD" else request.method
    caller = Caller.of_request()
    if request.endpoint == "pygeoapi.collection_queryables":
        return queryables.queryables(api, request, catalog, collection.id) if method == "GET" else None
    item_id = args.get("item_id")
    if method == "GET":
        if item_id is None:
            return features.items(api, request, collection, caller)
        # The item's ETag comes from the same statement as the item (features.item).
        return features.item(api, request, collection, caller, item_id)
    if method == "POST" and item_id is None and _is_cql2_query(collection):
        return _cql2_query(api, collection, caller)
    if method == "OPTIONS":
        allowed = ", ".join(features_write.allowed_methods(collection, caller, item_id))
        headers = {"Allow": allowed}
        if "PATCH" in allowed:
            headers["Accept-Patch"] = "application/merge-patch+json, application/geo+json"
        return Response(status=HTTPStatus.NO_CONTENT, headers=headers)
    if collection.id in features_write.WRITABLE:
        base = api.config["server"]["url"].rstrip("/")
        if method == "POST" and item_id is None:
            return features_write.create(request, collection, caller, base)
        if method == "PUT" and item_id is not None:
            return features_write.update(request, collection, caller, item_id, Mode.REPLACE)
        if method == "PATCH" and item_id is not None:
            return features_write.update(request, collection, caller, item_id, Mode.PATCH)
        if method == "DELETE" and item_id is not None:
            return features_write.delete(request, collection, caller, item_id)
    allowed = ", ".join(features_write.allowed_methods(collection, caller, item_id))
    response = ogc_exception(
        HTTPStatus.METHOD_NOT_ALLOWED,
        "InvalidRequest",
        f"La collection « {collection.id} » n'accepte pas cette méthode ({request.method}) ici ; "
        f"méthodes permises : {allowed}.",
    )
    response.headers["Allow"] = allowed
    return response


def _is_cql2_query(collection: Collection) -> bool:
    """Whether a POST on items is a CQL2 JSON query rather than a feature to create.

    The CQL2 types always query; `application/json` queries unless its body is a GeoJSON
    Feature (a CQL2 expression never is), or for collections nobody writes.
    """
    if request.mimetype in CQL2_QUERY_TYPES:
        return True
    if request.mimetype != "application/json":
        return False
    if collection.id not in features_write.WRITABLE:
        return True
    try:
        body = orjson.loads(request.get_data())
    except orjson.JSONDecodeError:
        return True
    return not (isinstance(body, dict) and body.get("type") == "Feature")


def _cql2_query(api: Any, collection: Collection, caller: Caller) -> Response:
    """POST of a CQL2 JSON filter on the items: a query, not a write."""
    try:
        body = request.get_data().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter("Le corps de la requête doit être du JSON en UTF-8.") from None
    return features.items(api, request, collection, caller, body=body)


# pygeoapi's endpoints that run processes or show jobs: for signed-in callers only (a job is
# shown to its owner and to admins only: resorption.processes.jobs.JobManager).
PROCESS_ENDPOINTS = {"pygeoapi.execute_process_jobs", "pygeoapi.get_jobs", "pygeoapi.get_job_result"}


def _guard(policy: Policy, catalog: Mapping[str, Collection], principal: Principal) -> None:
    """A collection the caller may not read: 401 for anonymous callers, else it does not exist.

    Running a process and reading jobs need a signed-in caller too.
    """
    if request.endpoint in PROCESS_ENDPOINTS and principal.is_anonymous:
        raise Unauthorized("Authentification requise pour exécuter un processus ou consulter ses tâches.")
    if request.endpoint == "pygeoapi.execute_process_jobs":
        _check_execution_body()
    collection = catalog.get((request.view_args or {}).get("collection_id", ""))
    if collection is None or policy.may_read(principal, collection):
        return
    if principal.is_anonymous:
        raise Unauthorized("Authentification requise pour accéder à cette collection.")
    raise NotFound(f"La collection « {collection.id} » n'existe pas.")


def _check_execution_body() -> None:
    """A process execution request is a JSON object without NUL characters (pygeoapi assumes so)."""
    data = request.get_data()
    if not data.strip():
        raise InvalidParameter(
            "Le corps de la requête est vide : une exécution envoie un objet JSON "
            '{"inputs": {nom: valeur, …}}.'
        )
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidParameter("Le corps de la requête n'est pas du JSON valide (UTF-8).") from None
    if not isinstance(body, dict) or not isinstance(body.get("inputs", {}), dict):
        raise InvalidParameter(
            'Le corps d\'une exécution doit être un objet JSON : {"inputs": {nom: valeur, …}}.'
        )
    if _has_nul(body):
        raise InvalidParameter("Les caractères nuls ne sont pas permis dans les entrées d'un processus.")
    # Callbacks only to the URLs the configuration allows, refused before any job exists.
    callbacks.check(body.get("subscriber"), current_settings().callback_urls)


def _has_nul(value: Any) -> bool:
    """Whether a NUL character hides in a JSON value (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _collections_list(
    api: Any, policy: Policy, catalog: Mapping[str, Collection], principal: Principal
) -> Response:
    """/collections listing only what the caller may read (pygeoapi lists its whole config)."""
    hidden = {c for c, col in catalog.items() if not policy.may_read(principal, col)}
    visible = copy.copy(api)
    visible.config = {
        **api.config,
        "resources": {k: v for k, v in api.config["resources"].items() if k not in hidden},
    }
    api_request = APIRequest.from_flask(request, api.locales)
    headers, status, content = core_api.describe_collections(visible, api_request)
    response = Response(apply_gzip(headers, content), status=status)
    response.headers.update(headers)
    return response


def _is_static() -> bool:
    """Whether the request is for a static asset (stylesheet, script, image)."""
    return bool(request.endpoint and request.endpoint.endswith("static"))


# Methods whose body is read: as JSON by us or pygeoapi, as a form by werkzeug (/connexion).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _check_body(limits: app_settings.Limits) -> None:
    """A body too large is refused unread (413); a JSON body too deep before it is parsed (400).

    Every route is covered, before authentication reads anything. A chunked body has no
    Content-Length: werkzeug stops reading it at MAX_CONTENT_LENGTH, silently (the data is
    cut), so a body that fills the limit is refused too.
    """
    length = request.content_length
    if length is not None and length > limits.max_body_bytes:
        raise body_too_large(limits)
    if request.method not in BODY_METHODS:
        return
    if request.endpoint == attachments_api.UPLOAD_ENDPOINT:
        # A file has its own, smaller limit, also checked unread.
        attachments_api.check_upload_size(request, limits)
    try:
        data = request.get_data(cache=True)  # forms are parsed later from this cache
    except RequestEntityTooLarge:
        raise body_too_large(limits) from None
    if length is None and len(data) >= limits.max_body_bytes:
        raise body_too_large(limits)
    if request.mimetype not in FORM_TYPES and request.endpoint != attachments_api.UPLOAD_ENDPOINT:
        # (a file is no JSON: its bytes have no depth to check)
        check_json_depth(data, limits.json_max_depth, "Le corps de la requête")


def _reject_nul_bytes() -> None:
    """PostgreSQL text cannot hold NUL: refuse it up front, wherever it hides."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        raise InvalidParameter("Les caractères nuls (%00) ne sont pas permis dans une requête.")


def ogc_exception(
    status: int, code: str, description: str, extra: Mapping[str, object] | None = None
) -> Response:
    """An OGC API exception document (JSON) with the given status (and extra members)."""
    body = exception_document(code, description, extra)
    return Response(body, status=status, content_type="application/json")


def _wants_html_error() -> bool:
    """Whether an error goes to a person in a browser (a page) rather than to a program (JSON).

    A browser's navigation prefers text/html; `f=json` (or any other format asked by name) keeps
    the OGC exception, as do the pages' own scripts, which ask for JSON.
    """
    if request.args.get("f") not in (None, "html"):
        return False
    return sessions.wants_html(request)


def _html_error(api: Any, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The DSFR error page (templates/erreur.html) with the error's status and French message."""
    data = {
        "status": int(status),
        "code": "",
        "description": message,
        "request_id": request_log.current_request_id(),
        "links": [],
    }
    try:
        page = render(api, "erreur.html", data)
    except Exception:  # the page's chrome needs the database (who is signed in): JSON, then
        LOGGER.exception("error page not rendered for %s %s", request.method, request.path)
        return ogc_exception(status, "NoApplicableCode" if status >= 500 else "InvalidRequest", message)
    response = Response(page, status=status, content_type="text/html; charset=utf-8")
    response.headers.update({k: v for k, v in (headers or {}).items() if k != "WWW-Authenticate"})
    return response


def _unavailable(exc: DatabaseUnavailable, settings: app_settings.Settings) -> Response:
    """503 with Retry-After: an OGC exception, or for a browser a page that says to wait."""
    headers = {"Retry-After": str(settings.retry_after_s), "Cache-Control": "no-store"}
    if sessions.wants_html(request):
        page = render_template(
            "indisponible.html",
            message=exc.message,
            retry_after=settings.retry_after_s,
            request_id=request_log.current_request_id(),
            base=settings.public_url,
        )
        return Response(page, status=exc.status, headers=headers, content_type="text/html; charset=utf-8")
    response = ogc_exception(exc.status, exc.ogc_code, exc.message, exc.body)
    response.headers.update(headers)
    return response


def wsgi() -> Flask:
    """Entry point for gunicorn: `gunicorn 'resorption.app:wsgi()'` (logs as the settings say)."""
    try:
        settings = app_settings.Settings.from_env()
        request_log.configure(settings.log_format)
        return create_app(settings)
    except ConfigurationError as exc:
        raise SystemExit(f"Configuration invalide : {exc.message}") from exc
