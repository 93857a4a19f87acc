"""Prometheus metrics: requests, database transactions and pool, jobs (README « Exploitation »).

Under gunicorn every worker is a process of its own: prometheus-client's multiprocess mode
keeps each worker's values in files of PROMETHEUS_MULTIPROC_DIR, which the gunicorn
configuration sets and empties at start (serving.prepare_metrics_dir) before any worker
imports this module, and `exposition()` adds them up. Without that directory (the app in a
test client, the command line) the values live in this process only.

Labels have few values: a route is the URL rule (`/collections/<path:collection_id>/items`),
never the path a client typed, so nobody can blow up the series by inventing addresses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "resorption_http_requests",
    "Requêtes HTTP servies, par route, méthode et statut.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "resorption_http_request_duration_seconds",
    "Durée des requêtes HTTP (jusqu'à la réponse prête), par route et méthode.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRANSACTIONS = Histogram(
    "resorption_db_transaction_duration_seconds",
    "Durée des transactions PostgreSQL, par sorte (read, write, export, tile).",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
)
UNAVAILABLE = Counter(
    "resorption_db_unavailable", "Transactions refusées faute de base joignable (réponses 503).", ["kind"]
)
# Where the reads of `Caller.reading()` and `exporting()` went (resorption.replicas).
READS = Counter(
    "resorption_db_reads",
    "Transactions de lecture, par serveur : primary (primaire) ou replica (réplique).",
    ["server"],
)
# Each replica's lag as its watchers last saw it; "max": the worst worker's view.
REPLICA_LAG_BYTES = Gauge(
    "resorption_db_replica_lag_bytes",
    "Retard de rejeu de chaque réplique sur la primaire, en octets de WAL.",
    ["replica"],
    multiprocess_mode="max",
)
REPLICA_LAG_SECONDS = Gauge(
    "resorption_db_replica_lag_seconds",
    "Retard de rejeu de chaque réplique sur la primaire, en secondes.",
    ["replica"],
    multiprocess_mode="max",
)
# Each worker's pool; "livesum": the sum over live workers.
POOL = Gauge(
    "resorption_db_pool_connections",
    "Connexions des pools PostgreSQL : ouvertes (size), libres (available), demandes en attente (waiting).",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_STATES = {"pool_size": "size", "pool_available": "available", "requests_waiting": "waiting"}

_pools: list[Any] = []


def watch_pool(pool: Any) -> None:
    """Report this pool's connections (database.get_pool calls it for each pool it makes)."""
    _pools.append(pool)


def transaction_done(kind: str, seconds: float, unavailable: bool = False) -> None:
    """One transaction of `kind` ended after `seconds`; the pools' gauges follow."""
    _child(TRANSACTIONS, kind).observe(seconds)
    if unavailable:
        _child(UNAVAILABLE, kind).inc()
    totals = dict.fromkeys(POOL_STATES.values(), 0)
    for pool in _pools:
        stats = pool.get_stats()
        for key, state in POOL_STATES.items():
            totals[state] += stats.get(key, 0)
    if _pool_values.get("pid") != os.getpid():  # a forked worker writes its own gauges
        _pool_values.clear()
        _pool_values["pid"] = os.getpid()
    for state, value in totals.items():
        if _pool_values.get(state) != value:  # (a gauge's file is written only when it changes)
            _pool_values[state] = value
            _child(POOL, state).set(value)


# The last values this process gave the pool gauges (and its pid).
_pool_values: dict[str, int] = {}
# Each metric's child per label values: prometheus-client looks them up under a lock, with
# checks, on each `labels()`; the label values are few (see above), so they are kept here.
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def read_served(server: str) -> None:
    """One read transaction opened on `server` (primary or replica)."""
    _child(READS, server).inc()


def replica_lag(replica: str, lag_bytes: int, lag_s: float) -> None:
    """A replica's lag as a watcher just measured it (`replica`: its host, port and database)."""
    REPLICA_LAG_BYTES.labels(replica).set(lag_bytes)
    REPLICA_LAG_SECONDS.labels(replica).set(lag_s)


def request_done(route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered."""
    _child(REQUESTS, route, method, str(status)).inc()
    _child(LATENCY, route, method).observe(seconds)


class _Sampled(Collector):
    """Values read when Prometheus scrapes (jobs by status…): one function per family."""

    def __init__(self, sources: Iterable[Callable[[], Iterable[GaugeMetricFamily]]]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for source in self.sources:
            try:
                yield from source()
            except Exception:  # a scrape never fails for want of one family
                continue


def jobs_family(counts: Iterable[tuple[str, int]]) -> GaugeMetricFamily:
    """The jobs of OGC API Processes by status (accepted, running, successful, failed, dismissed)."""
    family = GaugeMetricFamily("resorption_jobs", "Tâches des processus, par statut.", labels=["status"])
    for status, count in counts:
        family.add_metric([status], count)
    return family


def outbox_lag_families(lags: Iterable[tuple[str, int, float]]) -> Iterable[GaugeMetricFamily]:
    """The outbox's lag per publisher: events it has not confirmed yet, and the oldest one's age."""
    events = GaugeMetricFamily(
        "resorption_outbox_lag_events",
        "Événements de la boîte d'envoi pas encore confirmés par le publieur.",
        labels=["publisher"],
    )
    seconds = GaugeMetricFamily(
        "resorption_outbox_lag_seconds",
        "Âge, en secondes, du plus ancien événement pas encore confirmé par le publieur (0 : aucun).",
        labels=["publisher"],
    )
    for publisher, count, age in lags:
        events.add_metric([publisher], count)
        seconds.add_metric([publisher], age)
    return (events, seconds)


def exposition(sampled: Iterable[Callable[[], Iterable[GaugeMetricFamily]]] = ()) -> tuple[bytes, str]:
    """The text Prometheus reads: every worker's values (multiprocess mode) and the sampled ones."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (REQUESTS, LATENCY, TRANSACTIONS, UNAVAILABLE, POOL):
            registry.register(collector)
    registry.register(_Sampled(sampled))
    return generate_latest(registry), CONTENT_TYPE_LATEST
