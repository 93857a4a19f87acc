"""More real servers for the federation tests: a second Résorption and a stock pygeoapi.

`second_database` copies the test template into a database of its own (dropped at the
end); `start_gunicorn` serves any WSGI app on a free port and waits until it answers.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests
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


@contextmanager
def start_gunicorn(
    app: str, env: Mapping[str, str], log: Path, port: int, probe: str = "/conformance"
) -> Iterator[str]:
    """Serve the WSGI `app` on `port` with one gunicorn worker; yields its URL once it answers."""
    url = f"http://127.0.0.1:{port}"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *(str(gunicorn), "--config", str(GUNICORN_CONFIG), "--bind", f"127.0.0.1:{port}"),
                *("--workers", "1", "--timeout", "120", app),
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
                    if requests.get(url + probe, timeout=10).status_code == 200:
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
