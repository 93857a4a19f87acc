"""Database fixtures: a template database built once, copied for each test session.

The template holds the migrated schema, the real territories and the default
demo data (seed 2019). It is rebuilt only when the SQL, the migrations, the
loaders or the generator change (a fingerprint is kept as the database's
comment), so a second run starts in seconds. Without DATABASE_URL the suite
uses the project's embedded PostGIS; it never skips for want of a database.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "resorption"
COLLECTIONS = ROOT / "collections"
POLICY = ROOT / "config" / "access-policy.yml"
TEMPLATE_DB = "resorption_test_template"
DEMO_SEED = 2019
DEMO_SITES = 800


def _fingerprint() -> str:
    digest = hashlib.sha256()
    files = sorted(
        [
            *PACKAGE.glob("sql/*.sql"),
            *PACKAGE.glob("migrations/versions/*.py"),
            *PACKAGE.glob("demo/*.py"),
            # The statements of the loaders that build the template (territories, demo).
            *PACKAGE.glob("sql/statements/demo_*.sql"),
            *PACKAGE.glob("sql/statements/territories.sql"),
            *COLLECTIONS.glob("*.yml"),
            PACKAGE / "territories.py",
            PACKAGE / "privileges.py",
            POLICY,
        ]
    )
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(f"{DEMO_SEED}:{DEMO_SITES}".encode())
    return digest.hexdigest()[:16]


def _with_db(url: str, dbname: str) -> str:
    """The same server URL, naming another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("DATABASE_URL", "(PostGIS intégré au projet)")
    return f"résorption: base {url.split('@')[-1]}"


@pytest.fixture(scope="session")
def server_url() -> str:
    """The PostgreSQL server the suite uses (DATABASE_URL or the embedded cluster)."""
    from resorption.embedded import resolve_database_url

    return resolve_database_url()


def _build_template(admin: psycopg.Connection, server: str, fingerprint: str) -> None:
    from resorption.catalog import load_catalog
    from resorption.demo import generate_demo
    from resorption.migrate import upgrade
    from resorption.policy import load_policy
    from resorption.privileges import sync_privileges
    from resorption.territories import load_territories

    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    url = _with_db(server, TEMPLATE_DB)
    upgrade(url)
    load_territories(url)
    sync_privileges(url, load_catalog(COLLECTIONS), load_policy(POLICY, COLLECTIONS))
    generate_demo(url, sites=DEMO_SITES, seed=DEMO_SEED)
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(TEMPLATE_DB), sql.Literal(fingerprint))
    )


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh copy of the template database for this session."""
    fingerprint = _fingerprint()
    admin_url = _with_db(server_url, "postgres")
    # One database per session, so that concurrent runs never drop each other's.
    test_db = f"resorption_test_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        # Concurrent sessions wait for the one building the template.
        admin.execute("SELECT pg_advisory_lock(hashtext('resorption_test_template'))")
        current = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (TEMPLATE_DB,),
        ).fetchone()
        if current is None or current[0] != fingerprint:
            _build_template(admin, server_url, fingerprint)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(test_db)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(test_db), sql.Identifier(TEMPLATE_DB)
            )
        )
        admin.execute("SELECT pg_advisory_unlock(hashtext('resorption_test_template'))")
    url = _with_db(server_url, test_db)
    # The open data is a snapshot of the day it was computed (sql/070_opendata.sql): the
    # template's may be empty (its migration ran before the demo data) or from an earlier day,
    # so the copy computes today's, as `resorption db setup` does after the demo data.
    from resorption.open_figures import refresh_database

    refresh_database(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(test_db)))


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct connection to the test database, to compute what the API should answer."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    """An empty database on the suite's server, dropped afterwards (a revision test builds it to
    an old revision, then upgrades it)."""
    name = f"resorption_test_scratch_{secrets.token_hex(4)}"
    admin_url = _with_db(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_db(server_url, name)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def audited_reads(db: psycopg.Connection, query: str, params: Any, wanted: int, timeout: float = 5) -> list[Any]:
    """The rows of an audit query once there are `wanted` of them (the server writes the audit
    rows of reads in batches, read_audit.py: within RESORPTION_AUDIT_FLUSH_MS, 200 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db.execute(query, params).fetchall()
        if len(rows) >= wanted or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)



@pytest.fixture
def app_connection(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection as the application's login role, as the server has."""
    from resorption.settings import app_url

    with psycopg.connect(app_url(database_url, None)) as conn:
        yield conn
        conn.rollback()
