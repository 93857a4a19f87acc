"""Tools of the hostile-input suite: raw HTTP requests, the app's routes, the server's health.

Requests go through `http.client` (or a bare socket for streamed bodies) so that a hostile
URL reaches the server byte for byte: `requests` would re-encode brackets, `%`, `%FF`.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.fix_server import TestServer

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Answer:
    """What the server answered (or the transport error) and how long it took."""

    status: int
    content_type: str
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def description(self) -> str:
        """The French message of an OGC exception document ("" when the body is not one)."""
        try:
            return str(json.loads(self.body).get("description", ""))
        except (ValueError, AttributeError):
            return ""


def send(
    base_url: str,
    method: str,
    target: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 60,
) -> Answer:
    """One request, `target` (path and query) sent exactly as given; a connection the server
    drops (a worker that died) is an answer of status 0."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        # skip_accept_encoding: the answer's size is what the app produced, uncompressed.
        conn.putrequest(method, target, skip_accept_encoding=True)
        all_headers = dict(headers or {})
        if body is not None or method in ("POST", "PUT", "PATCH"):
            all_headers.setdefault("Content-Length", str(len(body or b"")))
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        if response.getheader("Content-Type", "").startswith("text/event-stream"):
            # A stream of changes answers at once and lasts: its first lines are the answer.
            data = response.read1(65536)
        else:
            data = response.read()
        return Answer(response.status, response.getheader("Content-Type", ""), data, time.monotonic() - started)
    except (http.client.HTTPException, OSError) as exc:
        return Answer(0, "", repr(exc).encode(), time.monotonic() - started)
    finally:
        conn.close()


def send_streamed(
    base_url: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    size: int,
    chunked: bool,
    chunk: int = 1024 * 1024,
    timeout: float = 60,
) -> Answer:
    """A body of `size` bytes streamed from one reused buffer (never built in memory), declared
    by Content-Length or sent chunked; sending stops as soon as the server answers."""
    parts = urlsplit(base_url)
    block = b" " * chunk
    head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    started = time.monotonic()
    try:
        raw = _stream(parts.hostname, parts.port, head, block, size, chunked, timeout)
    except OSError as exc:
        return Answer(0, "", repr(exc).encode(), time.monotonic() - started)
    return _parse_response(raw, time.monotonic() - started)


def _stream(
    host: str | None, port: int | None, head: list[str], block: bytes, size: int, chunked: bool, timeout: float
) -> bytes:
    chunk = len(block)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent = 0
        try:
            while sent < size and not select.select([sock], [], [], 0)[0]:
                n = min(chunk, size - sent)
                piece = memoryview(block)[:n]
                if chunked:
                    sock.sendall(f"{n:x}\r\n".encode() + piece + b"\r\n")
                else:
                    sock.sendall(piece)
                sent += n
            if chunked and sent >= size:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: its answer is read below
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    try:
        while piece := sock.recv(65536):
            data += piece
    except ConnectionResetError:
        pass
    return bytes(data)


def _parse_response(raw: bytes, seconds: float) -> Answer:
    if not raw:
        return Answer(0, "", b"", seconds)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return Answer(status, headers.get("content-type", ""), body, seconds)


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


# -- the app's routes --------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A URL rule of the app: its pattern, methods and endpoint."""

    rule: str
    methods: tuple[str, ...]
    endpoint: str
    arguments: tuple[str, ...] = field(default=())


def app_rules(database_url: str) -> list[Rule]:
    """Every URL rule of a freshly built app (create_app changes nothing global: built here)."""
    from resorption.app import create_app
    from resorption.settings import Settings

    app = create_app(Settings.from_env(database_url))
    return [
        Rule(r.rule, tuple(sorted(r.methods - {"HEAD", "OPTIONS"})), r.endpoint, tuple(sorted(r.arguments)))
        for r in app.url_map.iter_rules()
    ]


# -- the server's health -----------------------------------------------------------------

# What gunicorn's master writes when a worker dies or is replaced.
CRASH_MARKERS = ("SIGSEGV", "SIGKILL", "SIGABRT", "SIGBUS", "Worker exited", "WORKER TIMEOUT", "Booting worker")


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, VmHWM) in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field_name} absent de /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Reset a process's peak resident memory (VmHWM) to its current size (Linux ≥ 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Health:
    """The server's workers around a block of requests: at the start, then what changed."""

    pids: list[int]
    start_rss: dict[int, int]
    crashes: list[str] = field(default_factory=list)
    peak_growth_kib: dict[int, int] = field(default_factory=dict)
    replaced: bool = False

    def problems(self, memory_bound_kib: int) -> list[str]:
        """What went wrong with the workers (empty when nothing did)."""
        found = [f"journal de gunicorn : {line}" for line in self.crashes]
        if self.replaced:
            found.append("les workers gunicorn ne sont plus les mêmes processus")
        found += [
            f"le worker {pid} a crû de {grew // 1024} Mo au plus fort (borne : {memory_bound_kib // 1024} Mo)"
            for pid, grew in self.peak_growth_kib.items()
            if grew > memory_bound_kib
        ]
        return found


@contextmanager
def watch_workers(server: TestServer) -> Iterator[Health]:
    """Around a block of hostile requests: which workers died or were replaced (gunicorn's log,
    the master's children) and how far each one's peak memory rose above where it started."""
    pids = server.worker_pids()
    for pid in pids:
        reset_peak(pid)
    log_start = server.log.stat().st_size
    health = Health(pids, {p: rss_kib(p) for p in pids})
    try:
        yield health
    finally:
        with server.log.open(encoding="utf-8", errors="replace") as fh:
            fh.seek(log_start)
            logged = fh.read()
        health.crashes = [line for line in logged.splitlines() if any(m in line for m in CRASH_MARKERS)]
        health.replaced = sorted(server.worker_pids()) != sorted(pids)
        health.peak_growth_kib = {
            pid: rss_kib(pid, "VmHWM") - health.start_rss[pid] for pid in pids if Path(f"/proc/{pid}").exists()
        }
