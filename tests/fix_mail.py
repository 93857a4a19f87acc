"""A real SMTP server for the suite: the project's own (resorption.mail_server, aiosmtpd).

It listens on `RESORPTION_TEST_SMTP_PORT` (a free port when unset) and keeps what it receives
in a folder that the suite's server shows on /courriels. `deliver()` runs the outbox worker
once (as `resorption courriels envoyer` does) and returns the messages that arrived.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from resorption.mail import send_due
from resorption.mail_server import Keeper, Received, start
from resorption.settings import Settings


def _port() -> int:
    if os.environ.get("RESORPTION_TEST_SMTP_PORT"):
        return int(os.environ["RESORPTION_TEST_SMTP_PORT"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the received messages (RESORPTION_MAIL_LOCAL_DIR of the suite's server)."""
    return tmp_path_factory.mktemp("courriels")


@pytest.fixture(scope="session")
def smtp_server(mail_dir: Path) -> Iterator[tuple[int, Keeper]]:
    """The project's SMTP server, started for the session: (port, what it received)."""
    port = _port()
    controller, keeper = start(port, mail_dir)
    yield port, keeper
    controller.stop()


@pytest.fixture(scope="session")
def mail_settings(database_url: str, base_url: str, smtp_server: tuple[int, Keeper]) -> Settings:
    """The settings of the outbox worker: the suite's database, its server's URL, the SMTP above."""
    return replace(
        Settings.from_env(database_url),
        public_url=base_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server[0],
        smtp_starttls=False,
    )


@pytest.fixture
def deliver(mail_settings: Settings, smtp_server: tuple[int, Keeper]) -> Callable[..., list[Received]]:
    """Run the worker once; the messages the SMTP server received meanwhile (for `to`, if given)."""

    def run(to: str | None = None) -> list[Received]:
        keeper = smtp_server[1]
        before = len(keeper.received)
        send_due(mail_settings)
        new = keeper.received[before:]
        return [m for m in new if to is None or to in m.rcpt_tos]

    return run
