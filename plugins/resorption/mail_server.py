"""The project's own SMTP server, for the demo and the tests (aiosmtpd): it keeps every message.

`make demo` starts it beside the embedded PostgreSQL (`resorption serve`, when no
RESORPTION_SMTP_HOST is set): it listens on localhost only and writes each message it receives,
as received, to `<folder>/<time>-<n>.eml`; the local page /courriels lists and shows them.
The tests start one on a port of their own and read what it received (`Received`: the SMTP
envelope and the message). It relays nothing: nothing ever leaves the machine.

    python -m resorption.mail_server [--port PORT] [--folder .local/courriels]

Its port is ``$RESORPTION_SMTP_PORT``, else the embedded PostgreSQL's port + 200 (the broker
takes + 100): two checkouts with their own embedded cluster never share a mail server.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from resorption import embedded
from resorption.settings import PROJECT_ROOT

DEFAULT_FOLDER = PROJECT_ROOT / ".local" / "courriels"


def default_port() -> int:
    """``$RESORPTION_SMTP_PORT``, else the embedded PostgreSQL's port + 200."""
    return int(os.environ.get("RESORPTION_SMTP_PORT") or embedded.default_port() + 200)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already answers on that port (a demo started earlier keeps its server)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the server received it: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    path: Path
    message: EmailMessage


@dataclass
class Keeper:
    """The aiosmtpd handler: each message to a .eml file of `folder`, and to `received`."""

    folder: Path
    received: list[Received] = field(default_factory=list)
    _counter: Any = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message; 250 tells the client it is safe with us."""
        content: bytes = envelope.original_content or envelope.content
        with self._lock:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter):05d}.eml"
            path = self.folder / name
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            message = message_from_bytes(content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), path, message))
        return "250 Message accepted for delivery"


def start(port: int, folder: Path, host: str = "127.0.0.1") -> tuple[Controller, Keeper]:
    """Start a server in a thread of this process; `controller.stop()` ends it."""
    keeper = Keeper(folder)
    controller = Controller(keeper, hostname=host, port=port)
    controller.start()
    return controller, keeper


def read_folder(folder: Path) -> list[tuple[str, EmailMessage]]:
    """The messages of a folder, newest first, by file name (for the local page)."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append((path.name, message))
    return found


def main(argv: list[str] | None = None) -> None:
    """Run a server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Serveur SMTP local de Résorption (démo, tests).")
    parser.add_argument("--port", type=int, default=default_port())
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args(argv)
    controller, _ = start(args.port, args.folder)
    print(f"SMTP local sur 127.0.0.1:{args.port}, messages dans {args.folder}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
