"""The datasets and the three servers of the bench: ours, stock pygeoapi and tipg.

Each dataset is a database of the embedded cluster (`resorption_bench_100k`, `…_1m`) made
once with the project's own demo generator and reused while it holds the expected number of
sites. The anchors read the same tables as a superuser (their stock behaviour: no access
control); ours runs as its application role, with row-level security and column privileges.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV = ROOT / ".venv" / "bin"
TIPG = BENCH / ".venv-tipg" / "bin"
TOOLS = BENCH / ".venv-tools" / "bin"
WORKERS = os.cpu_count() or 2
# The one gunicorn configuration of the project (resorption.serving.GUNICORN_CONFIG).
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


def server_url() -> str:
    """The embedded cluster (or DATABASE_URL's server), started when needed."""
    from resorption.embedded import resolve_database_url

    return resolve_database_url()


def with_db(url: str, dbname: str) -> str:
    """The same server URL, naming another database (a URL: SQLAlchemy reads it too)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def ensure_dataset(server: str, sites: int, log: Path) -> str:
    """The URL of a database holding `sites` demo sites (seed 2019), generated when missing."""
    label = f"{sites // 1000}k" if sites < 1_000_000 else f"{sites // 1_000_000}m"
    url = with_db(server, f"resorption_bench_{label}")
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            count = conn.execute("SELECT count(*) FROM resorption.sites").fetchone()[0]
            actions = conn.execute("SELECT count(*) FROM resorption.actions").fetchone()[0]
        if count == sites and actions > 0:
            _migrate(url, log)
            anchor_tables(url)
            return url
    except psycopg.Error:
        pass
    print(f"génération du jeu de {sites} sites (une fois) … journal : {log}", flush=True)
    env = {**os.environ, "DATABASE_URL": url}
    with log.open("w") as out:
        subprocess.run(
            [VENV / "resorption", "db", "setup", "--sites", str(sites)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    anchor_tables(url)
    return url


def _migrate(url: str, log: Path) -> None:
    """Bring a reused dataset's schema up to date (new migrations: tiles…); a failure only warns."""
    with log.open("w") as out:
        done = subprocess.run(
            [VENV / "resorption", "db", "migrate"],
            env={**os.environ, "DATABASE_URL": url},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        print(f"attention : `resorption db migrate` a échoué sur {url} (voir {log}) ; on continue.")


# The anchors' tables: their primary key, their spatial index and the index a département
# filter uses, as their authors would set them up (a view would hide nothing, but a table is
# what they document and what their catalogs inspect best).
ANCHOR_INDEXES = {
    "sites": ("location", "departement_code"),
    "actions": ("footprint", "departement_code"),
}


def anchor_tables(url: str) -> None:
    """Schema `bench`: plain copies of sites and actions as the anchors serve them, one geometry
    each, with a primary key and indexes; made again when the counts differ from the source.

    Stock pygeoapi fails on a second geometry column (sites.outline) and neither anchor knows
    what to do with a tsvector: those columns are left out, every other one is copied.
    """
    drop = {"sites": {"outline", "search"}, "actions": {"search"}}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        for table, left_out in drop.items():
            target = sql.Identifier("bench", table)
            kind = conn.execute(
                "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'bench' AND c.relname = %s",
                (table,),
            ).fetchone()
            source = conn.execute(sql.SQL("SELECT count(*) FROM resorption.{}").format(sql.Identifier(table)))
            wanted = source.fetchone()[0]
            if kind and kind[0] == "r":
                have = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
                if have == wanted:
                    continue
            if kind:
                conn.execute(sql.SQL("DROP VIEW {}" if kind[0] == "v" else "DROP TABLE {}").format(target))
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'resorption' AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
                if r[0] not in left_out
            ]
            conn.execute(
                sql.SQL("CREATE TABLE {} AS SELECT {} FROM resorption.{}").format(
                    target, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
                )
            )
            conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(target))
            geometry, departement = ANCHOR_INDEXES[table]
            conn.execute(
                sql.SQL("CREATE INDEX ON {} USING gist ({})").format(target, sql.Identifier(geometry))
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} ({}, id)").format(target, sql.Identifier(departement)))
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(target))


def issue_tokens(url: str) -> dict[str, str]:
    """Fresh API tokens for the demo accounts we bench as: national, one département (with
    justice procedures, so its reads are audited), one who reads no sensitive field."""
    from resorption.accounts import issue_token

    os.environ["DATABASE_URL"] = url
    return {
        user: issue_token(url, user, label="bench").token
        for user in ("demo-national", "demo-gironde", "demo-observateur-93")
    }


def port_range() -> range | None:
    """`RESORPTION_BENCH_PORTS` (e.g. `54371-54379`): the ports the bench's servers may listen on,
    so that a bench beside other runs on a shared machine stays in its own range."""
    spec = os.environ.get("RESORPTION_BENCH_PORTS", "").strip()
    if not spec:
        return None
    first, _, last = spec.partition("-")
    return range(int(first), int(last or first) + 1)


def free_port() -> int:
    """A port nobody listens on: in `port_range()` when set, else one the system chooses."""
    candidates = port_range() or (0,)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"aucun port libre dans RESORPTION_BENCH_PORTS={os.environ['RESORPTION_BENCH_PORTS']}")


@dataclass
class Server:
    """One running server: its kind, its base URL and its process (a process group)."""

    kind: str  # "ours" | "pygeoapi" | "tipg"
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    headers: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        """The server's processes: its root and every descendant (workers)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def _start(kind: str, command: list[str], env: dict[str, str], port: int, workdir: Path) -> Server:
    log = workdir / f"{kind}.log"
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole, by its id
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{base}/conformance", timeout=10).status_code == 200:
                return Server(kind, base, process, log)
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{kind} n'a pas démarré :\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def _gunicorn(
    bin_dir: Path,
    app: str,
    port: int,
    config: Path | None = None,
    worker: str | None = None,
    threads: int | None = None,
) -> list[str]:
    # One worker per core. Ours runs with its production configuration (its worker, threads,
    # request limits, French refusals) unless `worker` and `threads` name another way of
    # serving (bench/workers.py); stock pygeoapi with gunicorn's `sync` worker.
    return [
        str(bin_dir / "gunicorn"),
        *(["--config", str(config)] if config else []),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        *(["--worker-class", worker] if worker else []),
        *(["--threads", str(threads)] if threads else []),
        "--timeout",
        "120",
        app,
    ]


def start_ours(
    url: str,
    workdir: Path,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    worker: str | None = None,
    threads: int | None = None,
) -> Server:
    """Our server, with access control on (as in production), with `extra_env` (replicas…);
    `worker` and `threads`: gunicorn's worker class and threads per worker, when not those of
    the production configuration."""
    port = port or free_port()
    runtime = workdir / "runtime"
    runtime.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
        **(extra_env or {}),
    }
    command = _gunicorn(VENV, "resorption.app:wsgi()", port, GUNICORN_CONFIG, worker, threads)
    return _start("ours", command, env, port, workdir)


def start_pygeoapi(url: str, workdir: Path) -> Server:
    """Stock pygeoapi 0.24, its PostgreSQL provider over our tables."""
    port = free_port()
    info = psycopg.conninfo.conninfo_to_dict(url)
    config = workdir / "pygeoapi-stock.yml"
    config.write_text(
        Template((BENCH / "pygeoapi-stock.yml").read_text()).substitute(
            PORT=port, PGPORT=info.get("port", 5432), DBNAME=info["dbname"]
        )
    )
    openapi = workdir / "pygeoapi-openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run(
        [str(TOOLS / "pygeoapi"), "openapi", "generate", str(config), "--output-file", str(openapi)],
        env=env,
        check=True,
        capture_output=True,
    )
    # gunicorn's default `sync` worker: one item ~15 % faster than `gthread` × 4 (bench/ANALYSIS.md,
    # « L'ancre tipg à son meilleur »).
    command = _gunicorn(TOOLS, "pygeoapi.flask_app:APP", port, worker="sync")
    return _start("pygeoapi", command, env, port, workdir)


def start_tipg(url: str, workdir: Path) -> Server:
    """tipg (FastAPI + asyncpg) with its own defaults, one uvicorn worker per core, on uvicorn's
    fast parser and loop (httptools, uvloop): named, so that a venv without them fails instead of
    falling back to the pure-Python ones (h11, asyncio) without a word."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TIPG_DB_SCHEMAS": '["bench"]',
        "TIPG_DB_TABLES": '["bench.sites", "bench.actions"]',
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        # Its catalog of tables is read again after this many seconds (300 by default): longer
        # than any run, so that no measurement pays for it.
        "TIPG_CATALOG_TTL": "86400",
    }
    command = [
        str(TIPG / "uvicorn"),
        "tipg.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--log-level",
        "warning",
        "--no-access-log",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
    ]
    return _start("tipg", command, env, port, workdir)


def backend_pids(url: str, exclude: int | None = None) -> list[int]:
    """PostgreSQL backends connected to the bench database (their CPU is the database's)."""
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
        ).fetchall()
    return [r[0] for r in rows if r[0] != exclude]


def settle(url: str, timeout: float = 60) -> None:
    """Wait until the statements left running by the last measurement end (wrk abandons slow
    requests; the server finishes them), so that they do not slow down the next one."""
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchone()[0]
            if not busy:
                return
            time.sleep(0.2)


def require_tools() -> None:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} introuvable : lancez bench/run, qui l'installe.")
