"""The operators' endpoints: `/sante` (liveness), `/pret` (readiness), `/metrics` (Prometheus).

None of them needs a signed-in caller, and none shows data: `/sante` answers as long as the
process serves; `/pret` runs the readiness checks (resorption.health) and names only which
failed; `/metrics` answers only to the networks of RESORPTION_METRICS_NETWORKS or to the bearer
secret RESORPTION_METRICS_TOKEN (README « Exploitation »).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from http import HTTPStatus

import orjson
from flask import Blueprint, Response, request
from prometheus_client.core import GaugeMetricFamily

from resorption import health, metrics, statements
from resorption.caller import current_settings
from resorption.database import pooled
from resorption.errors import exception_document
from resorption.settings import Settings

SQL = statements.load("api_operations")
ENDPOINTS = frozenset({"operations.liveness", "operations.readiness", "operations.metrics"})

blueprint = Blueprint("operations", __name__)


def _json(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


@blueprint.get("/sante")
def liveness() -> Response:
    """The process serves requests (it does not look at the database: a restart would not fix it)."""
    return _json(b'{"statut":"vivant"}', HTTPStatus.OK)


@blueprint.get("/pret")
def readiness() -> Response:
    """Ready for traffic: the database answers, its schema is the code's, the configured services answer."""
    settings = current_settings()
    outcomes = health.readiness(settings)
    ready = all(o.ready for o in outcomes)
    body = {
        "statut": "prêt" if ready else "pas prêt",
        "verifications": {o.name: "ok" if o.ready else "échec" for o in outcomes},
    }
    if ready:
        return _json(orjson.dumps(body), HTTPStatus.OK)
    return _json(
        orjson.dumps(body), HTTPStatus.SERVICE_UNAVAILABLE, {"Retry-After": str(settings.retry_after_s)}
    )


@blueprint.get("/metrics", endpoint="metrics")
def metrics_endpoint() -> Response:
    """Prometheus's text format, for the allowed networks or the bearer secret only."""
    settings = current_settings()
    if not _may_scrape(settings):
        return _json(
            exception_document(
                "Forbidden",
                "Les métriques ne sont lisibles que depuis les réseaux de RESORPTION_METRICS_NETWORKS "
                "ou avec le secret de RESORPTION_METRICS_TOKEN (en-tête Authorization: Bearer).",
            ),
            HTTPStatus.FORBIDDEN,
        )
    body, content_type = metrics.exposition([lambda: _jobs(settings), lambda: _outbox_lag(settings)])
    response = Response(body, status=HTTPStatus.OK, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def _may_scrape(settings: Settings) -> bool:
    authorization = request.headers.get("Authorization", "")
    if settings.metrics_token and authorization.startswith("Bearer "):
        return hmac.compare_digest(authorization[7:].strip().encode(), settings.metrics_token.encode())
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in settings.metrics_networks)


def _jobs(settings: Settings) -> Iterable[GaugeMetricFamily]:
    with pooled(settings) as conn:
        rows = conn.execute(SQL.jobs_by_status).fetchall()
        conn.rollback()
    yield metrics.jobs_family((status, count) for status, count in rows)


def _outbox_lag(settings: Settings) -> Iterable[GaugeMetricFamily]:
    with pooled(settings) as conn:
        rows = conn.execute(SQL.outbox_lag).fetchall()
        conn.rollback()
    yield from metrics.outbox_lag_families(rows)
