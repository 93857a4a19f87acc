"""Which PostgreSQL serves a read: a streaming replica when one is fit for it, else the primary.

`DATABASE_REPLICA_URLS` names hot standbys of the primary (`pg_basebackup -R`, streaming
replication). They hold the same roles, policies and functions, byte for byte, so a
transaction opened there as the caller (`SET LOCAL ROLE`, the `resorption.*` settings that
row-level security reads) sees exactly what it would see on the primary; it only may not
write. The rules, in one place:

- Only `Caller.reading()` and `Caller.exporting()` ask for a replica, and only in a request
  that reads (`begin_request`: GET and HEAD, and the processes that only read). A request
  that writes reads what it is about to change on the primary; so do the mail worker, the
  command line and everything outside a request (no `begin_request`: the primary).
- Read-your-writes: a transaction that changed data notes the primary's WAL position after its
  commit (`note_write`); the app sends it to the client (cookie `resorption_lsn`, header
  `Resorption-LSN`), which sends it back. A replica serves that client only once it has
  replayed that far, waiting up to `replica_wait_ms`; else the primary does. After its own
  write, the rest of a request reads on the primary.
- A replica that does not answer, or is behind by more than `replica_max_lag_bytes` or
  `replica_max_lag_s`, is skipped: one watcher thread per process checks each replica every
  `replica_check_s`, and a replica that fails under a request is skipped at once until its
  next good check. No request fails because a replica is down.

This module only chooses; `database.transaction` opens the connection it names.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

import psycopg

from resorption import metrics, statements
from resorption.settings import Settings

log = logging.getLogger(__name__)
SQL = statements.load("replicas")

COOKIE = "resorption_lsn"
HEADER = "Resorption-LSN"
# How long a client keeps its write position: far longer than any replica may lag (a replica
# behind by more than `replica_max_lag_s` is skipped anyway).
COOKIE_SECONDS = 300
# How often a read waits again for a replica to replay a client's write (within `replica_wait_ms`).
POLL_S = 0.005
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def parse_lsn(text: str | None) -> int | None:
    """A WAL position as PostgreSQL writes it (`16/B374D848`), as a number; None if malformed."""
    found = _LSN.match(text.strip()) if text else None
    return (int(found[1], 16) << 32) | int(found[2], 16) if found else None


def format_lsn(lsn: int) -> str:
    """The text of a WAL position, as `pg_lsn` reads it."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


# -- the running request ----------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    reads_may_lag: bool  # a request that only reads: its reads may go to a replica
    seen: int | None  # the position of the client's last write (cookie or header)
    wrote: int | None = None  # the position after this request's own last write


_request: ContextVar[_Request | None] = ContextVar("resorption_replica_request", default=None)


def begin_request(reads_may_lag: bool, sent: str | None) -> None:
    """What this request may read where: `sent` is the write position the client sent back."""
    _request.set(_Request(reads_may_lag, parse_lsn(sent)))


def note_write(lsn: str) -> None:
    """This request committed a change: its reads, and the client's next ones, follow it."""
    current = _request.get()
    if current is not None:
        current.wrote = parse_lsn(lsn)


def written() -> str | None:
    """The position after this request's writes, to send to the client; None if it wrote nothing."""
    current = _request.get()
    return format_lsn(current.wrote) if current is not None and current.wrote is not None else None


# -- the replicas' health ---------------------------------------------------------------


@dataclass(slots=True)
class _Replica:
    url: str
    fit: bool = False  # answering, in recovery, and not too far behind
    replayed: int = 0  # pg_last_wal_replay_lsn() at the last check
    # A position a read waited for in vain: reads that need it or less do not wait again on
    # this replica until a check finds it replayed (a lagging replica costs one wait, not one
    # per read).
    stalled_at: int = -1
    conn: psycopg.Connection | None = None  # the watcher's own connection


@dataclass(slots=True)
class _Watcher:
    settings: Settings
    replicas: list[_Replica]
    # (time.monotonic(), primary's WAL position) samples, oldest first: a replica's lag in
    # seconds is the age of the oldest position it has not replayed.
    samples: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    primary: psycopg.Connection | None = None
    turn: itertools.count[int] = field(default_factory=itertools.count)


_lock = threading.Lock()
_watchers: dict[tuple[str, tuple[str, ...]], _Watcher] = {}
_watchers_pid: int | None = None


def _watcher(settings: Settings) -> _Watcher:
    """This process's watcher of these replicas, started on first use (again after a fork)."""
    global _watchers_pid
    key = (settings.app_database_url, settings.replica_urls)
    watcher = _watchers.get(key)
    if watcher is not None and _watchers_pid == os.getpid():
        return watcher
    with _lock:
        if _watchers_pid != os.getpid():
            _watchers.clear()
            _watchers_pid = os.getpid()
        if key not in _watchers:
            watcher = _Watcher(settings, [_Replica(url) for url in settings.replica_urls])
            _check(watcher)  # the first request already knows which replica answers
            thread = threading.Thread(target=_watch, args=(watcher,), name="replicas", daemon=True)
            thread.start()
            _watchers[key] = watcher
        return _watchers[key]


def _watch(watcher: _Watcher) -> None:
    while True:  # a daemon thread: it ends with its process
        time.sleep(watcher.settings.replica_check_s)
        _check(watcher)


def _connect(url: str, timeout_s: float) -> psycopg.Connection:
    return psycopg.connect(
        url, autocommit=True, connect_timeout=max(2, round(timeout_s)), application_name="resorption-watch"
    )


def _check(watcher: _Watcher) -> None:
    """Measure each replica against the primary's WAL position, now."""
    settings = watcher.settings
    try:
        if watcher.primary is None or watcher.primary.closed:
            watcher.primary = _connect(settings.app_database_url, settings.pool_timeout_s)
        position = watcher.primary.execute(SQL.primary_position).fetchone()[0]
    except psycopg.Error:
        watcher.primary = None
        position = None  # the primary is out: replicas keep their last verdict
    now = time.monotonic()
    if position is not None:
        watcher.samples.append((now, parse_lsn(position) or 0))
        # Enough history to tell a lag of `replica_max_lag_s`, no more.
        while len(watcher.samples) > 2 and watcher.samples[1][0] < now - settings.replica_max_lag_s - 1:
            watcher.samples.popleft()
    for replica in watcher.replicas:
        try:
            if replica.conn is None or replica.conn.closed:
                replica.conn = _connect(replica.url, settings.pool_timeout_s)
            recovering, replayed = replica.conn.execute(SQL.replica_state).fetchone()
        except psycopg.Error:
            if replica.conn is not None:
                replica.conn.close()
            replica.conn = None
            _set_fit(replica, False, "ne répond pas")
            continue
        replica.replayed = parse_lsn(replayed) or 0
        if not recovering:  # promoted, or not a replica at all: never read from it as one
            _set_fit(replica, False, "n'est pas en réplication (promue ?)")
            continue
        if position is None:
            continue
        lag_bytes = max(0, watcher.samples[-1][1] - replica.replayed)
        unreplayed = [t for t, lsn in watcher.samples if lsn > replica.replayed]
        lag_s = now - unreplayed[0] if unreplayed else 0.0
        metrics.replica_lag(_host(replica.url), lag_bytes, lag_s)
        if lag_bytes > settings.replica_max_lag_bytes or lag_s > settings.replica_max_lag_s:
            _set_fit(replica, False, f"en retard ({lag_bytes} octets, {lag_s:.1f} s)")
        else:
            _set_fit(replica, True, "")


def _set_fit(replica: _Replica, fit: bool, why: str) -> None:
    if replica.fit != fit:
        log.warning(
            "réplique %s : %s", _host(replica.url), "de nouveau utilisée" if fit else f"écartée, {why}"
        )
    replica.fit = fit


def _host(url: str) -> str:
    return url.rsplit("@", 1)[-1]


def mark_down(settings: Settings, url: str) -> None:
    """A replica failed under a request: skipped until the watcher finds it well again."""
    for replica in _watcher(settings).replicas:
        if replica.url == url:
            _set_fit(replica, False, "a échoué sous une requête")


# -- choosing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """A replica for one read: its URL, and the write position it must have replayed first."""

    url: str
    wait_for: int | None  # None: nothing to wait for


def choose(settings: Settings) -> Choice | None:
    """The replica a read of `Caller.reading()` or `exporting()` goes to, or None for the primary."""
    current = _request.get()
    if not settings.replica_urls or current is None or not current.reads_may_lag or current.wrote is not None:
        return None
    watcher = _watcher(settings)
    fit = [r for r in watcher.replicas if r.fit]
    if not fit:
        return None
    # Round robin over the fit replicas, the first caught up with the client's write preferred.
    start = next(watcher.turn) % len(fit)
    ordered = fit[start:] + fit[:start]
    seen = current.seen
    if seen is None:
        return Choice(ordered[0].url, None)
    if watcher.samples and seen > watcher.samples[-1][1] + settings.replica_max_lag_bytes:
        # Far beyond what the primary had written at the last check: a position no write gave
        # (a client's invention) is not waited for, the primary serves it at once.
        return None
    for replica in ordered:
        if replica.replayed >= seen:
            return Choice(replica.url, None)
    waitable = [r for r in ordered if r.stalled_at < seen]
    return Choice(waitable[0].url, seen) if waitable else None


def stalled(settings: Settings, url: str, position: int) -> None:
    """A read waited in vain for the replica `url` to replay `position` (`caught_up`)."""
    for replica in _watcher(settings).replicas:
        if replica.url == url:
            replica.stalled_at = max(replica.stalled_at, position)


def caught_up(conn: psycopg.Connection, settings: Settings, position: int) -> bool:
    """Whether the replica behind `conn` replays up to `position` within `replica_wait_ms`."""
    deadline = time.monotonic() + settings.replica_wait_ms / 1000
    target = format_lsn(position)
    while True:
        if conn.execute(SQL.replayed_up_to, (target,)).fetchone()[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
