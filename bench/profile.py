"""Where our server's time goes: pyinstrument over N requests, in process (Flask's test client).

    .venv/bin/python bench/profile.py [--size 100k] [--user demo-national] [-n 300] PATH

pyinstrument comes from bench/.venv-tools (same Python), so the project's .venv stays as it is.
Prints the call tree; the database time shows as time spent in psycopg's waits.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.extend(glob.glob(str(BENCH / ".venv-tools/lib/python3.*/site-packages")))

import servers  # noqa: E402
from pyinstrument import Profiler  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--size", default="100k")
    parser.add_argument("--user", default="demo-national")
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    url = servers.with_db(servers.server_url(), f"resorption_bench_{args.size}")
    token = servers.issue_tokens(url)[args.user]
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("RESORPTION_RUNTIME_DIR", "/tmp/resorption-bench-profile")
    from resorption.app import create_app

    client = create_app().test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(20):  # warm-up: pool, prepared statements, caches
        assert client.get(args.path, headers=headers).status_code == 200
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(args.n):
        client.get(args.path, headers=headers)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
