"""Job callbacks (`subscriber` of OGC API Processes) go only where configuration says.

A local listener plays the receiver. On the suite's server, which allows no callback, an
execution naming one is refused in French before any job exists, and the listener receives
nothing. A second server on the same database allows one URL prefix: anything else is
refused the same way; an allowed URL receives the job's status and links, never its results.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from resorption.errors import ConfigurationError
from resorption.settings import Settings
from tests.fix_second_server import (
    Request,
    ScriptedServer,
    free_port,
    scripted_server,
    start_gunicorn,
)
from tests.fix_users import TestUser

ADMIN = "national-admin-nation"
INPUTS = {"level": "departement", "code": "33", "start": "2020-01-01", "end": "2023-01-01", "step": "year"}
PATH = "/processes/territory-statistics/execution"


def received_nothing(listener: ScriptedServer) -> bool:
    """Whether the listener is still without a request a moment later (a job would have called by now)."""
    time.sleep(1.5)
    return listener.requests == []


@pytest.fixture(scope="module")
def listener() -> Iterator[ScriptedServer]:
    def answer(handler: Any, request: Request) -> None:
        handler.send_response(204)
        handler.end_headers()

    with scripted_server(answer) as served:
        yield served


@pytest.fixture
def heard(listener: ScriptedServer) -> Iterator[ScriptedServer]:
    """The listener, emptied before and after the test."""
    listener.requests.clear()
    yield listener
    listener.requests.clear()


@pytest.fixture(scope="module")
def allowing_url(
    database_url: str, listener: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server on the session's database that allows callbacks under <listener>/permis/."""
    runtime = tmp_path_factory.mktemp("callbacks")
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
        "RESORPTION_CALLBACK_URLS": f"{listener.url}/permis/",
    }
    with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port) as url:
        yield url


def execute(url: str, user: TestUser, subscriber: Any, **headers: str) -> requests.Response:
    body = {"inputs": INPUTS, "subscriber": subscriber}
    return requests.post(url + PATH, json=body, headers={**user.headers, **headers}, timeout=120)


def jobs(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM resorption_jobs.jobs").fetchone()[0]


@pytest.mark.parametrize("prefer", ["respond-sync", "respond-async"])
def test_callbacks_are_off_by_default(
    base_url: str, users: dict[str, TestUser], heard: ScriptedServer, db: psycopg.Connection, prefer: str
) -> None:
    before = jobs(db)
    subscriber = {
        "successUri": f"{heard.url}/fini",
        "inProgressUri": f"{heard.url}/en-cours",
        "failedUri": f"{heard.url}/echec",
    }
    r = execute(base_url, users[ADMIN], subscriber, Prefer=prefer)
    assert r.status_code == 400, r.text
    assert "notifications de fin de tâche (« subscriber ») sont désactivées" in r.json()["description"]
    assert jobs(db) == before, "no job was created"
    assert received_nothing(heard)
    # Without a subscriber, the same execution runs.
    assert execute(base_url, users[ADMIN], None).status_code == 200


@pytest.mark.parametrize(
    "where",
    [
        "/autre",  # the listener's origin, not under the prefix
        "/permis/../autre",  # a dot segment a server would resolve out of the prefix
        "/permis/%2e%2e/autre",
        "PORT/permis/fini",  # another port of the same host
        "USER/permis/fini",  # credentials in the URL
    ],
)
def test_a_url_outside_the_allow_list_is_refused(
    allowing_url: str,
    users: dict[str, TestUser],
    heard: ScriptedServer,
    db: psycopg.Connection,
    where: str,
) -> None:
    url = heard.url + where
    if where.startswith("PORT"):
        url = f"http://127.0.0.1:{free_port()}" + where.removeprefix("PORT")
    if where.startswith("USER"):
        url = heard.url.replace("://", "://moi:secret@") + where.removeprefix("USER")
    before = jobs(db)
    r = execute(allowing_url, users[ADMIN], {"successUri": f"{heard.url}/permis/fini", "failedUri": url})
    assert r.status_code == 400, r.text
    description = r.json()["description"]
    assert "subscriber.failedUri" in description and "n'est pas permise" in description
    assert "/permis/" not in description, "the allowed addresses are not told"
    assert jobs(db) == before
    assert received_nothing(heard)


@pytest.mark.parametrize("subscriber", ["http://127.0.0.1/", {"inProgressUri": "x"}, {"successUri": 3}])
def test_a_malformed_subscriber_is_refused(
    allowing_url: str, users: dict[str, TestUser], heard: ScriptedServer, subscriber: Any
) -> None:
    r = execute(allowing_url, users[ADMIN], subscriber)
    assert r.status_code == 400, r.text
    assert "successUri" in r.json()["description"]
    assert received_nothing(heard)


def test_an_allowed_url_hears_the_status_never_the_results(
    allowing_url: str, users: dict[str, TestUser], heard: ScriptedServer
) -> None:
    subscriber = {"successUri": f"{heard.url}/permis/fini", "inProgressUri": f"{heard.url}/permis/en-cours"}
    r = execute(allowing_url, users[ADMIN], subscriber)
    assert r.status_code == 200, r.text
    assert "series" in r.json()
    deadline = time.monotonic() + 10
    while len(heard.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(q.method, q.path) for q in heard.requests] == [
        ("POST", "/permis/en-cours"),
        ("POST", "/permis/fini"),
    ]
    success = json.loads(heard.requests[1].body)
    assert success["status"] == "successful" and success["processID"] == "territory-statistics"
    assert {link["rel"] for link in success["links"]} == {"status", "results"}
    assert set(success) == {"type", "jobID", "processID", "status", "links"}, "no results in a callback"
    assert "Authorization" not in heard.requests[1].headers


def test_the_allow_list_is_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for wrong in (
        "ftp://depot.example.org/",
        "https://moi:secret@example.org/",
        "https://x.org/?a=1",
        "/rel",
    ):
        monkeypatch.setenv("RESORPTION_CALLBACK_URLS", wrong)
        with pytest.raises(ConfigurationError, match="RESORPTION_CALLBACK_URLS"):
            Settings.from_env("postgresql://localhost/x")
    monkeypatch.setenv("RESORPTION_CALLBACK_URLS", "https://a.example.org/rappels/, https://b.example.org/")
    assert Settings.from_env("postgresql://localhost/x").callback_urls == (
        "https://a.example.org/rappels/",
        "https://b.example.org/",
    )
