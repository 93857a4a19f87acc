"""Job callbacks (the `subscriber` of an OGC API Processes execution): off unless allowed.

An execution request may name URLs for the server to POST to when its job runs, succeeds
or fails (`successUri`, `inProgressUri`, `failedUri`). Left open, that lets any user make
the server send requests anywhere, inside the network included. So callbacks are off
unless `RESORPTION_CALLBACK_URLS` lists the URL prefixes they may name: `check` refuses,
in French and before any job exists, a request naming any other URL (400), and `notify`
checks again before it sends. A callback carries the job's status and links, never its
results: the receiver fetches them with its own credentials, under its own rights.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from resorption.errors import InvalidParameter
from resorption.urls import under

LOGGER = logging.getLogger(__name__)
# The members of a `subscriber` object (OGC API Processes, subscriber.yaml).
MEMBERS = ("successUri", "inProgressUri", "failedUri")
# Seconds to connect to, and then to hear from, a callback's receiver.
TIMEOUT = (5, 10)


@dataclass(frozen=True, slots=True)
class Callbacks:
    """The callback URLs of one job (pygeoapi's `Subscriber`, with the job they are about)."""

    success_uri: str | None
    in_progress_uri: str | None
    failed_uri: str | None
    job_id: str
    process_id: str


def allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether `url` lies under one of the allowed prefixes."""
    return any(under(url, prefix) for prefix in prefixes)


def of(subscriber: Any, job_id: str, process_id: str) -> Callbacks | None:
    """The callbacks of a job from pygeoapi's `Subscriber` (None: the request named none)."""
    if subscriber is None:
        return None
    return Callbacks(
        success_uri=subscriber.success_uri,
        in_progress_uri=subscriber.in_progress_uri,
        failed_uri=subscriber.failed_uri,
        job_id=job_id,
        process_id=process_id,
    )


def check(subscriber: Any, prefixes: Sequence[str]) -> None:
    """Refuse (400, in French) a `subscriber` the configuration does not allow."""
    if subscriber is None:
        return
    if not prefixes:
        raise InvalidParameter(
            "Les notifications de fin de tâche (« subscriber ») sont désactivées sur ce serveur : "
            "retirez « subscriber » de la requête et suivez la tâche par /jobs/{jobId}."
        )
    if not isinstance(subscriber, Mapping) or not isinstance(subscriber.get("successUri"), str):
        raise InvalidParameter(
            "« subscriber » est un objet dont « successUri » (obligatoire), « inProgressUri » et "
            "« failedUri » sont des adresses."
        )
    unknown = sorted(set(subscriber) - set(MEMBERS))
    if unknown:
        raise InvalidParameter(
            f"« subscriber » : membre(s) inconnu(s) {', '.join(unknown)} ; "
            f"membres permis : {', '.join(MEMBERS)}."
        )
    for member in MEMBERS:
        url = subscriber.get(member)
        if url is None:
            continue
        if not isinstance(url, str) or not allowed(url, prefixes):
            raise InvalidParameter(
                f"« subscriber.{member} » : cette adresse n'est pas permise pour les notifications de "
                "ce serveur ; demandez à son administrateur les adresses permises, ou retirez "
                "« subscriber » et suivez la tâche par /jobs/{jobId}."
            )


def notify(
    url: str | None, callbacks: Callbacks, status: str, public_url: str, prefixes: Sequence[str]
) -> None:
    """POST the job's status to `url` (if allowed); a receiver that fails is logged, never fatal."""
    if url is None:
        return
    if not allowed(url, prefixes):  # refused at the request already: never sent
        LOGGER.warning("callback of job %s to a URL not allowed, not sent", callbacks.job_id)
        return
    job = f"{public_url.rstrip('/')}/jobs/{callbacks.job_id}"
    document = {
        "type": "process",
        "jobID": callbacks.job_id,
        "processID": callbacks.process_id,
        "status": status,
        "links": [
            {"href": job, "rel": "status", "type": "application/json", "title": "État de la tâche"},
            {"href": f"{job}/results", "rel": "results", "title": "Résultats de la tâche"},
        ],
    }
    try:
        # No redirects: a receiver could otherwise send the request on to an address not allowed.
        requests.post(url, json=document, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        LOGGER.warning("callback of job %s failed: %s", callbacks.job_id, type(exc).__name__)
