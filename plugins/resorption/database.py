"""How we talk to PostGIS: one pool per process, one transaction per request.

`transaction()` opens a transaction that first sets the request's context into
PostgreSQL (`set_config(..., true)`, local to the transaction) so that the
database itself can enforce what the caller may see. This module receives
plain values; it knows nothing of principals or policies.
"""

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool

from resorption import statements
from resorption.errors import DatabaseUnavailable, InvalidParameter, ResorptionError
from resorption.settings import Settings

SQL = statements.load("database")

_lock = threading.Lock()
# One pool per database URL (two apps of one process may use two databases), made again
# after a fork: a pool's connections belong to the process that opened them.
_pools: dict[str, ConnectionPool] = {}
_pools_pid: int | None = None


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy, which needs the psycopg 3 driver named."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def get_pool(settings: Settings) -> ConnectionPool:
    """The pool of the application's login role for these settings, created on first use (after fork)."""
    global _pools_pid
    url = settings.app_database_url
    pool = _pools.get(url)
    if pool is not None and _pools_pid == os.getpid():
        return pool
    with _lock:
        if _pools_pid != os.getpid():
            _pools.clear()
            _pools_pid = os.getpid()
        if url not in _pools:
            _pools[url] = ConnectionPool(
                url,
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                kwargs={"autocommit": False, "application_name": "resorption"},
                open=True,
                name="resorption",
            )
        return _pools[url]


def close_pool() -> None:
    """Close every pool (tests and shutdown)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


@contextmanager
def transaction(
    settings: Settings,
    context: Mapping[str, str] | None = None,
    role: str | None = None,
    read_only: bool = True,
    pipeline: bool = False,
) -> Iterator[psycopg.Connection]:
    """A connection inside one transaction, with `context` set as local settings.

    With `pipeline`, for statements whose results nobody reads (the audit log): BEGIN, the
    prelude, the statements and COMMIT go in one round trip; errors still raise, at COMMIT.
    """
    pool = get_pool(settings)
    statement, params = prelude(settings, context, role, read_only)
    try:
        with (
            pool.connection(timeout=10) as conn,
            translate_errors(),
            conn.pipeline() if pipeline else nullcontext(),
            conn.transaction(),
        ):
            # One round trip for the whole prelude (it used to take one per setting). Pipeline
            # mode would also fold BEGIN in, but it forbids the server-side cursors of exports.
            conn.execute(statement, params)
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable() from exc
    except TimeoutError as exc:  # the pool had no free connection in time
        raise DatabaseUnavailable() from exc


def prelude(
    settings: Settings,
    context: Mapping[str, str] | None = None,
    role: str | None = None,
    read_only: bool = True,
) -> tuple[sql.SQL, tuple[list[str], list[str]]]:
    """The one statement that opens a request's transaction: timeout, read-only, role, context.

    Its parameters are the names and the values of the settings (`prelude` in
    sql/statements/database.sql). A transaction is read-write by default.
    """
    pairs: list[tuple[str, str]] = [("statement_timeout", str(settings.statement_timeout_ms))]
    if read_only:
        pairs.append(("transaction_read_only", "on"))
    if role:
        pairs.append(("role", role))
    pairs.extend((context or {}).items())
    return SQL.prelude, ([name for name, _ in pairs], [value for _, value in pairs])


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn the SQLSTATEs a client can cause into our errors, by class, never by text."""
    try:
        yield
    except ResorptionError:
        raise
    except pg_errors.QueryCanceled as exc:
        raise DatabaseUnavailable(
            "La requête a pris trop de temps : restreignez-la (bbox, filtre, limit)."
        ) from exc
    except (
        pg_errors.InvalidTextRepresentation,
        pg_errors.InvalidDatetimeFormat,
        pg_errors.DatetimeFieldOverflow,
        pg_errors.NumericValueOutOfRange,
        pg_errors.InvalidRegularExpression,
        pg_errors.InvalidEscapeSequence,
        pg_errors.InvalidParameterValue,
    ) as exc:
        raise InvalidParameter(
            "Une valeur de la requête n'a pas le type attendu par la propriété interrogée."
        ) from exc
