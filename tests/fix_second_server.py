"""More real servers for the federation tests: a second Résorption, a stock pygeoapi, and
servers whose answers a test writes (a source that misbehaves, a callback's receiver).

`second_database` copies the test template into a database of its own (dropped at the
end); `start_gunicorn` serves any WSGI app on a free port (over https with `local_tls`'s
certificate) and waits until it answers; `scripted_server` answers each request with a
function of the test and records every request it gets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql

from resorption.serving import GUNICORN_CONFIG
from tests.fix_db import TEMPLATE_DB, _with_db

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def second_database(database_url: str, name: str) -> Iterator[str]:
    """A new database `name` made from the test template (built by `database_url`'s fixture)."""
    admin_url = _with_db(database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # The template may not be copied while another session copies it.
        admin.execute("SELECT pg_advisory_lock(hashtext('resorption_test_template'))")
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE_DB)
                )
            )
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext('resorption_test_template'))")
    try:
        yield _with_db(database_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def add_user(database_url: str, username: str, role: str, level: str, code: str | None) -> str:
    """Create a user with an API token (valid a day) straight in the database; returns the token."""
    token = "rsp_" + secrets.token_urlsafe(32)
    with psycopg.connect(database_url) as conn:
        org = conn.execute(
            "INSERT INTO resorption.organisations (name, kind) VALUES ('Organisation distante', 'other') "
            "ON CONFLICT (name, departement_code) DO UPDATE SET kind = EXCLUDED.kind RETURNING id"
        ).fetchone()[0]
        user_id = conn.execute(
            "INSERT INTO resorption.users (username, organisation_id, role, area_level, area_code) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (username, org, role, level, code),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at) "
            "VALUES (%s, %s, %s, 'tests', now() + interval '1 day')",
            (user_id, hashlib.sha256(token.encode()).digest(), token[:8]),
        )
    return token


@dataclass(frozen=True)
class Tls:
    """A certificate for 127.0.0.1 and localhost, and the authority that signed it."""

    certificate: Path
    key: Path
    authority: Path  # what clients trust: REQUESTS_CA_BUNDLE, or requests' `verify`


def local_tls(directory: Path) -> Tls:
    """A certificate authority of the tests, and a server certificate it signs (valid a day)."""
    now = dt.datetime.now(dt.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Autorité des tests")])
    authority = certificate("Autorité des tests", authority_key, authority_name, authority_key, True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate("127.0.0.1", server_key, authority_name, authority_key, False)
    tls = Tls(directory / "serveur.pem", directory / "serveur.key", directory / "autorite.pem")
    tls.authority.write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    tls.certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tls


@contextmanager
def start_gunicorn(
    app: str,
    env: Mapping[str, str],
    log: Path,
    port: int,
    probe: str = "/conformance",
    tls: Tls | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """Serve the WSGI `app` on `port` with `workers` gunicorn workers (one by default); yields its
    URL once it answers."""
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    https = ["--certfile", str(tls.certificate), "--keyfile", str(tls.key)] if tls else []
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *(str(gunicorn), "--config", str(GUNICORN_CONFIG), "--bind", f"127.0.0.1:{port}"),
                *("--workers", str(workers), "--timeout", "120", *https, app),
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    verify = str(tls.authority) if tls else True
                    if requests.get(url + probe, timeout=10, verify=verify).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"le serveur {app} n'a pas démarré :\n{log.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Request:
    """A request a scripted server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedServer:
    """A local server that answers with the test's function, and the requests it received."""

    url: str
    requests: list[Request] = field(default_factory=list)


Answer = Callable[[BaseHTTPRequestHandler, Request], None]


@contextmanager
def scripted_server(answer: Answer, tls: Tls | None = None) -> Iterator[ScriptedServer]:
    """Serve `answer` on a free port of 127.0.0.1 (https with `tls`), recording every request."""
    port = free_port()
    served = ScriptedServer(f"{'https' if tls else 'http'}://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, self.path, dict(self.headers), self.rfile.read(length))
            served.requests.append(request)
            answer(self, request)

        do_GET = do_POST = _any

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.block_on_close = False  # a handler still dripping bytes does not hold the test
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.certificate, tls.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
