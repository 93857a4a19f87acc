"""One JSON line per request, and a request id that follows it (README « Exploitation »).

Each request gets an id: the client's `X-Request-ID` when it is sane (a proxy's, a load
balancer's: 8 to 128 letters, digits, `-`, `_`, `.`, `:`), else a new random one. It is
answered in `X-Request-ID`, added to every JSON error body (`requestId`) and to every log line
written while the request runs, so that an operator finds a user's error in the logs.

The request line names the route template, the path without its query string, the status,
the duration and the principal's numeric id: never a header, a cookie, a query string or a
body (where passwords, tokens and sensitive values travel).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

import orjson
from flask import Flask, Response, g, request

from resorption import metrics
from resorption.identity import current_principal

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
LOGGER = logging.getLogger("resorption.requests")
# No route matched (a 404 for an address that does not exist): one label for them all.
NO_ROUTE = "(aucune)"

_request_id: ContextVar[str | None] = ContextVar("resorption_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    return _request_id.get()


def _begin() -> None:
    incoming = request.headers.get(HEADER, "")
    request_id = incoming if SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
    _request_id.set(request_id)
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    request_id = _request_id.get() or uuid.uuid4().hex
    response.headers[HEADER] = request_id
    if response.status_code >= 400 and response.mimetype == "application/json" and not response.is_streamed:
        _add_to_error_body(response, request_id)
    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else NO_ROUTE
    metrics.request_done(route, request.method, response.status_code, seconds)
    principal = current_principal()
    LOGGER.info(
        "%s %s %s",
        request.method,
        route,
        response.status_code,
        extra={
            "request": {
                "method": request.method,
                "route": route,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "principal_id": None if principal.is_anonymous else principal.user_id,
                "bytes": response.content_length,
            }
        },
    )
    return response


def _add_to_error_body(response: Response, request_id: str) -> None:
    """`requestId` in an OGC exception document (a JSON object with a `code`)."""
    try:
        body = orjson.loads(response.get_data())
    except orjson.JSONDecodeError:
        return
    if isinstance(body, dict) and "code" in body and "requestId" not in body:
        body["requestId"] = request_id
        response.set_data(orjson.dumps(body))


def install(app: Flask) -> None:
    """Give `app` request ids, metrics and the request log; runs before every other hook."""
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    # after_request hooks run in reverse order of registration: registered first, it runs last
    # and sees the final response (and the 503s, 401s… of the error handlers).
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)


class JsonFormatter(logging.Formatter):
    """Every log record as one JSON line: time, level, logger, message, request id (and fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        if isinstance(getattr(record, "request", None), dict):
            entry.update(record.request)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


JsonFormatter.converter = time.gmtime  # type: ignore[assignment]


def configure(log_format: str) -> None:
    """Send our records (and gunicorn's error log) to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Our loggers propagate to the root; gunicorn's error log keeps its own handler.
    logging.getLogger("resorption").setLevel(logging.INFO)
