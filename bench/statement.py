"""The statement of one request, replayed alone in PostgreSQL under its caller's settings.

    .venv/bin/python bench/statement.py [--size 100k] --user demo-gironde PATH
        [--versus USER:PATH | --variant FILE.sql] [-n 400] [--rounds 20]

The request goes once through the WSGI application (as bench/profile.py), which records what it
sends: the prelude's settings (role, scopes, user) and the read itself. The read is then run
again N times in one transaction under those settings, prepared, from one connection, and the
10th percentile of its wall time is kept: one figure per round, the median of rounds printed.
This measures what PostgreSQL spends on the statement, without Python, HTTP or the pool.

Two variants alternate round by round (the order flips each round): this machine drifts by
±30 % over a minute, so only rounds measured side by side compare.
- `--versus USER:PATH`: another caller's request (a national reader against a département's).
- `--variant FILE.sql`: the same request with the read policies that FILE sets (`ALTER POLICY
  name ON table USING (…)`, after any function they need). The policies it names are put back
  as they were (pg_policies) after each of its rounds and at exit.
"""

from __future__ import annotations

import argparse
import os
import profile as app_profile  # bench/profile.py (the script's folder comes first on the path)
import re
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
import servers

from resorption import statements

POLICY = re.compile(r"ALTER\s+POLICY\s+(\w+)\s+ON\s+([\w.]+)", re.IGNORECASE)


class Captured:
    """The settings and the read one request sent to PostgreSQL."""

    def __init__(self) -> None:
        self.settings: tuple[Any, Any] | None = None
        self.read: tuple[str, Any] | None = None


def capture(app: Any, path: str, token: str) -> Captured:
    """Send the request once through the app, recording the statements its cursors execute."""
    seen = Captured()
    execute = psycopg.Cursor.execute

    def recording(cursor: psycopg.Cursor, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, bytes):  # the reader's cached statements (reader.py)
            text = query.decode()
        else:
            text = query if isinstance(query, str) else query.as_string(cursor.connection)
        if "set_config" in text and params:
            seen.settings = (params[-2], params[-1])  # names and values, as the app sends them
        elif seen.settings is not None and seen.read is None and text.lstrip().upper().startswith("SELECT"):
            seen.read = (text, params)
        return execute(cursor, query, params, **kwargs)

    psycopg.Cursor.execute = recording  # type: ignore[method-assign]
    try:
        get = app_profile.wsgi_get(app, path, {"Authorization": f"Bearer {token}"})
        get()  # the pool, the app's caches: the second request is the one a server sends
        seen.settings = seen.read = None
        get()
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    if seen.settings is None or seen.read is None:
        raise SystemExit(f"{path} : aucune lecture après le prélude enregistrée")
    return seen


def p10_ms(conn: psycopg.Connection, seen: Captured, n: int) -> float:
    """The 10th percentile of N runs of the read, in one transaction under its settings."""
    assert seen.settings is not None and seen.read is not None
    text, params = seen.read
    times = []
    with conn.transaction():
        conn.execute(statements.load("database").prelude, seen.settings)  # the app's own
        for _ in range(n):
            started = time.perf_counter()
            conn.execute(text, params, prepare=True).fetchall()
            times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 10] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--size", default="100k")
    parser.add_argument("--user", default="demo-national")
    parser.add_argument("--versus", help="USER:PATH, another caller's request measured alongside")
    parser.add_argument("--variant", type=Path, help="SQL setting other read policies")
    parser.add_argument("-n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    url = servers.with_db(servers.server_url(), f"resorption_bench_{args.size}")
    tokens = servers.issue_tokens(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("RESORPTION_RUNTIME_DIR", "/tmp/resorption-bench-profile")
    from resorption.app import create_app

    app = create_app()
    a = capture(app, args.path, tokens[args.user])
    b, variant, restore = a, "", ""
    if args.versus:
        user, path = args.versus.split(":", 1)
        b = capture(app, path, tokens[user])
    with psycopg.connect(url, autocommit=True) as ddl, psycopg.connect(url) as conn:
        if args.variant:
            variant = args.variant.read_text()
            restore = ";\n".join(
                f"ALTER POLICY {name} ON {table} USING ({qual})"
                for name, table in POLICY.findall(variant)
                for (qual,) in ddl.execute(
                    "SELECT qual FROM pg_policies"
                    " WHERE policyname = %s AND schemaname || '.' || tablename = %s",
                    (name, table),
                )
            )
        rounds: dict[str, list[float]] = {"A": [], "B": []}
        try:
            for r in range(args.rounds):
                for label in ("A", "B") if r % 2 == 0 else ("B", "A"):
                    if variant:
                        ddl.execute(variant if label == "B" else restore)
                    p10_ms(conn, a if label == "A" else b, 50)  # plans made again after the DDL
                    rounds[label].append(p10_ms(conn, a if label == "A" else b, args.n))
        finally:
            if restore:
                ddl.execute(restore)
    names = {"A": f"{args.user} {args.path}", "B": args.versus or f"{args.user} {args.path} + {args.variant}"}
    diffs = [x - y for x, y in zip(rounds["A"], rounds["B"], strict=True)]
    for label, values in rounds.items():
        print(f"{label} {names[label]} : {statistics.median(values):.3f} ms (p10 par tour, médiane)")
    print(
        f"A − B : {statistics.median(diffs):+.3f} ms (médiane des écarts d'un même tour), "
        f"B plus rapide dans {sum(d > 0 for d in diffs)} tours sur {len(diffs)}"
    )


if __name__ == "__main__":
    main()
