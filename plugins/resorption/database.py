"""How we talk to PostGIS: one pool per process, one transaction per request.

`transaction()` opens a transaction that first sets the request's context into
PostgreSQL (`set_config(..., true)`, local to the transaction) so that the
database itself can enforce what the caller may see. This module receives
plain values; it knows nothing of principals or policies.
"""

import functools
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from resorption import metrics, replicas, statements
from resorption.errors import DatabaseUnavailable, InvalidParameter, QueryTooLong, ResorptionError
from resorption.settings import Settings

SQL = statements.load("database")
log = logging.getLogger(__name__)

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


class _SteadyAttempt(AttemptWithBackoff):
    """Reconnection attempts at most a second apart: psycopg_pool doubles its delay without
    bound, so that after a minute without the database its next attempt could come half a
    minute after the database is back. A connection attempt costs the server little."""

    MAX_DELAY = 1.0

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.MAX_DELAY)


class _Pool(ConnectionPool):
    """psycopg's pool, reconnecting steadily (`_SteadyAttempt`; psycopg-pool is pinned)."""

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing)


def get_pool(settings: Settings, url: str | None = None) -> ConnectionPool:
    """The pool of the application's login role on the primary (or on the replica `url`), created
    on first use (after fork)."""
    global _pools_pid
    url = url or settings.app_database_url
    pool = _pools.get(url)
    if pool is not None and _pools_pid == os.getpid():
        return pool
    with _lock:
        if _pools_pid != os.getpid():
            _pools.clear()
            _pools_pid = os.getpid()
        if url not in _pools:
            replica = url != settings.app_database_url
            name = "resorption-replica" if replica else "resorption"
            _pools[url] = _Pool(
                url,
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                kwargs={
                    "autocommit": False,
                    # Who is who in pg_stat_activity (on a replica: reads served there).
                    "application_name": name,
                    # A server that does not answer (host down, network cut) is given up quickly.
                    "connect_timeout": max(1, round(settings.pool_timeout_s)),
                },
                # Each connection is checked as it leaves the pool, without a round trip unless
                # its socket says something happened (`_check_idle`): after a restart of
                # PostgreSQL, the connections it closed are replaced instead of failing the
                # requests that would have drawn them.
                check=_check_idle,
                # …and none lives forever (a failover behind a stable address, a memory leak).
                max_lifetime=settings.pool_max_lifetime_s,
                timeout=settings.pool_timeout_s,
                open=True,
                name=name,
            )
            metrics.watch_pool(_pools[url])
        return _pools[url]


def _check_idle(conn: psycopg.Connection) -> None:
    """Raise when a connection leaving the pool is no longer usable; no round trip when its
    socket is quiet.

    An idle connection receives nothing: a server that shut down or restarted sent it a
    termination notice and closed it (fast shutdown), or the kernel closed it (crash), and
    either makes the socket readable. Only then is the connection asked for real (an empty
    query, which raises on a closed one); a quiet socket costs a `select` of a few
    microseconds instead of a round trip on every request. A peer that vanished without
    closing (a network cut) is caught by the first statement, which fails fast with
    `DatabaseUnavailable`, as the empty query would have.
    """
    if conn.closed:
        raise psycopg.OperationalError("connexion fermée")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


def close_pool() -> None:
    """Close every pool (tests and shutdown)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


@dataclass(frozen=True, slots=True)
class Precheck:
    """A statement whose answer must be accepted before anything the request read leaves the
    process (the check of a remembered API token): sent with the prelude of the request's
    first pipelined read, or alone before any other use of the database (`settle`). Its
    statement yields one column and at most one row (its answer; None: no row)."""

    statement: sql.SQL
    params: tuple[Any, ...]
    accept: Callable[[Any], None]  # given the first column of its row (None: no row); raises to refuse


_precheck: ContextVar[Precheck | None] = ContextVar("resorption_precheck", default=None)


def defer(check: Precheck | None) -> None:
    """Make `check` the running request's pending check (None: nothing pending)."""
    _precheck.set(check)


def settle(settings: Settings) -> None:
    """Run the pending check now, alone (one round trip), and accept its answer."""
    check = _precheck.get()
    if check is None:
        return
    _precheck.set(None)
    with pooled(settings) as conn:
        conn.autocommit = True
        try:
            row = conn.execute(check.statement, check.params).fetchone()
        finally:
            conn.autocommit = False
    check.accept(row[0] if row else None)


@contextmanager
def transaction(
    settings: Settings,
    context: Mapping[str, str] | None = None,
    role: str | None = None,
    read_only: bool = True,
    kind: str = "read",
    pipeline: bool = False,
    replica: bool = False,
    changes_data: bool = False,
) -> Iterator[psycopg.Connection]:
    """A connection inside one transaction, with `context` set as local settings.

    `kind` (read, write, export, tile) chooses the transaction's statement and lock
    timeouts (settings.Timeouts). PostgreSQL unreachable, restarting, or no connection free
    within `pool_timeout_s`: DatabaseUnavailable (503 with Retry-After), never a long wait.
    With `pipeline` (psycopg's pipeline mode), BEGIN, the prelude, the statements and COMMIT
    go in one round trip when no result is fetched inside the block: the cursors the block
    returns are read after it (a fetch inside costs a round trip of its own). Errors still
    raise, at the end of the block. For the audit log, and for the reads of a page or an item.
    Not for server-side cursors (exports), which pipeline mode forbids.
    `replica`: a read that a streaming replica may serve (`replicas.choose`); the primary
    serves it when none is fit, or when the one chosen fails. `changes_data`: a write whose WAL
    position read-your-writes follows (`replicas.note_write`).
    """
    if not pipeline or (replica and settings.replica_urls):
        # the pending check first, alone and on the primary (it may write: a token's last use),
        # before anything is read or written
        settle(settings)
    statement, params = prelude(settings, context, role, read_only, kind)
    started = time.perf_counter()
    unavailable = False
    try:
        with ExitStack() as stack:
            conn = None
            if replica:
                conn = _on_replica(stack, settings, statement, params, pipeline)
            if conn is None:
                pool = get_pool(settings)
                conn = stack.enter_context(pool.connection(timeout=_wait(settings, pool)))
                if changes_data and settings.replica_urls:
                    stack.push(_note_position(conn))  # runs after COMMIT, before the pool takes it back
                _begin(stack, conn, statement, params, pipeline, read_only)
                _note_connected(pool)
                if replica:
                    metrics.read_served("primary")
            yield conn
    except (PoolTimeout, TimeoutError) as exc:  # the pool had no connection in time
        unavailable = True
        _note_timeout(get_pool(settings))
        raise DatabaseUnavailable() from exc
    except psycopg.OperationalError as exc:  # (PoolTimeout is one too: caught above)
        unavailable = True
        raise DatabaseUnavailable() from exc
    finally:
        metrics.transaction_done(kind, time.perf_counter() - started, unavailable)


def _begin(
    stack: ExitStack,
    conn: psycopg.Connection,
    statement: sql.SQL,
    params: Any,
    pipeline: bool,
    read_only: bool = False,
) -> None:
    """Open the transaction on `conn` and run its prelude: one round trip for the whole prelude
    (it used to take one per setting); with `pipeline`, the same round trip as the statements
    (and BEGIN and COMMIT, unless `read_only`: `_pipelined`)."""
    stack.enter_context(translate_errors())
    if pipeline:
        stack.enter_context(_pipelined(conn, statement, params, _precheck.get(), explicit=not read_only))
    else:
        stack.enter_context(conn.transaction())
        conn.execute(statement, params)


def _on_replica(
    stack: ExitStack, settings: Settings, statement: sql.SQL, params: Any, pipeline: bool
) -> psycopg.Connection | None:
    """The transaction opened on the replica `replicas.choose` names, or None: then the primary.

    A replica that fails to give a connection, or to run the prelude, is marked down and the
    primary serves the read; so is one that has not replayed the client's last write in time.
    """
    choice = replicas.choose(settings)
    if choice is None:
        return None
    pool = get_pool(settings, choice.url)
    try:
        with ExitStack() as attempt:
            # Not the primary's wait: a replica that does not give a connection at once is
            # busy or out, and the primary is there.
            conn = attempt.enter_context(pool.connection(timeout=REPLICA_WAIT_S))
            if choice.wait_for is not None:
                fresh = replicas.caught_up(conn, settings, choice.wait_for)
                conn.rollback()
                if not fresh:
                    replicas.stalled(settings, choice.url, choice.wait_for)
                    return None
            _begin(attempt, conn, statement, params, pipeline, read_only=True)
            stack.enter_context(attempt.pop_all())
    except (PoolTimeout, TimeoutError):
        # Busy (every connection in use) is not down: only a pool left without any connection.
        if not pool.get_stats().get("pool_size", 0):
            replicas.mark_down(settings, choice.url)
        return None
    except psycopg.OperationalError:
        replicas.mark_down(settings, choice.url)
        return None
    metrics.read_served("replica")
    return conn


# How long a read waits for a connection of a replica's pool before the primary serves it.
REPLICA_WAIT_S = 0.5


def _note_position(conn: psycopg.Connection) -> Any:
    """An exit callback that, after a successful COMMIT, notes the WAL position it reached."""

    def note(exc_type: type[BaseException] | None, *_: Any) -> bool:
        if exc_type is None:
            try:
                conn.autocommit = True  # one statement, no transaction around it
                replicas.note_write(conn.execute(SQL.wal_position).fetchone()[0])
                conn.autocommit = False
            except psycopg.Error:
                # The write is committed: a lost position must not turn it into an error. The
                # connection, if broken, is discarded by the pool's check.
                log.warning("position du WAL non lue après une écriture : suivi des écritures perdu")
        return False

    return note


@contextmanager
def _pipelined(
    conn: psycopg.Connection,
    statement: sql.SQL,
    params: Any,
    check: Precheck | None = None,
    explicit: bool = True,
) -> Iterator[None]:
    """A transaction whose statements go to PostgreSQL in one round trip.

    psycopg's own `transaction()` waits for BEGIN, and again before COMMIT, even in pipeline
    mode (three round trips): here the connection is in autocommit mode and the pipeline sends
    everything at its end, with one Sync. `explicit`: BEGIN and COMMIT are queued with the
    statements, so a Python error raised in the block commits nothing (a write). Otherwise
    (a read-only transaction) there are none: what a pipeline sends up to its Sync is one
    implicit transaction, which PostgreSQL commits at the Sync, and the prelude's local settings
    (role, scopes, read-only) last until then; two statements fewer for each read (~0.1 ms of
    Python and of PostgreSQL for one item: bench/ANALYSIS.md). After an error (a statement's, or
    one raised in the block), whatever is left open is rolled back. The prelude (`statement`,
    `params`) opens the block; a pending `check` shares its statement (`_checked_prelude`: the
    check first, as the login role, then the settings), and its answer is accepted on the way
    out, before the caller may read what the block's statements return; a check that got no
    answer stays pending.
    """
    conn.autocommit = True
    checked = None
    if check is not None:
        _precheck.set(None)
    try:
        with conn.pipeline():
            if explicit:
                conn.execute(SQL.begin)
            if check is None:
                conn.execute(statement, params)
            else:
                checked = conn.execute(_checked_prelude(check.statement), (*check.params, *params))
            yield
            if explicit:
                conn.execute(SQL.commit)
    finally:
        try:
            conn.rollback()  # nothing to do after a COMMIT (idle), one round trip after an error
            conn.autocommit = False
        except psycopg.Error:
            conn.close()  # unusable: the pool discards a closed connection
        if check is not None:
            _accept(check, checked)


def _checked_prelude(check: sql.SQL) -> bytes:
    """The prelude with `check` inside it (`checked_prelude`), as the bytes psycopg prepares:
    composed once per check statement and process."""
    hit = _CHECKED_PRELUDES.get(id(check))
    if hit is None or hit[0] is not check:
        hit = _CHECKED_PRELUDES[id(check)] = (check, SQL.checked_prelude.format(check=check).as_bytes())
    return hit[1]


# The check statements are the few of the statement files: kept with their composed prelude
# (and so never freed, their id()s never reused).
_CHECKED_PRELUDES: dict[int, tuple[sql.SQL, bytes]] = {}


def _accept(check: Precheck, checked: psycopg.Cursor | None) -> None:
    """Accept a check's answer (its refusal wins over any other error); without one, keep it pending."""
    try:
        row = checked.fetchone() if checked is not None else None
    except psycopg.Error:
        _precheck.set(check)
        return
    check.accept(row[0] if row else None)


# While PostgreSQL is unreachable (the pool timed out while its connection attempts failed),
# requests wait for a connection only this long: an outage answers its 503s at once, not after
# `pool_timeout_s` each. The pool keeps reconnecting meanwhile, and the first request that gets
# a connection ends the outage. A pool that timed out without failed attempts is busy, not cut
# off: its requests get the full wait.
OUTAGE_WAIT_S = 0.3
_outage: dict[int, bool] = {}
_errors_seen: dict[int, int] = {}


def _wait(settings: Settings, pool: ConnectionPool) -> float:
    return OUTAGE_WAIT_S if _outage.get(id(pool)) else settings.pool_timeout_s


def _note_timeout(pool: ConnectionPool) -> None:
    errors = pool.get_stats().get("connections_errors", 0)
    if errors > _errors_seen.get(id(pool), 0):
        _outage[id(pool)] = True
    _errors_seen[id(pool)] = errors


def _note_connected(pool: ConnectionPool) -> None:
    if _outage.get(id(pool)):
        _outage[id(pool)] = False


def prelude(
    settings: Settings,
    context: Mapping[str, str] | None = None,
    role: str | None = None,
    read_only: bool = True,
    kind: str = "read",
) -> tuple[sql.SQL, tuple[str, str]]:
    """The one statement that opens a request's transaction: timeouts, read-only, role, context.

    Its parameters are the names and the values of the settings (`prelude` in
    sql/statements/database.sql), each array written as PostgreSQL's text of a `text[]`. A
    transaction is read-write by default.
    """
    limits = settings.timeouts.of(kind)
    pairs: list[tuple[str, str]] = [
        ("statement_timeout", str(limits.statement_ms)),
        ("lock_timeout", str(limits.lock_ms)),
    ]
    if read_only:
        pairs.append(("transaction_read_only", "on"))
    if role:
        pairs.append(("role", role))
    pairs.extend((context or {}).items())
    return SQL.prelude, _prelude_params(tuple(pairs))


# A caller's settings are the same from one request to the next, and psycopg took ~0.06 ms to
# adapt two Python lists of ~17 strings on every request: their texts are remembered.
@functools.lru_cache(maxsize=4096)
def _prelude_params(pairs: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The names and the values of the settings, each as a `text[]` written as text."""
    return _text_array([name for name, _ in pairs]), _text_array([value for _, value in pairs])


def _text_array(values: list[str]) -> str:
    """PostgreSQL's input text of a `text[]` of `values`: each element double-quoted, with its
    double quotes and backslashes escaped (the only characters that are special there), so that
    commas, braces, spaces or NULL-like words stay plain text."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn the SQLSTATEs a client can cause into our errors, by class, never by text."""
    try:
        yield
    except ResorptionError:
        raise
    except pg_errors.LockNotAvailable as exc:  # lock_timeout: someone else holds the row
        raise DatabaseUnavailable(
            "L'élément est en cours de modification par quelqu'un d'autre : réessayez dans un instant."
        ) from exc
    except pg_errors.QueryCanceled as exc:
        raise QueryTooLong("La requête a pris trop de temps : restreignez-la (bbox, filtre, limit).") from exc
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


@contextmanager
def pooled(settings: Settings) -> Iterator[psycopg.Connection]:
    """A pooled connection outside a caller's transaction (sign-in, sessions, readiness), with
    the same waits as `transaction`: DatabaseUnavailable at once while PostgreSQL is out."""
    settle(settings)
    pool = get_pool(settings)
    try:
        with pool.connection(timeout=_wait(settings, pool)) as conn:
            _note_connected(pool)
            yield conn
    except PoolTimeout as exc:
        _note_timeout(pool)
        raise DatabaseUnavailable() from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable() from exc


def ping(settings: Settings) -> None:
    """Whether PostgreSQL answers, through the pool (readiness): DatabaseUnavailable if not."""
    with pooled(settings) as conn:
        conn.execute(SQL.ping)
        conn.rollback()


def schema_revision(settings: Settings) -> str | None:
    """The alembic revision the database is at (readiness compares it to the code's head)."""
    with pooled(settings) as conn:
        try:
            row = conn.execute(SQL.schema_revision).fetchone()
        except (pg_errors.UndefinedTable, pg_errors.InsufficientPrivilege):
            row = None
        conn.rollback()
    return row[0] if row else None
