"""A real server for the suite: gunicorn serving the app on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def base_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a gunicorn server running the app against the test database."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    runtime = tmp_path_factory.mktemp("runtime")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": url,
        "RESORPTION_RUNTIME_DIR": str(runtime),
    }
    log = (runtime / "gunicorn.log").open("w")
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [
            str(gunicorn),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "120",
            "resorption.app:wsgi()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/conformance", timeout=10).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                "le serveur de test n'a pas démarré :\n" + (runtime / "gunicorn.log").read_text()
            )
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()


class _Session(requests.Session):
    """A requests session whose paths are relative to the test server."""

    def __init__(self, base_url: str, token: str | None) -> None:
        super().__init__()
        self.base_url = base_url
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, url: str, *args, **kwargs):  # type: ignore[override]
        if url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", 60)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="session")
def http(base_url: str, users: dict) -> Iterator[requests.Session]:
    """A session signed in as a national administrator, who reads every row and field."""
    with _Session(base_url, users["national-admin-nation"].token) as session:
        yield session


@pytest.fixture(scope="session")
def anonymous(base_url: str) -> Iterator[requests.Session]:
    """A session without credentials."""
    with _Session(base_url, None) as session:
        yield session
