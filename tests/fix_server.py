"""A real server for the suite: gunicorn serving the app on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from resorption.serving import GUNICORN_CONFIG

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TestServer:
    """The suite's gunicorn: its URL, its log (requests refused, workers booted or killed), its pid."""

    __test__ = False  # not a test class, despite its name

    url: str
    log: Path
    pid: int

    def worker_pids(self) -> list[int]:
        """The pids of the master's live workers (from /proc)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(c) for c in children]


@pytest.fixture(scope="session")
def test_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, mail_dir: Path
) -> Iterator[TestServer]:
    """A gunicorn server running the app against the test database, with the project's
    configuration (config/gunicorn.conf.py, as in production); its /courriels page shows the
    messages of the suite's SMTP server (tests/fix_mail.py)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    runtime = tmp_path_factory.mktemp("runtime")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": url,
        "RESORPTION_RUNTIME_DIR": str(runtime),
        # the messages of the suite's SMTP server (tests/fix_mail.py), shown on /courriels
        "RESORPTION_MAIL_LOCAL_DIR": str(mail_dir),
    }
    log_path = runtime / "gunicorn.log"
    log = log_path.open("w")
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [
            str(gunicorn),
            "--config",
            str(GUNICORN_CONFIG),
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
            raise RuntimeError("le serveur de test n'a pas démarré :\n" + log_path.read_text())
        time.sleep(0.2)
    yield TestServer(url, log_path, process.pid)
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="session")
def base_url(test_server: TestServer) -> str:
    """URL of the suite's gunicorn server."""
    return test_server.url


@pytest.fixture(scope="session")
def server_log(test_server: TestServer) -> Path:
    """The gunicorn log of the suite's server (stdout and stderr of master and workers)."""
    return test_server.log


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
