"""Ways of serving our app compared on one request: gunicorn's worker class and threads.

    .venv/bin/python bench/workers.py [--size 100k] [--user demo-national] [--rounds 10]
        [--duration 2] [--connections 4] [--path /collections/sites/items/50000] gthread:4 sync:1

Each WORKER:THREADS starts our server (2 workers, its production configuration otherwise);
the servers then take turns, round after round, under the bench's wrk (`Connection: close`),
and the medians of the rounds are printed: req/s, and the CPU of the server and of
PostgreSQL per request. Medians of interleaved short rounds, because on a shared machine two
runs of the same server a minute apart differ by 30 % (bench/ANALYSIS.md, « Façons de servir »).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import measure
import servers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ways", nargs="+", help="WORKER:THREADS, e.g. gthread:4 or sync:1")
    parser.add_argument("--size", default="100k")
    parser.add_argument("--user", default="demo-national")
    parser.add_argument("--path", default="/collections/sites/items/50000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    url = servers.with_db(servers.server_url(), f"resorption_bench_{args.size}")
    headers = {"Authorization": f"Bearer {servers.issue_tokens(url)[args.user]}"}
    started: dict[str, servers.Server] = {}
    rounds: dict[str, list[measure.Result]] = {way: [] for way in args.ways}
    try:
        for way in args.ways:
            worker, threads = way.split(":")
            workdir = Path(tempfile.mkdtemp(prefix=f"resorption-workers-{worker}-"))
            started[way] = servers.start_ours(url, workdir, worker=worker, threads=int(threads))
        for _ in range(args.rounds):
            for way, server in started.items():
                rounds[way].append(
                    measure.wrk(
                        server.base + args.path,
                        headers,
                        args.connections,
                        args.duration,
                        server.pids(),
                        lambda: servers.backend_pids(url),
                    )
                )
    finally:
        for server in started.values():
            server.stop()
    print(f"{args.path} as {args.user}, {args.connections} connections, {args.rounds} × {args.duration} s")
    for way, results in rounds.items():
        rps = statistics.median(r.rps for r in results)
        server_ms = statistics.median(r.server_cpu_ms or 0 for r in results)
        db_ms = statistics.median(r.db_cpu_ms or 0 for r in results)
        spread = " / ".join(f"{r.rps:.0f}" for r in sorted(results, key=lambda r: r.rps))
        print(f"{way:12s} {rps:6.0f} req/s  server {server_ms:.2f} ms  PostgreSQL {db_ms:.2f} ms  ({spread})")


if __name__ == "__main__":
    main()
