"""How gunicorn serves the app: its one configuration file, and French answers to the requests
gunicorn refuses before the app sees them.

Every command that starts gunicorn passes `--config config/gunicorn.conf.py` (GUNICORN_CONFIG):
`resorption serve`, the test server, the image and the bench. That file sets the limits on
the request line and headers (settings.Limits) and installs `french_refusals`, so that a line
too long (414), too many or too large headers (431) or malformed HTTP (400) get an OGC
exception in French, like every other error, instead of gunicorn's English HTML page.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http_errors

from resorption.errors import ConfigurationError, exception_document
from resorption.settings import PROJECT_ROOT, Limits, french_count

GUNICORN_CONFIG = PROJECT_ROOT / "config" / "gunicorn.conf.py"

# Requests gunicorn cannot read as HTTP: the client's mistake (gunicorn answers 400 too).
_MALFORMED = (
    http_errors.InvalidRequestLine,
    http_errors.InvalidRequestMethod,
    http_errors.InvalidHTTPVersion,
    http_errors.InvalidHeader,
    http_errors.InvalidHeaderName,
    http_errors.ObsoleteFolding,
    http_errors.InvalidChunkSize,
    http_errors.ChunkMissingTerminator,
    http_errors.InvalidChunkExtension,
)
# A header the application tried to send is the application's fault: gunicorn's 500.
_NOT_THE_CLIENTS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)


def limits_or_exit() -> Limits:
    """The limits from the environment; an invalid value stops gunicorn with a French message."""
    try:
        return Limits.from_env()
    except ConfigurationError as exc:
        raise SystemExit(f"Configuration invalide : {exc.message}") from exc


def refusal(exc: BaseException, limits: Limits) -> bytes | None:
    """The HTTP response (bytes) for a request gunicorn refused, or None to leave it to gunicorn."""
    if isinstance(exc, _NOT_THE_CLIENTS):
        return None
    if isinstance(exc, http_errors.LimitRequestLine):
        return _response(
            414,
            "URI Too Long",
            "InvalidRequest",
            f"La ligne de requête (méthode, adresse et paramètres) dépasse "
            f"{french_count(limits.request_line)} octets : raccourcissez-la, ou envoyez un long "
            "filtre CQL2 dans le corps d'un POST sur /collections/{id}/items "
            "(Content-Type: application/query-cql-json).",
        )
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return _response(
            431,
            "Request Header Fields Too Large",
            "InvalidRequest",
            f"Les en-têtes de la requête sont trop nombreux ou trop longs : "
            f"{french_count(limits.request_headers)} en-têtes de {french_count(limits.header_bytes)} "
            "octets au plus.",
        )
    if isinstance(exc, _MALFORMED):
        return _response(
            400, "Bad Request", "InvalidRequest", "La requête n'est pas une requête HTTP/1.1 valide."
        )
    return None


def french_refusals(worker: Any) -> None:
    """gunicorn's `post_worker_init` hook: answer the client errors above in French, as JSON."""
    limits = limits_or_exit()
    gunicorn_answer = worker.handle_error

    def handle_error(req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        response = refusal(exc, limits)
        if response is None:
            gunicorn_answer(req, client, addr, exc)
            return
        host = addr[0] if addr else ""
        worker.log.warning("Invalid request from ip=%s: %s", host, exc)
        try:
            util.write_nonblock(client, response)
        except OSError:
            worker.log.debug("Failed to send error message.")

    worker.handle_error = handle_error


def _response(status: int, reason: str, code: str, message: str) -> bytes:
    body = exception_document(code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


# glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def bounded_malloc() -> None:
    """Memory a worker took for a request body goes back to the system once the body is freed.

    glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), so later
    bodies of a few MiB come from the heap, which it seldom gives back; with threads, each thread
    may take an arena of its own to fragment. A fixed threshold (1 MiB: every large buffer is
    mmapped, then unmapped when freed) and two arenas keep a worker near its size at rest
    (tests/test_hostile_input.py measures it). Called in the master, before workers fork; elsewhere
    than glibc, nothing is done.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
    mallopt(M_ARENA_MAX, 2)


def prepare_metrics_dir() -> Path:
    """The folder where the workers keep their metrics (prometheus-client's multiprocess mode),
    emptied: values of a former run would add up with this one's.

    PROMETHEUS_MULTIPROC_DIR when set, else `<RESORPTION_RUNTIME_DIR>/metrics`, else a new
    temporary folder. Called by the gunicorn configuration, in the master, before any worker
    starts (the variable must be set before prometheus-client is imported).
    """
    configured = os.environ.get(METRICS_DIR_VARIABLE)
    runtime = os.environ.get("RESORPTION_RUNTIME_DIR")
    if configured:
        folder = Path(configured)
    elif runtime:
        folder = Path(runtime) / "metrics"
    else:
        folder = Path(tempfile.mkdtemp(prefix="resorption-metrics-"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ[METRICS_DIR_VARIABLE] = str(folder)
    return folder


def forget_worker_metrics(server: Any, worker: Any) -> None:
    """gunicorn's `child_exit` hook: a dead worker's gauges leave the sums (`livesum`)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
