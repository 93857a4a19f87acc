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


@pytest.fixture(scope="session")
def http(base_url: str) -> Iterator[requests.Session]:
    """A requests session whose paths are relative to the test server."""

    class Session(requests.Session):
        def request(self, method: str, url: str, *args, **kwargs):  # type: ignore[override]
            if url.startswith("/"):
                url = base_url + url
            kwargs.setdefault("timeout", 60)
            return super().request(method, url, *args, **kwargs)

    with Session() as session:
        yield session
