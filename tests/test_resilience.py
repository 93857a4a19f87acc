"""Data safe and faults survived, on a PostgreSQL cluster of the tests' own (README « Exploitation »).

The cluster is started by the project's own code (resorption.embedded) on a free port, and
its database is a RESTORE of a backup of the suite's database (`resorption db sauvegarder`
then `resorption db restaurer`): the round trip is the first test. The cluster is then
restarted under a load of reads and writes, and a gunicorn is stopped during a slow request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from resorption import embedded
from tests.fix_second_server import free_port
from tests.fix_users import TestUser

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BORDEAUX = (-0.5792, 44.8378)


@dataclass(frozen=True)
class Spare:
    """The tests' own cluster: where it lives, its database (restored from a backup)."""

    root: Path
    port: int
    url: str
    dump: Path


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "resorption"), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def spare(
    database_url: str, users: dict[str, TestUser], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Spare]:
    work = tmp_path_factory.mktemp("spare")
    dump = work / "sauvegarde.dump"
    env = {**os.environ, "DATABASE_URL": database_url}
    done = _cli("db", "sauvegarder", str(dump), env=env)
    assert done.returncode == 0, done.stderr
    root, port = work / "postgres", free_port()
    server = embedded.ensure_cluster(root, port)
    url = server.rsplit("/", 1)[0] + "/resorption_restauree"
    embedded.ensure_database(url)
    try:
        done = _cli("db", "restaurer", str(dump), "--base", url, env=env)
        assert done.returncode == 0, done.stderr
        assert "Base restaurée et vérifiée" in " ".join(done.stderr.split())
        yield Spare(root, port, url, dump)
    finally:
        embedded.stop_cluster(root)


# -- backup and restore ----------------------------------------------------------------------


def test_a_backup_restores_into_an_empty_database_with_the_same_data(spare: Spare, database_url: str) -> None:
    import json

    manifest = json.loads((spare.dump.parent / (spare.dump.name + ".json")).read_text())
    assert manifest["format"] == "pg_dump custom" and manifest["size"] == spare.dump.stat().st_size
    counts = (
        "SELECT (SELECT count(*) FROM resorption.sites), (SELECT count(*) FROM resorption.sites_history), "
        "(SELECT count(*) FROM resorption.actions), (SELECT count(*) FROM resorption.users), "
        "(SELECT md5(string_agg(id || coalesce(name, '') || status, ',' ORDER BY id)) FROM resorption.sites), "
        "(SELECT version_num FROM public.alembic_version)"
    )
    with psycopg.connect(database_url) as original, psycopg.connect(spare.url) as restored:
        before = original.execute(counts).fetchone()
        after = restored.execute(counts).fetchone()
    assert before[5] == manifest["revision"]
    # (the suite's database may have been written since the backup: compare with the dump's)
    assert after[5] == before[5]
    assert after[0] > 0 and after[3] > 0


def test_a_restore_never_goes_over_a_database(spare: Spare) -> None:
    done = _cli("db", "restaurer", str(spare.dump), "--base", spare.url, env=dict(os.environ))
    assert done.returncode != 0
    assert "n'est pas vide" in " ".join(done.stderr.split())


def test_a_damaged_backup_is_refused(spare: Spare, tmp_path: Path) -> None:
    damaged = tmp_path / "abimee.dump"
    damaged.write_bytes(spare.dump.read_bytes()[:-100])
    (tmp_path / "abimee.dump.json").write_text((spare.dump.parent / (spare.dump.name + ".json")).read_text())
    target = spare.url.rsplit("/", 1)[0] + "/resorption_abimee"
    embedded.ensure_database(target)
    done = _cli("db", "restaurer", str(damaged), "--base", target, env=dict(os.environ))
    assert done.returncode != 0
    assert "ne correspond pas à son manifeste" in " ".join(done.stderr.split())


# -- a gunicorn on the spare cluster -----------------------------------------------------------


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    log: Path


def _serve(spare: Spare, tmp_path: Path, workers: int = 2, **extra: str) -> Served:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": spare.url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(tmp_path),
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--timeout", "120", "resorption.app:wsgi()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/pret", timeout=5).status_code == 200:
                return Served(url, process, log)
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()  # a server that never answered must not outlive the test
            process.wait(timeout=30)
            raise AssertionError(log.read_text())
        time.sleep(0.2)


def _stop(served: Served) -> None:
    if served.process.poll() is None:
        served.process.terminate()
        try:
            served.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            served.process.kill()


def _feature(i: int) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {"name": f"Redémarrage {i}", "declared_at": "2024-03-01"},
    }


def test_a_restart_of_postgresql_under_load_costs_only_503s(
    spare: Spare, users: dict[str, TestUser], tmp_path: Path
) -> None:
    """4 readers and 4 writers while PostgreSQL restarts: every answer is a success or a 503
    with Retry-After, every acknowledged write is there after, service is back within 5 s."""
    served = _serve(spare, tmp_path)
    admin = users["national-admin-nation"].headers
    statuses: Counter[str] = Counter()
    bad: list[str] = []
    created: list[int] = []
    successes: list[float] = []  # when each success came back
    lock = threading.Lock()
    stop = threading.Event()

    def record(kind: str, r: requests.Response | None, error: str | None = None) -> None:
        with lock:
            if r is None:
                bad.append(f"{kind}: {error}")
                return
            statuses[f"{kind} {r.status_code}"] += 1
            if r.status_code == 503:
                if not r.headers.get("Retry-After") or r.json().get("code") != "ServiceUnavailable":
                    bad.append(f"{kind}: 503 sans Retry-After ou sans exception OGC : {r.text[:200]}")
            elif r.status_code >= 300:
                bad.append(f"{kind}: {r.status_code} {r.text[:200]}")
            else:
                successes.append(time.monotonic())

    def reader(i: int) -> None:
        path = "/collections/regions/items?limit=3" if i % 2 else "/collections/sites/items?limit=20"
        headers = {} if i % 2 else admin
        while not stop.is_set():
            try:
                record("lecture", requests.get(served.url + path, headers=headers, timeout=15))
            except requests.RequestException as exc:
                record("lecture", None, repr(exc))

    def writer(i: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                r = requests.post(served.url + "/collections/sites/items", json=_feature(i * 10_000 + n),
                                  headers=admin, timeout=15)
            except requests.RequestException as exc:
                record("écriture", None, repr(exc))
                continue
            record("écriture", r)
            if r.status_code == 201:
                with lock:
                    created.append(int(r.headers["Location"].rsplit("/", 1)[1]))

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(3)
        down_at = time.monotonic()
        embedded.stop_cluster(spare.root)
        time.sleep(8)  # down: every request meanwhile gets its 503, at once
        embedded.ensure_cluster(spare.root, spare.port)
        up_at = time.monotonic()
        time.sleep(6)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        _stop(served)
    print(f"\nréponses : {dict(statuses)} ; arrêt à {down_at:.1f}, reprise du serveur à {up_at:.1f}")
    assert bad == [], bad[:10]
    assert statuses["lecture 503"] + statuses["écriture 503"] > 0  # the outage was seen
    assert statuses["écriture 201"] > 0 and statuses["lecture 200"] > 0
    back = min(t for t in successes if t > up_at)
    print(f"première réponse réussie {back - up_at:.2f} s après le redémarrage de PostgreSQL")
    assert back - up_at < 5
    with psycopg.connect(spare.url) as conn:
        present = {r[0] for r in conn.execute(
            "SELECT id FROM resorption.sites WHERE id = ANY(%s)", (created,)).fetchall()}
        # one version per acknowledged write (its insert), and versions never overlap
        versions = conn.execute(
            "SELECT count(*) FROM resorption.sites_history WHERE id = ANY(%s)", (created,)).fetchone()[0]
        overlaps = conn.execute(
            "SELECT count(*) FROM resorption.sites_history a JOIN resorption.sites_history b ON a.id = b.id "
            "AND a.version_id < b.version_id AND a.valid && b.valid").fetchone()[0]
    assert present == set(created), set(created) - present
    assert versions == len(created)
    assert overlaps == 0


def test_a_stop_lets_the_requests_under_way_finish(spare: Spare, users: dict[str, TestUser], tmp_path: Path) -> None:
    """SIGTERM to gunicorn while a write waits for a row: the write ends (204), then gunicorn exits."""
    served = _serve(spare, tmp_path, workers=1, RESORPTION_WRITE_LOCK_TIMEOUT_MS="20000")
    admin = users["national-admin-nation"].headers
    answers: list[requests.Response | Exception] = []
    try:
        with psycopg.connect(spare.url) as holder:
            site_id = holder.execute(
                "SELECT id FROM resorption.sites WHERE status = 'open' ORDER BY id LIMIT 1").fetchone()[0]
            item = f"{served.url}/collections/sites/items/{site_id}"
            etag = requests.get(item, headers=admin, timeout=30).headers["ETag"]
            holder.execute("SELECT 1 FROM resorption.sites WHERE id = %s FOR UPDATE", (site_id,))

            def patch() -> None:
                try:
                    answers.append(requests.patch(
                        item, json={"properties": {"population_total": 31}}, timeout=60,
                        headers={**admin, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
                    ))
                except requests.RequestException as exc:
                    answers.append(exc)

            slow = threading.Thread(target=patch)
            slow.start()
            time.sleep(1.0)  # the write now waits for the row
            served.process.send_signal(signal.SIGTERM)
            time.sleep(2.0)
            assert served.process.poll() is None  # still finishing the write
            holder.rollback()  # the row is free: the write goes on
            slow.join(timeout=30)
        served.process.wait(timeout=30)
    finally:
        _stop(served)
    assert len(answers) == 1 and isinstance(answers[0], requests.Response), answers
    assert answers[0].status_code == 204, answers[0].text
    assert served.process.returncode == 0
    with psycopg.connect(spare.url) as conn:
        assert conn.execute(
            "SELECT population_total FROM resorption.sites WHERE id = %s", (site_id,)).fetchone()[0] == 31


def test_a_stop_writes_the_audit_of_the_reads_still_queued(
    spare: Spare, users: dict[str, TestUser], tmp_path: Path
) -> None:
    """The audit rows of sensitive reads wait for their batch (here 10 s): a stop writes them,
    each with the time of its read and its own reader, before the worker exits."""
    served = _serve(spare, tmp_path, workers=1, RESORPTION_AUDIT_FLUSH_MS="10000")
    admin, gironde = users["national-admin-nation"], users["local-admin-departement-33"]
    count = "SELECT count(*) FROM resorption.audit_log WHERE action = 'read' AND at >= %s"
    try:
        with psycopg.connect(spare.url, autocommit=True) as conn:
            started = conn.execute("SELECT now()").fetchone()[0]
            site_id = conn.execute(
                "SELECT id FROM resorption.sites WHERE departement_code = '33' ORDER BY id LIMIT 1"
            ).fetchone()[0]
            for reader in (admin, gironde):
                r = requests.get(f"{served.url}/collections/sites/items/{site_id}", headers=reader.headers, timeout=30)
                assert r.status_code == 200 and "justice_procedure" in r.json()["properties"], r.text
            read_at = conn.execute("SELECT now()").fetchone()[0]
            time.sleep(1.0)
            assert conn.execute(count, (started,)).fetchone()[0] == 0  # queued, not written yet
            served.process.send_signal(signal.SIGTERM)
            served.process.wait(timeout=30)
            rows = conn.execute(
                "SELECT username, item_id, groups, path, at FROM resorption.audit_log "
                "WHERE action = 'read' AND at >= %s ORDER BY at",
                (started,),
            ).fetchall()
    finally:
        _stop(served)
    assert [(r[0], r[1]) for r in rows] == [(admin.username, str(site_id)), (gironde.username, str(site_id))]
    assert "justice" in rows[0][2] and "justice" in rows[1][2]
    assert rows[0][3] == f"/collections/sites/items/{site_id}"
    assert all(started <= r[4] <= read_at for r in rows)  # the time of the read, not of the write
