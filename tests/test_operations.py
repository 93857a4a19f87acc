"""Running it like a public service: health, readiness, metrics, request ids and logs, the
database's faults and timeouts, the purger (README « Exploitation »).

The faults of a database that restarts under load, graceful shutdown and backups are in
tests/test_resilience.py (a cluster of their own).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import requests

from resorption import broker
from resorption.app import create_app
from resorption.settings import Settings, TransactionLimits
from tests.fix_second_server import free_port, second_database
from tests.fix_server import TestServer
from tests.fix_users import TestUser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings.from_env(database_url)


@pytest.fixture(scope="module", autouse=True)
def _close_pools() -> Iterator[None]:
    """The pools of the databases nobody listens to would try to reconnect for minutes."""
    yield
    from resorption.database import close_pool

    close_pool()


def _down(settings: Settings) -> Settings:
    """The same settings, with a database nobody listens to (PostgreSQL down)."""
    port = free_port()
    down = f"postgresql://resorption_app@127.0.0.1:{port}/resorption"
    return replace(settings, database_url=down, app_database_url=down)


# -- liveness and readiness ----------------------------------------------------------------


def _broker_check() -> dict[str, str]:
    """What readiness says of the broker: checked (and up) when there is one, else nothing."""
    return {"broker": "ok"} if broker.reachable_url() else {}


def test_liveness_and_readiness_answer_anyone_without_data(anonymous: requests.Session) -> None:
    r = anonymous.get("/sante")
    assert r.status_code == 200 and r.json() == {"statut": "vivant"}
    r = anonymous.get("/pret")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["statut"] == "prêt"
    # The broker is checked when one is there (the suite's, once a test started it); the test
    # server sends no e-mail through a relay (RESORPTION_SMTP_HOST unset): no SMTP check.
    assert body["verifications"] == {"base": "ok", "migrations": "ok", **_broker_check()}
    assert r.headers["Cache-Control"] == "no-store"
    # Nothing about the database but its state: no address, no version, no count.
    assert "127.0.0.1" not in r.text and "resorption_" not in r.text


def test_readiness_says_not_ready_when_the_database_is_down(settings: Settings) -> None:
    client = create_app(settings).test_client()
    down = create_app(_down(settings)).test_client()
    assert client.get("/pret").status_code == 200
    started = time.monotonic()
    r = down.get("/pret")
    assert time.monotonic() - started < settings.pool_timeout_s * 2 + 2
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(settings.retry_after_s)
    assert r.get_json() == {
        "statut": "pas prêt",
        "verifications": {"base": "échec", "migrations": "échec", **_broker_check()},
    }
    # Liveness does not look at the database: restarting the process would not help.
    assert down.get("/sante").status_code == 200


def test_readiness_fails_when_the_schema_is_not_the_codes(settings: Settings, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        current = conn.execute("SELECT version_num FROM public.alembic_version").fetchone()[0]
        conn.execute("UPDATE public.alembic_version SET version_num = '0001'")
        try:
            r = create_app(settings).test_client().get("/pret")
        finally:
            conn.execute("UPDATE public.alembic_version SET version_num = %s", (current,))
    assert r.status_code == 503
    assert r.get_json()["verifications"]["migrations"] == "échec"
    assert r.get_json()["verifications"]["base"] == "ok"


def test_a_part_registers_its_own_readiness_check(settings: Settings) -> None:
    """The broker or the mail server (other parts) add theirs: a TCP service that does not answer."""
    from resorption import health

    closed = f"mqtt://127.0.0.1:{free_port()}"
    health.register("essai", health.service_check(lambda s: closed))
    try:
        r = create_app(settings).test_client().get("/pret")
    finally:
        health.unregister("essai")
    assert r.status_code == 503
    assert r.get_json()["verifications"]["essai"] == "échec"
    assert create_app(settings).test_client().get("/pret").status_code == 200


# -- the database down: 503 at once, with Retry-After, in French ---------------------------


BASIC = {"Authorization": "Basic " + base64.b64encode(b"quelqu-un:secret").decode()}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/collections/regions/items", {}),  # anonymous: used to hang 10 s before its 503
        ("/collections/regions/items", BASIC),
        ("/collections/sites/items?limit=5", BASIC),
        ("/collections/sites/items/1", BASIC),
    ],
)
def test_a_database_down_answers_503_quickly_with_retry_after(
    settings: Settings, path: str, headers: dict[str, str]
) -> None:
    client = create_app(_down(settings)).test_client()
    for attempt in range(3):  # the first request waits for the pool; the next know the outage
        started = time.monotonic()
        r = client.get(path, headers=headers)
        elapsed = time.monotonic() - started
        assert r.status_code == 503, r.get_data(as_text=True)
        assert elapsed < (settings.pool_timeout_s + 2 if attempt == 0 else 1.5), (attempt, elapsed)
        assert r.headers["Retry-After"] == str(settings.retry_after_s)
        body = r.get_json()
        assert body["code"] == "ServiceUnavailable"
        assert "momentanément indisponible" in body["description"]
        assert body["requestId"] == r.headers["X-Request-ID"]
        text = r.get_data(as_text=True)
        assert "Traceback" not in text and "psycopg" not in text and "127.0.0.1" not in text


def test_a_browser_gets_a_page_while_the_database_is_down(settings: Settings) -> None:
    client = create_app(_down(settings)).test_client()
    r = client.get("/collections/regions/items?f=html", headers={"Accept": "text/html"})
    assert r.status_code == 503
    # a signed-in browser (its session cookie is looked up in the database) too
    client.set_cookie("resorption_session", "une-session-quelconque")
    r = client.get("/carte/sites/nouveau", headers={"Accept": "text/html"})
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(settings.retry_after_s)
    assert r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "Service momentanément indisponible" in page
    assert "Vos données sont en sécurité" in page
    # In the DSFR like every page (its stylesheet, its header), French, without Bootstrap.
    assert "/static/vendor/dsfr/dsfr.min.css" in page and 'class="fr-header"' in page
    assert '<html lang="fr"' in page and "bootstrap" not in page
    assert r.headers["X-Request-ID"] in page
    assert "Traceback" not in page


# -- timeouts per kind of transaction ------------------------------------------------------


def test_each_kind_of_transaction_has_its_timeouts(settings: Settings, users: dict[str, TestUser]) -> None:
    from resorption.authentication import principal_of_user
    from resorption.caller import Caller

    app = create_app(settings)
    with app.app_context():
        principal = principal_of_user(users["national-admin-nation"].username, settings)
        caller = Caller.of(principal, settings)
        seen = {}
        for kind, opening in (
            ("read", caller.reading),
            ("tile", lambda: caller.reading(kind="tile")),
            ("export", caller.exporting),
            ("write", caller.writing),
        ):
            with opening() as conn:
                seen[kind] = conn.execute(
                    "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
                ).fetchone()
    assert seen == {"read": ("30s", "5s"), "tile": ("10s", "2s"), "export": ("10min", "10s"),
                    "write": ("15s", "3s")}


def test_a_write_waits_for_a_locked_row_no_longer_than_its_lock_timeout(
    settings: Settings, database_url: str, users: dict[str, TestUser]
) -> None:
    """A site another transaction holds: 503 with Retry-After after the writes' lock_timeout."""
    timeouts = dict(settings.timeouts.by_kind)
    timeouts["write"] = TransactionLimits(statement_ms=15_000, lock_ms=300)
    app = create_app(replace(settings, timeouts=replace(settings.timeouts, by_kind=tuple(timeouts.items()))))
    client = app.test_client()
    admin = users["national-admin-nation"].headers
    with psycopg.connect(database_url) as holder:
        site_id = holder.execute(
            "SELECT id FROM resorption.sites WHERE status = 'open' ORDER BY id LIMIT 1"
        ).fetchone()[0]
        etag = client.get(f"/collections/sites/items/{site_id}", headers=admin).headers["ETag"]
        holder.execute("SELECT 1 FROM resorption.sites WHERE id = %s FOR UPDATE", (site_id,))
        started = time.monotonic()
        r = client.patch(
            f"/collections/sites/items/{site_id}",
            json={"properties": {"population_total": 12}},
            headers={**admin, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
        )
        elapsed = time.monotonic() - started
        holder.rollback()
    assert r.status_code == 503, r.get_data(as_text=True)
    assert elapsed < 3, elapsed
    assert r.headers["Retry-After"]
    assert "en cours de modification" in r.get_json()["description"]


# -- request ids, metrics, logs of the suite's gunicorn -------------------------------------


def test_every_answer_has_a_request_id_and_keeps_a_sane_one(anonymous: requests.Session) -> None:
    r = anonymous.get("/collections/regions/items?limit=1")
    assert len(r.headers["X-Request-ID"]) == 32
    r = anonymous.get("/collections/regions/items?limit=1", headers={"X-Request-ID": "lb-2f6a9c01-aa"})
    assert r.headers["X-Request-ID"] == "lb-2f6a9c01-aa"
    # An id that could forge log lines or fill them is replaced.
    for insane in ("court", "a" * 200, "x\u00e9y-12345678", "abc def 12345"):
        r = anonymous.get("/collections/regions/items?limit=1", headers={"X-Request-ID": insane.encode("utf-8")})
        assert r.headers["X-Request-ID"] != insane and len(r.headers["X-Request-ID"]) == 32
    r = anonymous.get("/collections/nulle-part/items", headers={"X-Request-ID": "client-abcdef12"})
    assert r.status_code == 404
    assert r.json()["requestId"] == "client-abcdef12"


def _log_lines(log: Path, request_id: str) -> list[dict]:
    deadline = time.monotonic() + 5
    while True:
        lines = []
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{") and request_id in line:
                lines.append(json.loads(line))
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_one_json_line_per_request_without_secrets(
    test_server: TestServer, users: dict[str, TestUser], database_url: str
) -> None:
    admin = users["national-admin-nation"]
    secrets = [admin.token, "MotDePasse-Tres-Secret-42", "jeton-en-parametre-987654"]
    basic = base64.b64encode(f"{admin.username}:{secrets[1]}".encode()).decode()
    cases = [
        ("requete-jeton-0001", {"Authorization": f"Bearer {admin.token}"}, 200),
        ("requete-basic-0002", {"Authorization": f"Basic {basic}"}, 401),
        ("requete-cookie-003", {"Cookie": f"resorption_session={secrets[2]}"}, 401),
    ]
    for request_id, headers, status in cases:
        r = requests.get(
            f"{test_server.url}/collections/sites/items",
            params={"limit": 1, "q": secrets[2]},  # a secret in the query string is never logged
            headers={**headers, "X-Request-ID": request_id},
            timeout=30,
        )
        assert r.status_code == status, r.text
    with psycopg.connect(database_url) as conn:
        admin_id = conn.execute(
            "SELECT id FROM resorption.users WHERE username = %s", (admin.username,)
        ).fetchone()[0]
    for request_id, _, status in cases:
        lines = [line for line in _log_lines(test_server.log, request_id) if line.get("route")]
        assert len(lines) == 1, lines
        line = lines[0]
        assert line["request_id"] == request_id
        assert line["route"] == "/collections/<path:collection_id>/items"
        assert line["path"] == "/collections/sites/items"
        assert line["status"] == status and line["method"] == "GET"
        assert isinstance(line["duration_ms"], float)
        assert line["principal_id"] == (admin_id if request_id == "requete-jeton-0001" else None)
    text = test_server.log.read_text(encoding="utf-8", errors="replace")
    for secret in secrets:
        assert secret not in text


def test_metrics_count_requests_by_route_and_status(test_server: TestServer, anonymous: requests.Session) -> None:
    for _ in range(3):
        anonymous.get("/collections/regions/items?limit=1")
    anonymous.get("/collections/nulle-part/items")
    r = anonymous.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    route = 'route="/collections/<path:collection_id>/items"'
    assert any(
        line.startswith("resorption_http_requests_total{") and route in line and 'status="200"' in line
        for line in text.splitlines()
    ), text[:2000]
    assert any(line.startswith("resorption_http_requests_total{") and 'status="404"' in line
               for line in text.splitlines())
    assert "resorption_http_request_duration_seconds_bucket{" in text
    assert 'resorption_db_transaction_duration_seconds_count{kind="read"}' in text
    assert 'resorption_db_pool_connections{state="size"}' in text
    assert "# TYPE resorption_jobs gauge" in text
    # A path a client invents never becomes a series of its own.
    assert "nulle-part" not in text


def test_metrics_are_for_the_allowed_networks_or_the_secret(settings: Settings) -> None:
    closed = create_app(replace(settings, metrics_networks=(), metrics_token="secret-des-metriques")).test_client()
    r = closed.get("/metrics")
    assert r.status_code == 403
    assert "RESORPTION_METRICS_NETWORKS" in r.get_json()["description"]
    assert closed.get("/metrics", headers={"Authorization": "Bearer autre-chose"}).status_code == 403
    r = closed.get("/metrics", headers={"Authorization": "Bearer secret-des-metriques"})
    assert r.status_code == 200 and "resorption_http_requests" in r.get_data(as_text=True)
    other = create_app(replace(settings, metrics_networks=("10.0.0.0/8",))).test_client()
    assert other.get("/metrics").status_code == 403  # the test client comes from 127.0.0.1


def test_metrics_count_jobs_by_status_without_naming_them(settings: Settings, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO resorption_jobs.jobs (identifier, process_id, owner, status, progress, created, "
            "finished) VALUES ('metrique-1', 'export-sites', 'quelqu-un-de-precis', 'failed', 100, now(), now())"
        )
    try:
        text = create_app(settings).test_client().get("/metrics").get_data(as_text=True)
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DELETE FROM resorption_jobs.jobs WHERE identifier = 'metrique-1'")
    failed = [line for line in text.splitlines() if line.startswith('resorption_jobs{status="failed"}')]
    assert failed and float(failed[0].split()[-1]) >= 1
    assert "quelqu-un-de-precis" not in text and "metrique-1" not in text


def test_metrics_tell_the_outbox_lag_of_each_publisher(settings: Settings, database_url: str) -> None:
    """Events a publisher has not confirmed (past its cursor), and the age of the oldest one."""
    name = f"metrique-{os.getpid()}"
    client = create_app(settings).test_client()

    def lag() -> dict[str, float]:
        text = client.get("/metrics").get_data(as_text=True)
        values = {}
        for metric in ("events", "seconds"):
            prefix = f'resorption_outbox_lag_{metric}{{publisher="{name}"}} '
            values[metric] = float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[-1])
        assert "# TYPE resorption_outbox_lag_events gauge" in text
        return values

    # A position past every event committed so far: its window starts at a transaction of now
    # (the horizon could be held back by a long transaction of another database of the cluster).
    now = "SELECT pg_current_xact_id()"
    with psycopg.connect(database_url, autocommit=True) as conn:
        position = conn.execute(now).fetchone()[0]
        conn.execute(
            "INSERT INTO resorption.outbox_cursors (name, since, until) VALUES (%s, %s, %s)",
            (name, position, position),
        )
        event = None
        try:
            assert lag() == {"events": 0, "seconds": 0}
            # An event of 30 seconds ago that this publisher has not confirmed (site -1: nobody's).
            event = conn.execute(
                "INSERT INTO resorption.outbox (collection, item_id, operation, at) "
                "VALUES ('sites', -1, 'update', now() - interval '30 seconds') RETURNING id"
            ).fetchone()[0]
            behind = lag()
            assert behind["events"] == 1 and 30 <= behind["seconds"] < 120
            # Confirmed: the publisher's window moved past it.
            position = conn.execute(now).fetchone()[0]
            conn.execute(
                "UPDATE resorption.outbox_cursors SET since = %s, until = %s WHERE name = %s",
                (position, position, name),
            )
            assert lag() == {"events": 0, "seconds": 0}
        finally:
            conn.execute("DELETE FROM resorption.outbox_cursors WHERE name = %s", (name,))
            if event is not None:
                conn.execute("DELETE FROM resorption.outbox WHERE id = %s", (event,))
    assert name not in client.get("/metrics").get_data(as_text=True)


def test_the_metrics_add_up_the_workers_of_gunicorn(
    database_url: str, tmp_path: Path, anonymous: requests.Session
) -> None:
    """Multiprocess mode: 2 workers, 40 requests; the counter says 40 whichever worker answers."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # A file left by a former run is emptied at start.
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_999999.db").write_bytes(b"ancien")
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with (tmp_path / "gunicorn.log").open("w") as log:
        process = subprocess.Popen(
            [str(gunicorn), "--config", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "resorption.app:wsgi()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/sante", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        assert not (tmp_path / "metrics" / "counter_999999.db").exists()

        def hit() -> None:
            for _ in range(10):
                assert requests.get(url + "/collections/regions/items?limit=1", timeout=30).status_code == 200

        # Rounds of 4 parallel clients until both workers have answered (the kernel decides
        # which worker accepts a connection): the sum must then count every request.
        rounds = 0
        while True:
            threads = [threading.Thread(target=hit) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rounds += 1
            pids = {p.name.rsplit("_", 1)[-1] for p in (tmp_path / "metrics").glob("counter_*.db")}
            if len(pids) == 2 or rounds == 10:
                break
        assert len(pids) == 2, pids  # both workers answered and wrote their own values
        text = requests.get(url + "/metrics", timeout=30).text
        line = next(
            line for line in text.splitlines()
            if line.startswith("resorption_http_requests_total{")
            and "/collections/<path:collection_id>/items" in line and 'method="GET"' in line
        )
        assert float(line.split()[-1]) == 40.0 * rounds, line
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- the purger ------------------------------------------------------------------------------


@pytest.fixture
def purged_database(database_url: str) -> Iterator[str]:
    """A database of its own (a copy of the template): the purger's anonymisation cannot be undone."""
    with second_database(database_url, f"resorption_purge_{os.getpid()}") as url:
        yield url


def test_the_purger_forgets_what_has_had_its_time(purged_database: str) -> None:
    database_url = purged_database
    with psycopg.connect(database_url) as conn:
        org = conn.execute(
            "INSERT INTO resorption.organisations (name, kind) VALUES ('Purge', 'other') RETURNING id"
        ).fetchone()[0]
        user_id = conn.execute(
            "INSERT INTO resorption.users (username, organisation_id, role, area_level) "
            "VALUES ('purge-utilisateur', %s, 'national_admin', 'nation') RETURNING id",
            (org,),
        ).fetchone()[0]
        # a session expired two days ago, one still open
        for name, expires in (("vieille", "now() - interval '2 days'"), ("vive", "now() + interval '1 day'")):
            conn.execute(
                "INSERT INTO resorption.web_sessions (id_hash, user_id, csrf_token, created_at, "
                "last_seen_at, idle_timeout, expires_at) VALUES (sha256(%s::bytea), %s, repeat('c', 32), "
                f"{expires} - interval '3 days', {expires} - interval '1 day', interval '8 hours', {expires})",
                (f"purge-{name}".encode(), user_id),
            )
        # a finished job of 40 days ago, a recent one, a running old one
        for ident, status, age in (("purge-vieux", "successful", 40), ("purge-recent", "successful", 2),
                                   ("purge-en-cours", "running", 40)):
            conn.execute(
                "INSERT INTO resorption_jobs.jobs (identifier, process_id, owner, status, progress, created, "
                "finished, mimetype) VALUES (%s, 'export-sites', 'x', %s, 100, "
                "timezone('UTC', now()) - make_interval(days => %s), "
                "timezone('UTC', now()) - make_interval(days => %s), 'text/csv')",
                (ident, status, age, age),
            )
            # its file, in parts beside the job (sql/105_job_files.sql)
            for part in range(3):
                conn.execute(
                    "INSERT INTO resorption_jobs.job_files (job_id, part, data) VALUES (%s, %s, 'contenu'::bytea)",
                    (ident, part),
                )
        conn.execute(
            "INSERT INTO resorption.audit_log (at, username, action) VALUES "
            "(now() - interval '400 days', 'purge-audit', 'read'), (now() - interval '10 days', 'purge-audit', 'read')"
        )
        conn.execute(
            "INSERT INTO resorption.sign_in_counters (kind, username, address, failures, forget_at) "
            "VALUES ('pair', 'purge-compteur', '192.0.2.1', 3, now() - interval '1 hour')"
        )
        # a private site closed 2 years ago, with an owner through several versions; a private
        # site closed last month, and an open one, keep theirs
        commune = conn.execute("SELECT commune_code FROM resorption.sites LIMIT 1").fetchone()[0]
        ids = {}
        for name, closed in (("ancien", "2 years"), ("recent", "1 month"), ("ouvert", None)):
            ids[name] = conn.execute(
                "INSERT INTO resorption.sites (commune_code, declared_at, location, owner_type, owner_name) "
                "SELECT %s, '2020-01-01', location, 'private', 'M. Dupont-Purge' FROM resorption.sites "
                "WHERE commune_code = %s LIMIT 1 RETURNING id",
                (commune, commune),
            ).fetchone()[0]
            conn.commit()
            conn.execute("UPDATE resorption.sites SET owner_name = 'Mme Durand-Purge' WHERE id = %s", (ids[name],))
            conn.commit()
            if closed:
                conn.execute(
                    "UPDATE resorption.sites SET status = 'closed_by_justice', "
                    f"closed_at = (now() - interval '{closed}')::date WHERE id = %s",
                    (ids[name],),
                )
                conn.commit()
    with psycopg.connect(database_url) as conn:
        due = conn.execute(
            "SELECT count(*) FROM resorption.sites WHERE owner_type = 'private' AND owner_name IS NOT NULL "
            "AND status <> 'open' AND closed_at < (now() - interval '12 months')::date"
        ).fetchone()[0]
    assert due >= 1  # ours, and any of the demo data
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "resorption"), "purger"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = " ".join(done.stderr.split())  # (the console wraps its lines)
    assert f"(sites privés fermés depuis plus de 12 mois) : {due} ;" in report, report
    with psycopg.connect(database_url) as conn:
        def count(statement: str, *params: object) -> int:
            return conn.execute(statement, params).fetchone()[0]

        assert count("SELECT count(*) FROM resorption.web_sessions WHERE id_hash = sha256('purge-vieille'::bytea)") == 0
        assert count("SELECT count(*) FROM resorption.web_sessions WHERE id_hash = sha256('purge-vive'::bytea)") == 1
        jobs = {r[0] for r in conn.execute(
            "SELECT identifier FROM resorption_jobs.jobs WHERE identifier LIKE 'purge-%'").fetchall()}
        assert jobs == {"purge-recent", "purge-en-cours"}
        # the old job's file went with it; the others keep theirs
        files = dict(conn.execute(
            "SELECT job_id, count(*) FROM resorption_jobs.job_files WHERE job_id LIKE 'purge-%' GROUP BY job_id"
        ).fetchall())
        assert files == {"purge-recent": 3, "purge-en-cours": 3}
        assert count("SELECT count(*) FROM resorption.audit_log WHERE username = 'purge-audit'") == 1
        assert count("SELECT count(*) FROM resorption.sign_in_counters WHERE username = 'purge-compteur'") == 0
        # The old closed site's owner is gone, from the site and from every version.
        assert count("SELECT count(*) FROM resorption.sites WHERE id = %s AND owner_name IS NULL",
                     ids["ancien"]) == 1
        assert count("SELECT count(*) FROM resorption.sites_history WHERE id = %s AND owner_name IS NOT NULL",
                     ids["ancien"]) == 0
        assert count("SELECT count(*) FROM resorption.sites_history WHERE id = %s", ids["ancien"]) >= 4
        last = conn.execute(
            "SELECT changed_by, changed_fields FROM resorption.sites_history WHERE id = %s "
            "ORDER BY version_id DESC LIMIT 1", (ids["ancien"],)).fetchone()
        assert last == ("purge", ["owner_name"])
        # Versions still never overlap.
        assert count(
            "SELECT count(*) FROM resorption.sites_history a JOIN resorption.sites_history b "
            "ON a.id = b.id AND a.version_id < b.version_id AND a.valid && b.valid WHERE a.id = %s",
            ids["ancien"]) == 0
        # The sites' counts (appended by each statement above) folded into one row per département,
        # and per block of ids.
        assert conn.execute(
            "SELECT departement_code, sites FROM resorption.site_counts ORDER BY 1").fetchall() == conn.execute(
            "SELECT departement_code, count(*) FROM resorption.sites GROUP BY 1 ORDER BY 1").fetchall()
        assert conn.execute(
            "SELECT departement_code, first_id, sites FROM resorption.site_blocks ORDER BY 1, 2"
        ).fetchall() == conn.execute(
            "SELECT departement_code, id & ~4095::bigint, count(*) FROM resorption.sites GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        for kept in ("recent", "ouvert"):
            assert count("SELECT count(*) FROM resorption.sites WHERE id = %s AND owner_name IS NOT NULL",
                         ids[kept]) == 1
            assert count(
                "SELECT count(*) FROM resorption.sites_history WHERE id = %s AND owner_name IS NOT NULL",
                ids[kept]) >= 2
    # Twice in a row: nothing more to do.
    again = subprocess.run(
        [str(Path(sys.executable).parent / "resorption"), "purger"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert again.returncode == 0
    assert "(sites privés fermés depuis plus de 12 mois) : 0 ;" in " ".join(again.stderr.split())
