"""A wake-up call at each commit that wrote events: one LISTEN connection per worker process.

The streams of changes (api/events.py) wait on it instead of polling the outbox every half
second: the triggers' NOTIFY (sql/210_outbox.sql) arrives at commit and every stream of the
process reads the outbox at once. One connection per process, not per stream (a stream holds
none while it waits). A waiter still reads after its timeout: an event may become readable
without a NOTIFY (the outbox's horizon moves when an older transaction that wrote nothing
ends), and while the connection is lost the waiters simply poll; it reconnects by itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import psycopg

from resorption import outbox

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 2.0


class CommitSignal:
    """A counter of the commits seen, and a condition to wait for the next one."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._seen = 0
        self._changed = threading.Condition()
        threading.Thread(target=self._listen, name="resorption-commit-signal", daemon=True).start()

    @property
    def seen(self) -> int:
        """How many wake-ups so far: what a waiter passes to `wait` after reading."""
        return self._seen

    def wait(self, seen: int, timeout: float) -> int:
        """Return at the first wake-up after `seen`, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._seen != seen, timeout)
            return self._seen

    def _wake(self) -> None:
        with self._changed:
            self._seen += 1
            self._changed.notify_all()

    def _listen(self) -> None:
        while True:
            try:
                with psycopg.connect(
                    self._url, autocommit=True, application_name="resorption-events", connect_timeout=5
                ) as conn:
                    conn.execute(outbox.SQL.listen)
                    self._wake()  # what was committed while it was not listening
                    for _ in conn.notifies():
                        self._wake()
            except psycopg.Error as exc:
                log.warning("écoute des validations interrompue (%s) : reprise dans 2 s", exc)
            time.sleep(RECONNECT_SECONDS)


_signals: dict[tuple[int, str], CommitSignal] = {}
_lock = threading.Lock()


def commit_signal(database_url: str) -> CommitSignal:
    """This process's signal for that database, started on first use (after gunicorn's fork)."""
    key = (os.getpid(), database_url)
    with _lock:
        if key not in _signals:
            _signals[key] = CommitSignal(database_url)
        return _signals[key]
