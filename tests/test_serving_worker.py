"""gunicorn's worker for the app (resorption.serving_worker): one request at a time per process,
and nothing else may hold that turn: a connection that says nothing, a stream, a busy
process (new connections go to a free one). Servers of their own, so that the requests held
here never hold the suite's server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests

from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import TestUser


@contextmanager
def _server(database_url: str, log: Path, workers: int) -> Iterator[str]:
    port = free_port()
    env = {"DATABASE_URL": database_url, "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with start_gunicorn("resorption.app:wsgi()", env, log, port, workers=workers) as url:
        yield url


def _answers_at_once(url: str, times: int = 6) -> list[float]:
    """Seconds each of `times` requests took, one after the other."""
    took = []
    for _ in range(times):
        started = time.monotonic()
        assert requests.get(f"{url}/conformance", timeout=10).status_code == 200
        took.append(time.monotonic() - started)
    return took


def test_a_busy_worker_leaves_new_connections_to_a_free_one(database_url: str, tmp_path: Path) -> None:
    """A read waits for a table the test holds (less than the read's lock timeout, 5 s): every
    other request goes to the other worker at once, none waits behind the held read."""
    with _server(database_url, tmp_path / "gunicorn.log", workers=2) as url:
        answers: list[int] = []
        with psycopg.connect(database_url) as holder:
            holder.execute("LOCK TABLE resorption.communes IN ACCESS EXCLUSIVE MODE")
            held = threading.Thread(
                target=lambda: answers.append(
                    requests.get(f"{url}/collections/communes/items?limit=1", timeout=60).status_code
                )
            )
            held.start()
            time.sleep(1.0)  # the read now waits for the table
            took = _answers_at_once(url, times=4)
            assert held.is_alive()  # still waiting: the requests above were served by the other worker
            holder.rollback()
        held.join(timeout=30)
    assert max(took) < 2, took
    assert answers == [200]


def test_a_connection_that_says_nothing_holds_no_turn(database_url: str, tmp_path: Path) -> None:
    """Browsers open connections in advance: silent ones do not hold the only worker, and are
    closed after gunicorn's keep-alive (2 s) of silence."""
    with _server(database_url, tmp_path / "gunicorn.log", workers=1) as url:
        port = int(url.rsplit(":", 1)[1])
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        try:
            time.sleep(0.3)
            assert max(_answers_at_once(url)) < 2
            time.sleep(3.5)
            assert all(_closed_by_the_server(connection) for connection in silent)
        finally:
            for connection in silent:
                connection.close()
        # …and a connection that speaks late is served.
        late = socket.create_connection(("127.0.0.1", port))
        try:
            time.sleep(0.5)
            late.sendall(b"GET /conformance HTTP/1.1\r\nHost: x\r\n\r\n")
            late.settimeout(10)
            assert late.recv(64).startswith(b"HTTP/1.1 200")
        finally:
            late.close()


def _closed_by_the_server(connection: socket.socket) -> bool:
    connection.settimeout(5)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_stream_gives_its_turn_back(database_url: str, users: dict[str, TestUser], tmp_path: Path) -> None:
    """A stream of changes (SSE) lasts minutes: with one worker, the requests that come while
    it streams are served at once."""
    with _server(database_url, tmp_path / "gunicorn.log", workers=1) as url:
        headers = {"Accept": "text/event-stream", **users["operator-departement-33"].headers}
        with requests.get(f"{url}/events", headers=headers, stream=True, timeout=30) as stream:
            assert stream.status_code == 200, stream.text
            time.sleep(0.5)
            assert max(_answers_at_once(url)) < 2


def test_a_client_slow_to_close_holds_no_turn(database_url: str, tmp_path: Path) -> None:
    """Once its answer is written, a request's connection waits for the client to close its side
    (gunicorn's graceful close, up to 2 s): clients that read their answer and keep the
    connection open do not hold the only worker meanwhile."""
    with _server(database_url, tmp_path / "gunicorn.log", workers=1) as url:
        port = int(url.rsplit(":", 1)[1])
        lingering = []
        try:
            for _ in range(2):  # two of the worker's four threads wait for them
                connection = socket.create_connection(("127.0.0.1", port))
                connection.sendall(b"GET /conformance HTTP/1.1\r\nHost: x\r\n\r\n")
                connection.settimeout(10)
                assert connection.recv(64).startswith(b"HTTP/1.1 200")
                lingering.append(connection)
            took = _answers_at_once(url, times=4)
        finally:
            for connection in lingering:
                connection.close()
    assert max(took) < 0.5, took
