"""The audit of sensitive reads, written in batches by one thread per process.

A read of owners, justice procedures or finances leaves an audit row (`reader._audit_read`).
Written in a transaction of its own, that row cost every such read a second transaction: as
much server time as the read of one item itself. The row is instead queued here, with the
time of the read and who made it, and a thread of the process writes what is queued in one
transaction (`caller.write_read_audits`, `resorption.audit_reads`) at most
`RESORPTION_AUDIT_FLUSH_MS` later.

What a batch may lose: the rows queued when the process is killed outright (SIGKILL, a crash),
at most the last `flush_ms` of reads. A normal stop (gunicorn's graceful shutdown, the end of a
command) writes them first (`atexit`). PostgreSQL unreachable: the rows stay queued and the
thread tries again, up to `MAX_QUEUED` rows; beyond, the oldest are dropped and said in the log.
Writes and exports are audited in their own transaction as before (`Caller.audit`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from resorption import audit
from resorption.identity import Principal
from resorption.settings import Settings

log = logging.getLogger(__name__)
# Writes rows in one transaction (Caller's `write_read_audits`: only the caller opens them).
Writer = Callable[[Settings, list[dict[str, Any]]], None]

# Rows kept while PostgreSQL is unreachable (a few MB at most).
MAX_QUEUED = 20_000
# Rows written in one statement.
BATCH = 500


class ReadAudit:
    """The queue of one process's audit rows of reads, and the thread that writes them."""

    def __init__(self, settings: Settings, write: Writer) -> None:
        self.settings = settings
        self.write = write
        self.delay = settings.audit_flush_ms / 1000
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def add(self, who: Principal, collection: str, item_id: Any, groups: set[str], count: int) -> None:
        """Queue the audit row of a read made now by `who` (the names resorption.audit records)."""
        info = audit.current_request()
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "user_id": who.user_id,
            "username": who.username or "anonyme",
            "role": who.role or None,
            "collection": collection,
            "item_id": None if item_id is None else str(item_id),
            "groups": sorted(groups),
            "method": info.method if info else None,
            "path": info.path if info else None,
            "client": info.client if info else None,
            "detail": {"features": count},
        }
        with self._wake:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                log.error("journal d'audit : file pleine, la plus ancienne lecture auditée est perdue")
            self._queue.append(entry)
            self._start()
            self._wake.notify()

    def flush(self) -> None:
        """Write every queued row now (at exit, and for the tests); errors are logged."""
        while self._write_batch():
            pass

    def _start(self) -> None:
        # A thread belongs to the process that started it: a forked worker starts its own.
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="resorption-read-audit", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        pause = self.delay
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
            time.sleep(pause)  # the reads of the next moments join this batch
            try:
                while self._write_batch(raise_errors=True):
                    pass
                pause = self.delay
            except Exception:  # kept queued; tried again, less often
                log.exception("journal d'audit : écriture des lectures impossible, nouvel essai")
                pause = min(max(pause * 2, 1.0), 30.0)

    def _write_batch(self, raise_errors: bool = False) -> bool:
        """Write up to BATCH rows; whether some were written. On failure they go back in front."""
        with self._wake:
            rows = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
        if not rows:
            return False
        try:
            self.write(self.settings, rows)
        except Exception:
            with self._wake:
                self._queue.extendleft(reversed(rows))
            if raise_errors:
                raise
            log.exception("journal d'audit : écriture des lectures impossible")
            return False
        return True


_audits: dict[str, ReadAudit] = {}
_lock = threading.Lock()


def of(settings: Settings, write: Writer) -> ReadAudit:
    """The process's queue for the database of `settings`, whose batches `write` writes."""
    with _lock:
        found = _audits.get(settings.database_url)
        if found is None:
            found = _audits[settings.database_url] = ReadAudit(settings, write)
        return found


def flush_all() -> None:
    """Write what every queue holds (at the end of the process)."""
    for queue in list(_audits.values()):
        queue.flush()


atexit.register(flush_all)
