"""Where our server's time goes, in process (Flask's test client), for one request path.

    .venv/bin/python bench/profile.py [--size 100k] [--user demo-national] [-n 300] [--cost] PATH

Default: pyinstrument's call tree over N requests (the database time shows as psycopg's waits).
`--cost`: per request, the CPU of this process (Python: Flask, pygeoapi, our code, psycopg),
the CPU of the PostgreSQL backends serving it (from /proc), the round trips to PostgreSQL
(libpq's trace: one per Sync or simple Query the client sends) and the statements sent.
`--wsgi`: the requests call the WSGI application itself with one prepared environ, instead of
Flask's test client (which builds each request, ~0.2 ms): the CPU is then the server's alone.
pyinstrument comes from bench/.venv-tools (same Python), so the project's .venv stays as it is.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.extend(glob.glob(str(BENCH / ".venv-tools/lib/python3.*/site-packages")))

import servers  # noqa: E402
from measure import cpu_ms, spent  # noqa: E402


def _traced_connections(trace_dir: Path) -> list[Any]:
    """Every psycopg connection opened from now on writes libpq's protocol trace to a file."""
    import psycopg

    opened: list[Any] = []
    connect = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def traced(cls: Any, *args: Any, **kwargs: Any) -> Any:
        conn = connect(cls, *args, **kwargs)
        out = (trace_dir / f"{len(opened)}.trace").open("w")
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        opened.append(out)
        return conn

    psycopg.Connection.connect = classmethod(traced)  # type: ignore[method-assign,assignment]
    return opened


def _client_messages(trace_dir: Path) -> collections.Counter[str]:
    """The messages the client sent, by type, over every trace file."""
    counts: collections.Counter[str] = collections.Counter()
    for path in trace_dir.glob("*.trace"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] == "F":
                counts[parts[2].split(" ", 1)[0]] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--size", default="100k")
    parser.add_argument("--user", default="demo-national")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--cost", action="store_true", help="CPU and round trips per request")
    parser.add_argument("--wsgi", action="store_true", help="call the WSGI app, not the test client")
    args = parser.parse_args()
    url = servers.with_db(servers.server_url(), f"resorption_bench_{args.size}")
    token = servers.issue_tokens(url)[args.user]
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("RESORPTION_RUNTIME_DIR", "/tmp/resorption-bench-profile")
    trace_dir = Path(tempfile.mkdtemp(prefix="resorption-trace-"))
    traces = _traced_connections(trace_dir) if args.cost else []
    from resorption.app import create_app

    app = create_app()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    get = wsgi_get(app, args.path, headers) if args.wsgi else lambda: client.get(args.path, headers=headers)
    for _ in range(20):  # warm-up: pool, prepared statements, caches
        response = client.get(args.path, headers=headers)
        assert response.status_code == 200, response.data[:500]
        get()
    if not args.cost:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(args.n):
            get()
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    for out in traces:
        out.flush()
    before_messages = _client_messages(trace_dir)
    backends = servers.backend_pids(url)
    db_before, started, wall = cpu_ms(backends), time.process_time(), time.perf_counter()
    for _ in range(args.n):
        get()
    python_ms = (time.process_time() - started) * 1000 / args.n
    wall_ms = (time.perf_counter() - wall) * 1000 / args.n
    db = spent(db_before, cpu_ms(backends)) / args.n
    for out in traces:
        out.flush()
    sent = _client_messages(trace_dir) - before_messages
    trips = (sent["Sync"] + sent["Query"]) / args.n
    statements = (sent["Execute"] + sent["Query"]) / args.n
    print(
        f"{args.path} as {args.user}: Python {python_ms:.2f} ms CPU, PostgreSQL {db:.2f} ms CPU, "
        f"wall {wall_ms:.2f} ms, {trips:.1f} round trips, {statements:.1f} statements per request"
    )
    messages = ", ".join(f"{k} {v / args.n:.1f}" for k, v in sorted(sent.items()))
    print(f"  client messages per request: {messages}")


def wsgi_get(app: Any, path: str, headers: dict[str, str]) -> Any:
    """A function sending the request to the WSGI app itself (environ built once) and reading
    its whole answer."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, headers=headers).get_environ()

    def get() -> bytes:
        answer = app(dict(environ), lambda status, headers, exc_info=None: None)
        try:
            return b"".join(answer)
        finally:
            getattr(answer, "close", lambda: None)()

    return get


if __name__ == "__main__":
    main()
