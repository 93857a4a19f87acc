"""Federation: harvesting remote OGC API Features collections of sites into ours.

Real servers only: a second Résorption on a copy of the test template, a stock pygeoapi
serving a GeoJSON file; the harvest runs through the command line, as an operator runs
it, into the session's test database.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml
from psycopg import sql
from psycopg.rows import dict_row

from resorption.settings import app_url
from tests.api import all_features
from tests.fix_second_server import (
    Request,
    Tls,
    add_user,
    free_port,
    local_tls,
    scripted_server,
    second_database,
    start_gunicorn,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEPARTEMENT = "33"
PAGE = 7  # small, so that a harvest crosses many pages


def run_cli(
    database_url: str, config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`resorption <args>` as a subprocess against the test database."""
    return subprocess.run(
        [str(BIN / "resorption"), *args],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "RESORPTION_HARVEST_SOURCES": str(config),
            "COLUMNS": "250",
            **(env or {}),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def write_sources(path: Path, sources: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"sources": sources}, allow_unicode=True), encoding="utf-8")
    return path


def last_run(db: psycopg.Connection, source: str) -> dict[str, Any]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM resorption.harvest_runs WHERE source = %s ORDER BY id DESC LIMIT 1", (source,)
        ).fetchone()


def run_rows(db: psycopg.Connection, run_id: int, outcome: str) -> list[tuple[str, int | None, str | None]]:
    return db.execute(
        "SELECT remote_id, site_id, reason FROM resorption.harvest_run_rows WHERE run_id = %s AND outcome = %s "
        "ORDER BY remote_id",
        (run_id, outcome),
    ).fetchall()


def provenance(db: psycopg.Connection, source: str) -> dict[str, int]:
    """remote id → local site id of a source."""
    return dict(
        db.execute(
            "SELECT remote_id, site_id FROM resorption.site_provenance WHERE source = %s", (source,)
        ).fetchall()
    )


@pytest.fixture(scope="module")
def forget_harvests(db: psycopg.Connection) -> Iterator[None]:
    """Leave the session's database as the other tests expect it: without harvested sites."""
    yield
    db.execute("DELETE FROM resorption.sites WHERE id IN (SELECT site_id FROM resorption.site_provenance)")
    db.execute("TRUNCATE resorption.site_provenance, resorption.harvest_runs, resorption.harvest_run_rows")


# -- a second Résorption -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote_db(database_url: str) -> Iterator[str]:
    with second_database(database_url, f"resorption_test_remote_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def remote_token(remote_db: str) -> str:
    # A correspondent of Gironde: reads every site, writes in Gironde.
    return add_user(remote_db, "flux-gironde", "correspondent", "departement", DEPARTEMENT)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """The certificate of the tests' https sources (credentials travel over https only)."""
    return local_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def remote_url(remote_db: str, tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    runtime = tmp_path_factory.mktemp("remote")
    port = free_port()
    env = {
        "DATABASE_URL": remote_db,
        "RESORPTION_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
    }
    with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port, tls=tls) as url:
        yield url


def trusting(tls: Tls, **env: str) -> dict[str, str]:
    """The harvester's environment: it trusts the tests' certificate authority."""
    return {"REQUESTS_CA_BUNDLE": str(tls.authority), **env}


def remote_session(token: str, tls: Tls) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.trust_env = False  # REQUESTS_CA_BUNDLE of the environment would replace `verify`
    session.verify = str(tls.authority)
    return session


def patch_remote(remote_url: str, token: str, tls: Tls, site_id: int, properties: dict[str, Any]) -> None:
    r = remote_session(token, tls).patch(
        f"{remote_url}/collections/sites/items/{site_id}",
        json={"properties": properties},
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=60,
    )
    assert r.status_code == 204, r.text


def test_harvest_from_another_resorption(
    db: psycopg.Connection,
    remote_db: str,
    remote_url: str,
    remote_token: str,
    database_url: str,
    tmp_path: Path,
    forget_harvests: None,
    http: requests.Session,
    tls: Tls,
) -> None:
    with psycopg.connect(remote_db) as remote:
        expected = [
            r[0]
            for r in remote.execute(
                "SELECT id FROM resorption.sites WHERE departement_code = %s ORDER BY id", (DEPARTEMENT,)
            )
        ]
        (elsewhere,) = remote.execute(
            "SELECT min(id) FROM resorption.sites WHERE departement_code = '24'"
        ).fetchone()
    assert len(expected) > 3 * PAGE
    config = write_sources(
        tmp_path / "sources.yml",
        {
            "gironde": {
                "url": remote_url,
                "collection": "sites",
                "departement": DEPARTEMENT,
                "authentification": {"type": "bearer", "jeton_env": "JETON_GIRONDE"},
                "taille_page": PAGE,
                # The feed of Gironde, plus one site of Dordogne that must be turned away.
                "filtre": f"departement_code = '{DEPARTEMENT}' OR id = {elsewhere}",
                "recopier_memes_noms": True,
            }
        },
    )
    env = trusting(tls, JETON_GIRONDE=remote_token)

    # A simulation checks everything and writes no site (nor any audit row).
    harvest_audit = "SELECT count(*) FROM resorption.audit_log WHERE username = 'moissonnage:gironde'"
    audited_before = db.execute(harvest_audit).fetchone()[0]
    result = run_cli(database_url, config, "moissonner", "gironde", "--simulation", env=env)
    assert result.returncode == 0, result.stderr
    simulated = last_run(db, "gironde")
    assert simulated["simulation"] and simulated["created"] == len(expected), simulated
    assert provenance(db, "gironde") == {}
    assert db.execute(harvest_audit).fetchone()[0] == audited_before

    # First harvest: every page followed, every site of Gironde created once, Dordogne refused.
    result = run_cli(database_url, config, "moissonner", "gironde", env=env)
    assert result.returncode == 0, result.stderr
    run = last_run(db, "gironde")
    assert run["status"] == "succeeded", run
    assert (run["created"], run["outside"], run["rejected"], run["conflicts"]) == (len(expected), 1, 0, 0)
    assert run["fetched"] == len(expected) + 1
    assert run["pages"] >= math.ceil((len(expected) + 1) / PAGE)
    [(remote_id, site_id, reason)] = run_rows(db, run["id"], "outside")
    assert remote_id == str(elsewhere) and site_id is None and "24" in reason
    links = provenance(db, "gironde")
    assert sorted(int(k) for k in links) == expected
    # The copies carry the remote values, the harvester as author, and their provenance.
    remote_site = (
        remote_session(remote_token, tls)
        .get(f"{remote_url}/collections/sites/items/{expected[0]}", timeout=60)
        .json()
    )
    local = db.execute(
        "SELECT name, commune_code, population_total, status::text, declared_at::text, created_by, updated_by, "
        "ST_X(location), ST_Y(location) FROM resorption.sites WHERE id = %s",
        (links[str(expected[0])],),
    ).fetchone()
    props = remote_site["properties"]
    assert local[:5] == (
        props["name"],
        props["commune_code"],
        props["population_total"],
        props["status"],
        props["declared_at"],
    )
    assert local[5:7] == ("moissonnage:gironde", "moissonnage:gironde")
    assert local[7:] == pytest.approx(tuple(remote_site["geometry"]["coordinates"]))
    changed_by = db.execute(
        "SELECT changed_by FROM resorption.sites_history WHERE id = %s", (links[str(expected[0])],)
    ).fetchone()[0]
    assert changed_by == "moissonnage:gironde"
    # Written through the one write path: one version and one audit row per written site.
    versions = "SELECT count(*) FROM resorption.sites_history WHERE id = %s"
    audited = (
        "SELECT action, detail->>'source', detail->>'remote_id' FROM resorption.audit_log "
        "WHERE username = 'moissonnage:gironde' AND collection = 'sites' AND item_id = %s ORDER BY id"
    )
    first_copy = links[str(expected[0])]
    assert db.execute(versions, (first_copy,)).fetchone()[0] == 1
    assert db.execute(audited, (str(first_copy),)).fetchall() == [("create", "harvest", str(expected[0]))]
    assert db.execute(harvest_audit).fetchone()[0] == audited_before + len(expected)
    stamps = db.execute(
        "SELECT count(*) FROM resorption.site_provenance p JOIN resorption.sites s ON s.id = p.site_id "
        "WHERE p.source = 'gironde' AND p.local_version = s.updated_at AND length(p.remote_hash) = 64 "
        "AND p.harvested_at IS NOT NULL",
    ).fetchone()[0]
    assert stamps == len(expected)

    # Second harvest: nothing changed, nothing duplicated.
    sites_before = db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0]
    result = run_cli(database_url, config, "moissonner", "gironde", env=env)
    assert result.returncode == 0, result.stderr
    run = last_run(db, "gironde")
    assert (run["unchanged"], run["created"], run["updated"], run["outside"]) == (len(expected), 0, 0, 1)
    assert db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0] == sites_before

    # A change at the source is applied here.
    first, second, third = expected[:3]
    patch_remote(
        remote_url,
        remote_token,
        tls,
        first,
        {"access_details": "Par le chemin", "name": "Changé à la source"},
    )
    # Edited here and at the source: a conflict, the local value stays.
    r = http.patch(
        f"/collections/sites/items/{links[str(second)]}",
        json={"properties": {"name": "Changé ici"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    patch_remote(remote_url, remote_token, tls, second, {"name": "Changé là-bas"})
    # Edited here only: kept, not a conflict.
    r = http.patch(
        f"/collections/sites/items/{links[str(third)]}",
        json={"properties": {"address": "Adresse corrigée ici"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    # Deleted at the source: reported, kept here.
    deleted = expected[-1]
    with psycopg.connect(remote_db) as remote:
        remote.execute("DELETE FROM resorption.sites WHERE id = %s", (deleted,))

    result = run_cli(database_url, config, "moissonner", "gironde", env=env)
    assert result.returncode == 0, result.stderr
    run = last_run(db, "gironde")
    assert (run["updated"], run["conflicts"], run["missing"], run["created"]) == (1, 1, 1, 0), run
    assert run["unchanged"] == len(expected) - 3
    assert db.execute(
        "SELECT name, access_details, updated_by FROM resorption.sites WHERE id = %s", (links[str(first)],)
    ).fetchone() == ("Changé à la source", "Par le chemin", "moissonnage:gironde")
    assert db.execute(versions, (first_copy,)).fetchone()[0] == 2
    assert db.execute(audited, (str(first_copy),)).fetchall() == [
        ("create", "harvest", str(first)),
        ("update", "harvest", str(first)),
    ]
    [(remote_id, site_id, reason)] = run_rows(db, run["id"], "conflict")
    assert (remote_id, site_id) == (
        str(second),
        links[str(second)],
    ) and "version locale est conservée" in reason
    assert db.execute(
        "SELECT name FROM resorption.sites WHERE id = %s", (links[str(second)],)
    ).fetchone() == ("Changé ici",)
    assert db.execute(
        "SELECT address FROM resorption.sites WHERE id = %s", (links[str(third)],)
    ).fetchone() == ("Adresse corrigée ici",)
    [(remote_id, site_id, _)] = run_rows(db, run["id"], "missing")
    assert (remote_id, site_id) == (str(deleted), links[str(deleted)])
    assert db.execute("SELECT 1 FROM resorption.sites WHERE id = %s", (links[str(deleted)],)).fetchone()

    # The listing of runs says the same, in French.
    result = run_cli(database_url, config, "moissonnages", "--source", "gironde")
    assert result.returncode == 0, result.stderr
    assert "réussi" in result.stdout and "simulation" in result.stdout
    result = run_cli(database_url, config, "moissonnages", "--details", str(run["id"]))
    assert "conflit" in result.stdout and "absent de la source" in result.stdout

    # The operator lets the source win the conflict; the site gone at the source is not told twice.
    result = run_cli(database_url, config, "moissonner", "gironde", "--ecraser-conflits", env=env)
    assert result.returncode == 0, result.stderr
    run = last_run(db, "gironde")
    assert (run["updated"], run["conflicts"], run["missing"]) == (1, 0, 0), run
    assert db.execute(
        "SELECT name FROM resorption.sites WHERE id = %s", (links[str(second)],)
    ).fetchone() == ("Changé là-bas",)

    # Incremental: only what changed since the last successful run is requested.
    inc = write_sources(
        tmp_path / "incremental.yml",
        {
            "gironde-inc": {
                "url": remote_url,
                "collection": "sites",
                "departement": DEPARTEMENT,
                "taille_page": PAGE,
                "filtre": f"departement_code = '{DEPARTEMENT}'",
                "modifications": {"mode": "filtre", "champ": "updated_at", "marge": "1min"},
                # HTTP Basic with the token as password, as QGIS does.
                "authentification": {
                    "type": "basic",
                    "utilisateur_env": "QUI",
                    "mot_de_passe_env": "JETON_GIRONDE",
                },
                "recopier_memes_noms": True,
            }
        },
    )
    env["QUI"] = "flux-gironde"
    assert run_cli(database_url, inc, "moissonner", env=env).returncode == 0
    full = last_run(db, "gironde-inc")
    assert full["since"] is None and full["created"] == len(expected) - 1
    with psycopg.connect(remote_db) as remote:
        # The edits above are older than the margin now (the triggers would stamp now()).
        remote.execute("SET session_replication_role = replica")
        remote.execute("UPDATE resorption.sites SET updated_at = now() - interval '1 hour'")
    patch_remote(remote_url, remote_token, tls, third, {"access_details": "Entrée au nord"})
    assert run_cli(database_url, inc, "moissonner", env=env).returncode == 0
    run = last_run(db, "gironde-inc")
    assert run["since"] is not None and (run["fetched"], run["updated"]) == (1, 1), run


def test_a_follower_applies_the_remote_changes_within_seconds(
    db: psycopg.Connection,
    remote_db: str,
    remote_token: str,
    database_url: str,
    tls: Tls,
    tmp_path: Path,
    forget_harvests: None,
) -> None:
    """`resorption moissonner gironde --suivre`: a catch-up harvest, then the remote's
    Server-Sent Events; a change at the source is here within seconds, without any schedule."""
    port = free_port()
    env = {
        "DATABASE_URL": remote_db,
        "RESORPTION_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(tmp_path),
        # a stream holds a sync worker: short streams, and workers for the harvest's reads
        "RESORPTION_SSE_MAX_SECONDS": "5",
    }
    with ExitStack() as remote_server:
        url = remote_server.enter_context(
            start_gunicorn("resorption.app:wsgi()", env, tmp_path / "remote.log", port, tls=tls, workers=3)
        )
        config = write_sources(
            tmp_path / "sources.yml",
            {
                "gironde": {
                    "url": url,
                    "collection": "sites",
                    "departement": DEPARTEMENT,
                    "authentification": {"type": "bearer", "jeton_env": "JETON_GIRONDE"},
                    "taille_page": 100,
                    "filtre": f"departement_code = '{DEPARTEMENT}'",
                    "recopier_memes_noms": True,
                    "modifications": {"mode": "filtre", "champ": "updated_at", "marge": "1min"},
                }
            },
        )
        runs_before = db.execute("SELECT count(*) FROM resorption.harvest_runs").fetchone()[0]
        follower = subprocess.Popen(
            [str(BIN / "resorption"), "moissonner", "gironde", "--suivre"],
            env={
                **os.environ,
                **trusting(tls, JETON_GIRONDE=remote_token),
                "DATABASE_URL": database_url,
                "RESORPTION_HARVEST_SOURCES": str(config),
            },
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while (
                db.execute(
                    "SELECT count(*) FROM resorption.harvest_runs WHERE finished_at IS NOT NULL"
                ).fetchone()[0]
                <= runs_before
            ):
                assert follower.poll() is None and time.monotonic() < deadline, "pas de rattrapage"
                time.sleep(0.5)
            with psycopg.connect(remote_db) as remote:
                (remote_id,) = remote.execute(
                    "SELECT min(id) FROM resorption.sites WHERE departement_code = %s", (DEPARTEMENT,)
                ).fetchone()
            name = f"Suivi en direct {int(time.time())}"
            patch_remote(url, remote_token, tls, remote_id, {"name": name})
            changed = time.monotonic()
            local = (
                "SELECT s.name FROM resorption.sites s JOIN resorption.site_provenance p ON p.site_id = s.id "
            )
            local += "WHERE p.source = 'gironde' AND p.remote_id = %s"
            while (db.execute(local, (str(remote_id),)).fetchone() or [None])[0] != name:
                assert follower.poll() is None and time.monotonic() - changed < 15, "changement non suivi"
                time.sleep(0.2)
            assert time.monotonic() - changed < 15
            # Another run of the source (the schedule's) holds it while a change arrives: the
            # follower's burst waits for it and is applied after, never dropped.
            with psycopg.connect(database_url, autocommit=True) as other_run:
                assert other_run.execute(
                    "SELECT pg_try_advisory_lock(hashtext('resorption.harvest:gironde'))"
                ).fetchone()[0]
                held = f"Suivi différé {int(time.time())}"
                patch_remote(url, remote_token, tls, remote_id, {"name": held})
                time.sleep(3)
                assert db.execute(local, (str(remote_id),)).fetchone()[0] == name
            changed = time.monotonic()  # the other run ended (its session closed)
            while (db.execute(local, (str(remote_id),)).fetchone() or [None])[0] != held:
                assert follower.poll() is None and time.monotonic() - changed < 15, "rafale perdue"
                time.sleep(0.2)
            # A gap: the source goes down, changes meanwhile (no stream tells), comes back. The
            # follower harvests again once its stream is back: the change is here in seconds.
            remote_server.close()
            away = f"Pendant la coupure {int(time.time())}"
            with psycopg.connect(remote_db) as remote:
                remote.execute("UPDATE resorption.sites SET name = %s WHERE id = %s", (away, remote_id))
            time.sleep(3)  # the follower's harvests fail while the source is down
            with start_gunicorn(
                "resorption.app:wsgi()", env, tmp_path / "remote-again.log", port, tls=tls, workers=3
            ):
                back = time.monotonic()
                while (db.execute(local, (str(remote_id),)).fetchone() or [None])[0] != away:
                    assert follower.poll() is None and time.monotonic() - back < 20, "trou non rattrapé"
                    time.sleep(0.2)
        finally:
            follower.send_signal(signal.SIGTERM)
            _, stderr = follower.communicate(timeout=30)
        assert "Suivi arrêté." in stderr, stderr


def test_a_source_that_fails_is_recorded(db: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    config = write_sources(
        tmp_path / "sources.yml",
        {
            "injoignable": {
                "url": f"http://127.0.0.1:{free_port()}",
                "collection": "sites",
                "departement": "33",
                "champs": {"name": "nom"},
            }
        },
    )
    # A run whose process was killed stays "running" until the next run of its source.
    (killed,) = db.execute(
        "INSERT INTO resorption.harvest_runs (source, started_at) VALUES ('injoignable', now() - interval '1 day') "
        "RETURNING id"
    ).fetchone()
    result = run_cli(database_url, config, "moissonner", "injoignable")
    assert result.returncode == 1
    assert "injoignable" in result.stderr and "vérifiez l'url" in result.stderr
    run = last_run(db, "injoignable")
    assert run["status"] == "failed" and "injoignable" in run["message"] and run["finished_at"]
    assert db.execute(
        "SELECT status::text, message FROM resorption.harvest_runs WHERE id = %s", (killed,)
    ).fetchone() == (
        "failed",
        "Moissonnage interrompu avant sa fin (processus arrêté).",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"champs": {"nom_inconnu": "nom"}}, "n'existe pas dans collections/sites.yml"),
        ({"champs": {"commune_name": "commune"}}, "lecture seule"),
        (
            {"champs": {"status": {"propriete": "etat", "valeurs": {"ouvert": "ouvert"}}}},
            "pas une valeur permise",
        ),
        (
            {"champs": {"name": "nom"}, "authentification": {"type": "basic", "mot_de_passe": "x"}},
            "aucun secret",
        ),
        ({"champs": {"name": "nom"}, "planification": {"toutes": "souvent"}}, "durée « souvent » invalide"),
        (
            {"champs": {"name": "nom"}, "authentification": {"type": "bearer", "jeton_env": "JETON"}},
            "l'url doit commencer par https://",
        ),
        ({"champs": {"name": "nom"}, "taille_max": 0}, "taille_max (mégaoctets"),
        ({"champs": {"name": "nom"}, "pages_max": "beaucoup"}, "pages_max (pages lues"),
    ],
)
def test_bad_sources_are_explained(database_url: str, tmp_path: Path, spec: dict, message: str) -> None:
    config = write_sources(
        tmp_path / "sources.yml",
        {"mauvaise": {"url": "http://127.0.0.1:9", "collection": "sites", "departement": "33", **spec}},
    )
    result = run_cli(database_url, config, "moissonner")
    assert result.returncode == 1
    assert "source « mauvaise »" in result.stderr and message in result.stderr.replace("\n", " ")


def test_no_source_configured_by_default(database_url: str) -> None:
    result = run_cli(database_url, ROOT / "config" / "harvest-sources.yml", "moissonner")
    assert result.returncode == 1
    assert "Aucune source de moissonnage n'est configurée" in result.stderr


@pytest.mark.parametrize("table", ["site_provenance", "harvest_runs", "harvest_run_rows"])
def test_the_harvest_bookkeeping_is_private(database_url: str, table: str) -> None:
    # It names sites of every département: no reader or writer role of the application reads it.
    with psycopg.connect(app_url(database_url, None)) as conn:
        for role in ("resorption_read_finances_justice_owner", "resorption_write_finances_justice_owner"):
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT 1 FROM resorption.{}").format(sql.Identifier(table)))
            conn.rollback()


# -- a stock pygeoapi with French property names ---------------------------------------------


@pytest.fixture(scope="module")
def pygeoapi_feed(
    db: psycopg.Connection, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """pygeoapi's own GeoJSON provider over a file of camps of Haute-Garonne (and one elsewhere):
    its URL and the file (read again on every request)."""
    work = tmp_path_factory.mktemp("pygeoapi")
    points = db.execute(
        "SELECT code, departement_code, ST_X(p), ST_Y(p) FROM (SELECT code, departement_code, "
        "ST_PointOnSurface(geom) AS p FROM resorption.communes WHERE code IN ('31555', '31069', '31395', '24322')) c "
        "ORDER BY code"
    ).fetchall()
    by_commune = {code: (x, y) for code, _, x, y in points}
    camps = [
        (
            "HG-1",
            "31555",
            {
                "nom": "Camp du canal",
                "statut": "ouvert",
                "date_signalement": "2021-03-04T00:00:00Z",
                "personnes": 40,
                "terrain": "terrain",
            },
        ),
        (
            "HG-2",
            "31069",
            {
                "nom": "Squat des Minimes",
                "statut": "résorbé",
                "date_signalement": "2019-05-01",
                "date_fermeture": "2023-06-30",
                "personnes": "12",
                "terrain": "bâti",
            },
        ),
        (
            "HG-3",
            "31395",
            {
                "nom": "Bord de Garonne",
                "statut": "ouvert",
                "date_signalement": "2022-09-10",
                "personnes": 8,
                "terrain": "terrain",
            },
        ),
        ("HG-4", "31555", {"nom": "Sans date", "statut": "ouvert", "personnes": 5, "terrain": "terrain"}),
        (
            "HG-5",
            "31555",
            {
                "nom": "Statut bizarre",
                "statut": "évaporé",
                "date_signalement": "2022-01-01",
                "personnes": 5,
                "terrain": "terrain",
            },
        ),
        (
            "HG-6",
            "24322",
            {
                "nom": "En Dordogne",
                "statut": "ouvert",
                "date_signalement": "2022-01-01",
                "personnes": 5,
                "terrain": "terrain",
            },
        ),
    ]
    features = [
        {
            "type": "Feature",
            "id": code,
            "geometry": {"type": "Point", "coordinates": list(by_commune[commune])},
            "properties": {"code": code, **props},
        }
        for code, commune, props in camps
    ]
    data = work / "campements.geojson"
    data.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["fr-FR"],
            "limits": {"default_items": 2, "max_items": 2},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "Campements de Haute-Garonne",
                "description": "Flux de test",
                "keywords": ["campements"],
                "keywords_type": "theme",
                "terms_of_service": "https://example.org",
                "url": "https://example.org",
            },
            "license": {"name": "Licence Ouverte", "url": "https://example.org"},
            "provider": {"name": "DDETS 31", "url": "https://example.org"},
            "contact": {
                "name": "DDETS 31",
                "position": "x",
                "address": "x",
                "city": "Toulouse",
                "stateorprovince": "Occitanie",
                "postalcode": "31000",
                "country": "France",
                "phone": "+33",
                "fax": "+33",
                "email": "x@example.org",
                "url": "https://example.org",
                "hours": "9-17",
                "instructions": "x",
                "role": "pointOfContact",
            },
        },
        "resources": {
            "campements": {
                "type": "collection",
                "title": "Campements",
                "description": "Campements et squats",
                "keywords": ["campements"],
                "extents": {
                    "spatial": {
                        "bbox": [-180, -90, 180, 90],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [{"type": "feature", "name": "GeoJSON", "data": str(data), "id_field": "code"}],
            }
        },
    }
    config_path = work / "pygeoapi.yml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    openapi = work / "openapi.yml"
    generated = subprocess.run(
        [str(BIN / "pygeoapi"), "openapi", "generate", str(config_path), "--output-file", str(openapi)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYGEOAPI_CONFIG": str(config_path)},
    )
    assert generated.returncode == 0, generated.stderr
    env = {"PYGEOAPI_CONFIG": str(config_path), "PYGEOAPI_OPENAPI": str(openapi)}
    with start_gunicorn("pygeoapi.flask_app:APP", env, work / "gunicorn.log", port) as served:
        yield served, data


def test_harvest_from_stock_pygeoapi_with_a_mapping(
    db: psycopg.Connection,
    database_url: str,
    pygeoapi_feed: tuple[str, Path],
    tmp_path: Path,
    forget_harvests: None,
) -> None:
    pygeoapi_url, data = pygeoapi_feed
    config = write_sources(
        tmp_path / "sources.yml",
        {
            "haute-garonne": {
                "url": pygeoapi_url,
                "collection": "campements",
                "departement": "31",
                "identifiant": "code",
                "taille_page": 2,
                "champs": {
                    "name": "nom",
                    "declared_at": "date_signalement",
                    "closed_at": "date_fermeture",
                    "population_total": "personnes",
                    "status": {"propriete": "statut", "valeurs": {"ouvert": "open", "résorbé": "resorbed"}},
                    "field_type": {
                        "propriete": "terrain",
                        "valeurs": {"terrain": "land", "bâti": "building"},
                    },
                    "owner_type": {"valeur": "public"},
                },
            }
        },
    )
    result = run_cli(database_url, config, "moissonner", "haute-garonne")
    assert result.returncode == 0, result.stderr
    run = last_run(db, "haute-garonne")
    assert run["status"] == "succeeded", run
    # Three full pages of 2, then the empty page stock pygeoapi announces after a full one.
    assert (run["fetched"], run["pages"]) == (6, 4)
    assert (run["created"], run["rejected"], run["outside"]) == (3, 2, 1), run
    rejected = {r[0]: r[2] for r in run_rows(db, run["id"], "rejected")}
    assert "declared_at : valeur obligatoire." in rejected["HG-4"]
    assert "status : valeur « évaporé » inconnue" in rejected["HG-5"]
    assert [r[0] for r in run_rows(db, run["id"], "outside")] == ["HG-6"]
    links = provenance(db, "haute-garonne")
    rows = db.execute(
        "SELECT name, status::text, field_type::text, owner_type::text, population_total, declared_at::text, "
        "closed_at::text, commune_code, departement_code FROM resorption.sites WHERE id = ANY(%s) ORDER BY name",
        (list(links.values()),),
    ).fetchall()
    assert rows == [
        ("Bord de Garonne", "open", "land", "public", 8, "2022-09-10", None, "31395", "31"),
        ("Camp du canal", "open", "land", "public", 40, "2021-03-04", None, "31555", "31"),
        (
            "Squat des Minimes",
            "resorbed",
            "building",
            "public",
            12,
            "2019-05-01",
            "2023-06-30",
            "31069",
            "31",
        ),
    ]

    # The source renames a camp and stops publishing its head count: the count stays ours.
    feed = json.loads(data.read_text(encoding="utf-8"))
    camp = next(f for f in feed["features"] if f["id"] == "HG-1")
    camp["properties"]["nom"] = "Camp du canal (nord)"
    del camp["properties"]["personnes"]
    data.write_text(json.dumps(feed), encoding="utf-8")
    result = run_cli(database_url, config, "moissonner", "haute-garonne")
    assert result.returncode == 0, result.stderr
    run = last_run(db, "haute-garonne")
    assert (run["updated"], run["unchanged"], run["created"]) == (1, 2, 0), run
    assert db.execute(
        "SELECT name, population_total FROM resorption.sites WHERE id = %s", (links["HG-1"],)
    ).fetchone() == ("Camp du canal (nord)", 40)


# -- our own server, as a source for others ----------------------------------------------------


def test_our_sites_can_be_harvested_incrementally(http: requests.Session, db: psycopg.Connection) -> None:
    (since,) = db.execute(
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    ).fetchone()
    site = db.execute(
        "SELECT id FROM resorption.sites WHERE departement_code = '93' AND status = 'open' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    r = http.patch(
        f"/collections/sites/items/{site}",
        json={"properties": {"access_details": "Portail côté rue"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    changed = all_features(
        http,
        "/collections/sites/items",
        {"filter": f"updated_at > TIMESTAMP('{since}')", "filter-lang": "cql2-text"},
    )
    assert [f["id"] for f in changed] == [site]
    # The datetime interval keeps its OGC meaning: the sites present during the interval.
    expected = db.execute(
        "SELECT count(*) FROM resorption.sites WHERE declared_at <= now() "
        "AND (closed_at IS NULL OR closed_at >= '2023-01-01')"
    ).fetchone()[0]
    r = http.get(
        "/collections/sites/items", params={"datetime": "2023-01-01T00:00:00Z/..", "resulttype": "hits"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == expected


def test_scheduled_harvest_runs_due_sources_and_stops_cleanly(
    db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    config = write_sources(
        tmp_path / "sources.yml",
        {
            "planifiee": {
                "url": f"http://127.0.0.1:{free_port()}",
                "collection": "sites",
                "departement": "33",
                "planification": {"toutes": "1h"},
                "champs": {"name": "nom"},
            },
            "a-la-demande": {
                "url": f"http://127.0.0.1:{free_port()}",
                "collection": "sites",
                "departement": "33",
                "champs": {"name": "nom"},
            },
        },
    )
    process = subprocess.Popen(
        [str(BIN / "resorption"), "moissonner", "--planifie"],
        env={**os.environ, "DATABASE_URL": database_url, "RESORPTION_HARVEST_SOURCES": str(config)},
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while last_run(db, "planifiee") is None or last_run(db, "planifiee")["finished_at"] is None:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(2)  # not due again for an hour: no second run
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Moissonnage planifié arrêté." in stderr
    assert (
        db.execute("SELECT count(*) FROM resorption.harvest_runs WHERE source = 'planifiee'").fetchone()[0]
        == 1
    )
    assert last_run(db, "a-la-demande") is None


def _source(tmp_path: Path, **spec: Any) -> Any:
    from resorption.catalog import load_catalog
    from resorption.harvest.sources import load_sources

    sites = load_catalog(ROOT / "collections")["sites"]
    path = write_sources(
        tmp_path / "sources.yml",
        {"s": {"url": "https://x.example", "collection": "c", "departement": "33", **spec}},
    )
    return load_sources(path, sites, frozenset(sites.fields))["s"]


def test_incremental_requests_ask_for_changes_only(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from resorption.harvest.remote import first_query

    since = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    by_date = _source(tmp_path, taille_page=50, champs={"name": "nom"}, modifications={"mode": "datetime"})
    assert first_query(by_date, since) == {"limit": "50", "datetime": "2025-03-01T12:30:00Z/.."}
    assert first_query(by_date, None) == {"limit": "50"}
    by_filter = _source(
        tmp_path,
        champs={"name": "nom"},
        filtre="departement_code = '33'",
        modifications={"mode": "filtre", "champ": "maj_le"},
    )
    assert first_query(by_filter, since) == {
        "limit": "100",
        "filter": "(departement_code = '33') AND maj_le >= TIMESTAMP('2025-03-01T12:30:00Z')",
        "filter-lang": "cql2-text",
    }


def test_schedule_says_which_sources_are_due(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from resorption.harvest.schedule import TICK, due, next_wake

    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    sources = {
        "six-heures": _source(tmp_path, champs={"name": "nom"}, planification={"toutes": "6h"}),
        "jamais-lancee": _source(tmp_path, champs={"name": "nom"}, planification={"toutes": "1j"}),
        "manuelle": _source(tmp_path, champs={"name": "nom"}),
    }
    recent = {"six-heures": now - timedelta(hours=5), "manuelle": now - timedelta(days=9)}
    assert [s.every for s in due(sources, recent, now)] == [timedelta(days=1)]
    assert next_wake(sources, recent, now) == now + TICK
    recent["six-heures"] = now - timedelta(hours=5, minutes=59, seconds=30)
    assert next_wake(sources, recent, now) == now + timedelta(seconds=30)
    recent["six-heures"] = now - timedelta(hours=6)
    assert len(due(sources, recent, now)) == 2


# -- a source that sends the harvester elsewhere, or too much, or too slowly ----------------------

CAMP = {
    "type": "Feature",
    "id": "camp-1",
    "geometry": {"type": "Point", "coordinates": [-0.5792, 44.8378]},
    "properties": {"nom": "Camp du pont"},
}
TOKEN = "jeton-de-la-source"


def page(next_href: str | None = None, padding: int = 0) -> bytes:
    links = [{"rel": "next", "href": next_href, "type": "application/geo+json"}] if next_href else []
    body = {"type": "FeatureCollection", "features": [CAMP], "links": links, "pad": "x" * padding}
    return json.dumps(body).encode()


def send(handler: Any, status: int, body: bytes = b"", length: bool = True, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/geo+json")
    if length:
        handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def harvest_from(
    database_url: str, tmp_path: Path, tls: Tls, url: str, **spec: Any
) -> subprocess.CompletedProcess:
    """`resorption moissonner source --simulation` on a source at `url` with a bearer token."""
    config = write_sources(
        tmp_path / "sources.yml",
        {
            "source": {
                "url": url,
                "collection": "sites",
                "departement": "33",
                "authentification": {"type": "bearer", "jeton_env": "JETON_SOURCE"},
                "champs": {"name": "nom"},
                **spec,
            }
        },
    )
    env = trusting(tls, JETON_SOURCE=TOKEN)
    return run_cli(database_url, config, "moissonner", "source", "--simulation", env=env)


@pytest.mark.parametrize("how", ["next", "redirect"])
def test_the_harvest_never_leaves_its_source(
    database_url: str, db: psycopg.Connection, tmp_path: Path, tls: Tls, how: str
) -> None:
    """A `next` link or a redirect to another origin (another port of the same host here) stops the
    harvest: that origin receives nothing, and the token went to the source alone."""
    with scripted_server(lambda h, r: send(h, 200, page()), tls) as elsewhere:
        target = f"{elsewhere.url}/collections/sites/items?page=2"

        def source_answer(handler: Any, request: Request) -> None:
            if request.path.startswith("/collections/sites/items?limit"):
                if how == "next":
                    # A relative link within the source is followed; the one after leaves it.
                    send(handler, 200, page("items?page=2&limit=100"))
                else:
                    send(handler, 302, Location="/ailleurs/collections/sites/items")
            elif request.path.startswith("/collections/sites/items?page=2"):
                send(handler, 200, page(target))
            elif request.path.startswith("/ailleurs/"):
                send(handler, 307, Location=target)

        with scripted_server(source_answer, tls) as source:
            result = harvest_from(database_url, tmp_path, tls, source.url)
        assert result.returncode == 1
        message = " ".join(result.stderr.split())
        assert "une autre adresse" in message and "sans l'appeler" in message, message
        assert elsewhere.requests == [], "nothing is sent to another origin"
        assert len(source.requests) == 2
        assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in source.requests)
        assert "autre adresse" in last_run(db, "source")["message"]


def test_a_response_past_the_size_cap_stops_the_harvest(database_url: str, tmp_path: Path, tls: Tls) -> None:
    big = page(padding=1_500_000)  # 1.5 MB, past a cap of 1 MB
    for declared in (True, False):  # said up front (Content-Length), or found while reading
        with scripted_server(lambda h, r, d=declared: send(h, 200, big, length=d), tls) as source:
            result = harvest_from(database_url, tmp_path, tls, source.url, taille_max=1)
        assert result.returncode == 1
        assert "dépasse 1 Mo (taille_max)" in " ".join(result.stderr.split())
    # Under the cap, the same page is read.
    with scripted_server(lambda h, r: send(h, 200, big), tls) as source:
        assert harvest_from(database_url, tmp_path, tls, source.url, taille_max=2).returncode == 0


def test_a_source_that_drips_is_cut_off_by_the_time_cap(database_url: str, tmp_path: Path, tls: Tls) -> None:
    """A byte every 0.2 s keeps every socket read under its timeout; the cap is on the whole response."""

    def drip(handler: Any, request: Request) -> None:
        body = page()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body[:100]:  # 20 s at most, then the server gives up too
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.2)

    with scripted_server(drip, tls) as source:
        started = time.monotonic()
        result = harvest_from(database_url, tmp_path, tls, source.url, delai=2)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "dépasse le délai de 2 secondes" in " ".join(result.stderr.split())
    assert elapsed < 15


def test_a_harvest_reads_at_most_pages_max_pages(database_url: str, tmp_path: Path, tls: Tls) -> None:
    """A source whose `next` links never end (each a new page) is read up to pages_max pages."""

    def endless(handler: Any, request: Request) -> None:
        number = len(source.requests)
        send(handler, 200, page(f"/collections/sites/items?page={number + 1}"))

    with scripted_server(endless, tls) as source:
        result = harvest_from(database_url, tmp_path, tls, source.url, pages_max=3)
    assert result.returncode == 1
    assert "plus de 3 pages" in " ".join(result.stderr.split())
    assert len(source.requests) == 3
