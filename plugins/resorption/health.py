"""Liveness and readiness: what `/sante` and `/pret` answer (README « Exploitation »).

Readiness runs a list of checks, each a name and a function of the settings that raises
when its part is not ready. The database's two (reachable, schema at the code's head) are
always there; a part that needs a service registers its own with `register` (the broker, the
mail server…), and `service_check` makes one from a URL for a plain TCP service. A check
says nothing about what it found beyond « ok » or « échec »: the answer is public.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from resorption import broker, database
from resorption.settings import Settings

Check = Callable[[Settings], None]


class NotReady(Exception):
    """A check found its part not ready."""


class NotConfigured(Exception):
    """The part this check looks at is not configured: the check is left out of the answer."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one check: ready or not, and how long it took."""

    name: str
    ready: bool
    seconds: float


def _database(settings: Settings) -> None:
    database.ping(settings)


def _migrations(settings: Settings) -> None:
    if database.schema_revision(settings) != code_head():
        raise NotReady("schema")


@cache
def code_head() -> str:
    """The newest alembic revision this code knows (read once)."""
    from alembic.script import ScriptDirectory

    from resorption.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://localhost/x")).get_current_head()
    return head or ""


_CHECKS: dict[str, Check] = {"base": _database, "migrations": _migrations}


def register(name: str, check: Check) -> None:
    """Add (or replace) a readiness check; `check(settings)` raises when its part is not ready
    (NotConfigured when there is nothing to check)."""
    _CHECKS[name] = check


def unregister(name: str) -> None:
    """Remove a readiness check (tests, a part switched off)."""
    _CHECKS.pop(name, None)


def service_check(url_of: Callable[[Settings], str | None], timeout: float = 2.0) -> Check:
    """A check that the service at `url_of(settings)` accepts TCP connections (left out when None)."""

    def check(settings: Settings) -> None:
        url = url_of(settings)
        if not url:
            raise NotConfigured(url)
        parts = urlsplit(url)
        default_port = {"mqtt": 1883, "mqtts": 8883, "smtp": 25, "smtps": 465}.get(parts.scheme, 0)
        port = parts.port or default_port
        if not parts.hostname or not port:
            raise NotReady("address")
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass

    return check


# The broker (MQTT_URL, or the embedded one when it runs) and the SMTP relay, when there are.
register("broker", service_check(lambda s: broker.reachable_url()))
register("smtp", service_check(lambda s: f"smtp://{s.smtp_host}:{s.smtp_port}" if s.smtp_host else None))


def readiness(settings: Settings) -> list[Outcome]:
    """Run every check, each on its own (one failing does not hide the others)."""
    outcomes = []
    for name, check in _CHECKS.items():
        started = time.perf_counter()
        try:
            check(settings)
            ready = True
        except NotConfigured:
            continue
        except Exception:  # whatever went wrong, the part is not ready
            ready = False
        outcomes.append(Outcome(name, ready, time.perf_counter() - started))
    return outcomes
