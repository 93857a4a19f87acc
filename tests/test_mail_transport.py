"""The outbox worker against real SMTP servers (aiosmtpd): STARTTLS and credentials, backoff, two
workers at once.

A server of this test requires STARTTLS (its certificate is trusted through SSL_CERT_FILE, as an
operator's own CA would be) and a login: the worker upgrades, signs in and delivers; with wrong
credentials, or without STARTTLS (the password is never sent in clear), the message waits in
the outbox, each failure doubling the wait. Two workers running together send each message once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from resorption.errors import ConfigurationError
from resorption.mail import send_due
from resorption.mail_server import Keeper, Received
from resorption.settings import Settings

LOGIN, SECRET = "resorption", "mot-de-passe-smtp"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp de test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Recorder:
    """Keeps what arrives (a Keeper) and how each session came: (TLS, signed in)."""

    keeper: Keeper
    sessions: list[tuple[bool, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.append((session.ssl is not None, bool(session.authenticated)))
        return await self.keeper.handle_DATA(server, session, envelope)


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        LOGIN.encode(),
        SECRET.encode(),
    )
    return AuthResult(success=good, handled=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Recorder]]:
    """An SMTP server that requires STARTTLS and a login; its certificate trusted by this process."""
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    recorder = Recorder(Keeper(tmp_path / "recus"))
    port = _free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    controller.start()
    yield port, recorder
    controller.stop()


def _queue(database_url: str, email: str) -> str:
    with psycopg.connect(database_url) as conn:
        return str(
            conn.execute(
                "INSERT INTO resorption.mail_outbox (kind, recipient, subject, body_text, body_html) "
                "VALUES ('test', %s, 'Essai du transport', 'Texte', '<p>Texte</p>') RETURNING message_key",
                (email,),
            ).fetchone()[0]
        )


def _row(database_url: str, key: str) -> tuple[int, float, str | None, bool]:
    """(attempts, seconds until the next attempt, last error, sent)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT attempts, extract(epoch FROM next_attempt_at - now())::float, last_error, "
            "sent_at IS NOT NULL FROM resorption.mail_outbox WHERE message_key = %s",
            (key,),
        ).fetchone()


def _due_now(database_url: str, key: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE resorption.mail_outbox SET next_attempt_at = now() WHERE message_key = %s", (key,))


def test_starttls_and_credentials_or_the_message_waits_doubling(
    tls_server: tuple[int, Recorder],
    mail_settings: Settings,
    database_url: str,
    deliver: Callable[..., list[Received]],
) -> None:
    port, recorder = tls_server
    deliver()  # whatever other tests left goes to the suite's server
    key = _queue(database_url, f"tls-{secrets.token_hex(3)}@exemple.fr")
    secure = replace(
        mail_settings, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
        smtp_username=LOGIN, smtp_password=SECRET,
    )  # fmt: skip
    # wrong credentials: refused, kept, retried in a minute
    assert send_due(replace(secure, smtp_password="pas-le-bon")).failed == 1
    attempts, wait, error, sent = _row(database_url, key)
    assert (attempts, sent) == (1, False) and 50 < wait <= 60 and "SMTPAuthenticationError" in error
    # no STARTTLS: the server offers no login in clear, the password never leaves; then two minutes
    _due_now(database_url, key)
    assert send_due(replace(secure, smtp_starttls=False)).failed == 1
    attempts, wait, error, sent = _row(database_url, key)
    assert (attempts, sent) == (2, False) and 110 < wait <= 120, error
    assert recorder.sessions == [] and recorder.keeper.received == []
    # the right settings: upgraded to TLS, signed in, delivered once with its Message-ID
    _due_now(database_url, key)
    assert send_due(secure).sent == 1
    assert recorder.sessions == [(True, True)]
    assert [m.message["Message-ID"].startswith(f"<{key}@") for m in recorder.keeper.received] == [True]
    assert _row(database_url, key)[3] is True
    assert send_due(secure).sent == 0


def test_two_workers_at_once_send_each_message_once(
    mail_settings: Settings, database_url: str, smtp_server: tuple[int, Keeper], deliver: Callable[..., Any]
) -> None:
    deliver()
    keys = {_queue(database_url, f"paire-{i}-{secrets.token_hex(2)}@exemple.fr") for i in range(24)}
    keeper = smtp_server[1]
    before = len(keeper.received)
    results = []
    workers = [threading.Thread(target=lambda: results.append(send_due(mail_settings))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    arrived = [m.message["Message-ID"][1:].split("@")[0] for m in keeper.received[before:]]
    assert sorted(k for k in arrived if k in keys) == sorted(keys)  # each once
    assert sum(r.sent for r in results) == len(arrived) and len(results) == 2


def test_smtp_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    for name, value in {
        "RESORPTION_SMTP_HOST": "smtp.exemple.gouv.fr",
        "RESORPTION_SMTP_STARTTLS": "on",
        "RESORPTION_SMTP_USER": "resorption",
        "RESORPTION_SMTP_PASSWORD": "secret",
        "RESORPTION_MAIL_FROM": "Résorption <ne-pas-repondre@exemple.gouv.fr>",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RESORPTION_SMTP_PORT", raising=False)
    s = Settings.from_env(database_url)
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls, s.smtp_username, s.smtp_password) == (
        "smtp.exemple.gouv.fr", 587, True, "resorption", "secret",
    )  # fmt: skip
    assert s.mail_sender == "Résorption <ne-pas-repondre@exemple.gouv.fr>"
    monkeypatch.setenv("RESORPTION_SMTP_STARTTLS", "off")
    with pytest.raises(ConfigurationError, match="STARTTLS"):  # a password never goes in clear
        Settings.from_env(database_url)
    monkeypatch.delenv("RESORPTION_SMTP_PASSWORD")
    with pytest.raises(ConfigurationError, match="RESORPTION_SMTP_PASSWORD"):
        Settings.from_env(database_url)
