"""gunicorn's worker for the app: one request at a time per process, its streams aside.

gunicorn's `gthread` served up to `threads` requests at once in each process. On the bench's
2 cores that cost 15 to 25 % of the throughput of a small request (one item, one action)
against one request at a time per process: the threads' requests contend for the GIL and
for the database, and `gthread` hands each connection from its main thread to a thread and
back (bench/ANALYSIS.md, « Façons de servir »; `bench/workers.py` measures it).

`Worker` is gunicorn's `sync` worker run by `threads` threads, of which one only, the holder
of the process's slot, waits for a connection and serves it. The other processes' slot
holders wait on the same listening socket (EPOLLEXCLUSIVE: the kernel wakes one of them), so
that a busy process leaves new connections to a free one. A response that streams (changes
over SSE, exports) gives the slot back before its body is written (`leave_slot`, from the
app's `after_request`): another thread serves the next request, and a stream can last for
minutes without holding the process; RESORPTION_SSE_MAX_STREAMS keeps threads free for them.

What `gthread` did that this worker keeps:
- a connection that sends nothing yet (browsers open some in advance) does not hold a thread:
  it waits in the slot holder's poller, and is closed after `keepalive` seconds of silence;
- a client that stops sending or reading mid-request is dropped after `CLIENT_SILENCE_S`;
- a stop (SIGTERM) lets the requests under way finish, `graceful_timeout` at most;
- requests refused by gunicorn itself answer in French (`serving.french_refusals`).
Once a response is written, the slot is given back before gunicorn's graceful close, which
waits for the client's FIN: that wait, a scheduling delay of the client's (~0.1 ms, up to 2 s
for one that never closes), held the whole process (bench/ANALYSIS.md).
Like `sync`, every response closes its connection (no keep-alive): a reverse proxy keeps the
clients' connections alive, and a new connection to the app costs a few microseconds.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

# The slot of this process: held by the thread that waits for a connection or serves one.
_slot = threading.Semaphore(1)
_holding = threading.local()

# Seconds a client may stay silent (sending its request, reading the answer) before its
# connection is dropped: the read timeout of the database's own requests (settings.Timeouts).
CLIENT_SILENCE_S = 30.0
# Seconds between two looks of a waiting thread at whether the worker is stopping.
_TICK_S = 1.0


def leave_slot() -> None:
    """Give the process's slot back before a long response streams (no-op elsewhere: the test
    client, the command line, or a thread that already left it)."""
    if getattr(_holding, "slot", False):
        _holding.slot = False
        _slot.release()


class Worker(SyncWorker):
    """gunicorn's sync worker, served by `threads` threads: one request at a time, streams aside."""

    def run(self) -> None:
        self._poller = select.epoll()
        self._listeners: dict[int, socket.socket] = {}
        self._silent: dict[int, tuple[socket.socket, Any, Any, float]] = {}
        for listener in self.sockets:
            listener.setblocking(False)  # shared with the other workers: accept never waits
            self._poller.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
            self._listeners[listener.fileno()] = listener
        threads = [
            threading.Thread(target=self._serve, name=f"resorption-http-{n}", daemon=True)
            for n in range(max(1, self.cfg.threads))
        ]
        for thread in threads:
            thread.start()
        while self.alive:
            self.notify()
            if not self.is_parent_alive():
                self.alive = False
                break
            time.sleep(_TICK_S)
        # Stopping: the threads finish the request they serve, then leave their loop.
        deadline = time.monotonic() + self.cfg.graceful_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for client, *_ in self._silent.values():
            util.close(client)
        self._poller.close()

    def _serve(self) -> None:
        while self.alive:
            if not _slot.acquire(timeout=_TICK_S):
                continue
            _holding.slot = True
            try:
                connection = self._next_connection()
                if connection is not None:
                    listener, client, address = connection
                    client.settimeout(CLIENT_SILENCE_S)
                    self.handle(listener, client, address)  # gunicorn's: answers errors, closes
            except Exception:  # a thread that died would leave the worker deaf
                self.log.exception("Erreur en attendant une connexion")
                time.sleep(0.1)  # out of descriptors (EMFILE): give the others time to close
            finally:
                leave_slot()

    def handle_request(self, listener: Any, req: Any, client: socket.socket, addr: Any) -> None:
        """gunicorn's, then the slot is given back: the answer is written, and what follows is
        gunicorn's graceful close, which waits for the client to close its side (up to 2 s).
        Waiting holds this thread only; another one serves the next request meanwhile."""
        try:
            super().handle_request(listener, req, client, addr)
        finally:
            leave_slot()

    def _next_connection(self) -> tuple[socket.socket, socket.socket, Any] | None:
        """The next connection with a request to read (listener, client, address), or None
        after a tick without one. Only the slot holder calls it."""
        events = self._poller.poll(_TICK_S, 1)
        self._close_silent()
        if not events:
            return None
        fd = events[0][0]
        listener = self._listeners.get(fd)
        if listener is None:  # a silent connection spoke
            self._poller.unregister(fd)
            client, listener, address, _ = self._silent.pop(fd)
            return listener, client, address
        try:
            client, address = listener.accept()  # a blocking socket (Python's default timeout)
        except OSError as exc:  # another process took it
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                return None
            raise
        util.close_on_exec(client)
        if not _has_spoken(client):
            # Nothing sent yet: the poller watches it, the slot serves others meanwhile.
            self._silent[client.fileno()] = (client, listener, address, time.monotonic())
            self._poller.register(client.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
            return None
        return listener, client, address

    def _close_silent(self) -> None:
        """Close the connections silent for `keepalive` seconds (gunicorn's setting, 2 s)."""
        if not self._silent:
            return
        limit = time.monotonic() - max(self.cfg.keepalive, 1)
        for fd, (client, _, _, since) in list(self._silent.items()):
            if since < limit:
                del self._silent[fd]
                self._poller.unregister(fd)
                util.close(client)


def _has_spoken(client: socket.socket) -> bool:
    """Whether the client has sent something (or closed): one look, without waiting."""
    try:
        client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset: gunicorn's handling closes it
    return True
