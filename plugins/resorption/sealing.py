"""Positions the service hands to clients and takes back, sealed (Fernet: encrypted and
authenticated) with the database's own key (sql/215_stream_key.sql), the same for every worker.

In clear they would be counters of the whole database: an event's outbox and transaction ids
(api/events.py) count every territory's changes, a WAL position after a write
(read-your-writes, replicas.py) measures how much everyone wrote since. Sealed, a client can
only give back what it got; anything else (garbled, forged, from another database) reads as
nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading

import psycopg
from cryptography.fernet import Fernet, InvalidToken

from resorption import database, statements
from resorption.settings import Settings

SQL = statements.load("sealing")
# Longer than anything this service seals: refused before any decryption.
MAX_SEALED = 1000
_secrets: dict[str, str] = {}
_lock = threading.Lock()


@functools.cache
def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def secret_of(conn: psycopg.Connection, database_url: str) -> str:
    """The database's key, read once per process (through the application's login role)."""
    with _lock:
        if database_url not in _secrets:
            row = conn.execute(SQL.key).fetchone()
            assert row is not None
            _secrets[database_url] = row[0]
        return _secrets[database_url]


def secret(settings: Settings) -> str:
    """The database's key, from a pooled connection the first time in this process."""
    known = _secrets.get(settings.database_url)
    if known is None:
        with database.pooled(settings) as conn:
            known = secret_of(conn, settings.database_url)
            conn.rollback()
    return known


def seal(secret: str, text: str) -> str:
    """`text` sealed, URL- and header-safe."""
    return _fernet(secret).encrypt(text.encode()).decode()


def unseal(secret: str, raw: str | None) -> str | None:
    """What `raw` holds if this database sealed it; None otherwise."""
    if not raw or len(raw) > MAX_SEALED:
        return None
    try:
        return _fernet(secret).decrypt(raw.strip().encode()).decode()
    except (InvalidToken, UnicodeDecodeError, ValueError):
        return None
