"""Reads on a streaming replica: a real hot standby of the suite's cluster, and a server using it.

`pg_basebackup -R` copies the suite's embedded cluster into a replica on the next port, which
follows the primary by streaming replication. A gunicorn of the app reads there
(DATABASE_REPLICA_URLS), with a small lag bound so that the tests see it work. What is shown:
reads are served by the replica (with its replay paused, a change on the primary is not seen
yet); a client reads its own write at once (from the primary while the replica has not replayed
it); a replica too far behind is skipped; access control is the same there as on the primary;
with the replica stopped, reads still answer, from the primary, in good time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests

from resorption import replicas
from resorption.embedded import start_replica, stop_replica
from resorption.errors import ConfigurationError
from resorption.settings import Settings
from tests.fix_db import audited_reads
from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import AREA, OTHER_AREA, TestUser

BORDEAUX = (-0.5792, 44.8378)
GIRONDE_BBOX = "-1.3,44.2,0.4,45.6"
# The lag after which the server skips the replica, and how often it measures it.
MAX_LAG_S = 3.0
CHECK_S = 0.2
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@dataclass(frozen=True)
class Replica:
    """The suite's replica: the test database there, as the superuser (to pause its replay)."""

    url: str
    port: int

    def run(self, statement: str) -> object:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(statement).fetchone()[0]

    @contextmanager
    def paused(self, db: psycopg.Connection) -> Iterator[None]:
        """Its replay paused (it receives the WAL, applies none): it stays where it was."""
        self.run("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            self.run("SELECT pg_wal_replay_resume()")
            self.wait_caught_up(db)

    def wait_caught_up(self, db: psycopg.Connection) -> None:
        """Until it has replayed all the primary wrote until now (and the server has seen so)."""
        position = db.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        deadline = time.monotonic() + 30
        while not self.run(f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn"):
            assert time.monotonic() < deadline, "la réplique ne rattrape pas la primaire"
            time.sleep(0.05)
        time.sleep(CHECK_S * 3)  # the server's watchers measure it again

    def app_sessions(self) -> int:
        """The app's connections on the replica (its pools are named for it)."""
        return int(
            self.run("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'resorption-replica'")
        )


def _on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{port}"))


@pytest.fixture(scope="module")
def replica(server_url: str, database_url: str, users: dict[str, TestUser]) -> Iterator[Replica]:
    """A hot standby of the suite's cluster on a free port, made now, deleted at the end."""
    primary_port = urlsplit(server_url).port
    assert primary_port is not None
    port = free_port()  # not the next one: another cluster of the machine may hold it
    start_replica(port, primary_port=primary_port)
    try:
        yield Replica(_on_port(database_url, port), port)
    finally:
        stop_replica(port)


@pytest.fixture(scope="module")
def replicated(
    database_url: str, replica: Replica, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server of the app whose reads go to the replica (two workers, each with its watcher)."""
    runtime = tmp_path_factory.mktemp("replicated")
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "DATABASE_REPLICA_URLS": replica.url,
        "RESORPTION_REPLICA_MAX_LAG_MS": str(int(MAX_LAG_S * 1000)),
        "RESORPTION_REPLICA_CHECK_MS": str(int(CHECK_S * 1000)),
        "RESORPTION_REPLICA_WAIT_MS": "300",
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
    }
    with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port, workers=2) as url:
        yield url


@pytest.fixture(scope="module")
def site(
    base_url: str, users: dict[str, TestUser], database_url: str, replica: Replica, db: psycopg.Connection
) -> Iterator[int]:
    """A site of Gironde of these tests only, replayed on the replica before any test reads it
    there (written through the suite's server, it leaves no write position to follow)."""
    admin = users["national-admin-nation"].headers
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(BORDEAUX)},
        "properties": {"name": "Site des répliques", "declared_at": "2024-03-01", "population_total": 10},
    }
    r = requests.post(f"{base_url}/collections/sites/items", json=feature, headers=admin, timeout=60)
    assert r.status_code == 201, r.text
    site_id = int(r.headers["Location"].rsplit("/", 1)[1])
    replica.wait_caught_up(db)
    yield site_id
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = %s", (site_id,))


def reads(url: str) -> dict[str, float]:
    """The server's read transactions so far, by server (primary, replica): its /metrics."""
    text = requests.get(f"{url}/metrics", timeout=60).text
    found = re.findall(r'^resorption_db_reads_total\{server="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return {"primary": 0.0, "replica": 0.0} | {server: float(value) for server, value in found}


def population(url: str, site: int, user: TestUser, **headers: str) -> int:
    r = requests.get(f"{url}/collections/sites/items/{site}", headers={**user.headers, **headers}, timeout=60)
    assert r.status_code == 200, r.text
    return int(r.json()["properties"]["population_total"])


def write_population(url: str, site: int, user: TestUser, value: int) -> requests.Response:
    """A PATCH with If-Match, as editors send it, through the server at `url`."""
    item = f"{url}/collections/sites/items/{site}"
    etag = requests.get(item, headers=user.headers, timeout=60).headers["ETag"]
    r = requests.patch(
        item,
        json={"properties": {"population_total": value}},
        headers={**user.headers, **MERGE_PATCH, "If-Match": etag},
        timeout=60,
    )
    assert r.status_code == 204, r.text
    return r


def test_reads_are_served_by_the_replica(
    replicated: str,
    replica: Replica,
    base_url: str,
    site: int,
    users: dict[str, TestUser],
    db: psycopg.Connection,
) -> None:
    admin = users["national-admin-nation"]
    before = reads(replicated)
    value = population(replicated, site, admin)
    after = reads(replicated)
    assert after["replica"] == before["replica"] + 1 and after["primary"] == before["primary"]
    assert replica.app_sessions() >= 1
    # What is served is what the replica holds: paused, it does not show a change made since.
    with replica.paused(db):
        write_population(base_url, site, admin, value + 1)  # on the primary (the suite's server)
        assert population(base_url, site, admin) == value + 1
        assert population(replicated, site, admin) == value
    assert population(replicated, site, admin) == value + 1


def test_a_client_reads_its_own_write_at_once(
    replicated: str, replica: Replica, site: int, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    admin = users["national-admin-nation"]
    item = f"{replicated}/collections/sites/items/{site}"
    client = requests.Session()  # keeps cookies, as browsers and QGIS do
    client.headers.update(admin.headers)
    with replica.paused(db):
        r = client.get(item, timeout=60)
        value = r.json()["properties"]["population_total"]
        w = client.patch(
            item,
            json={"properties": {"population_total": value + 1}},
            headers={**MERGE_PATCH, "If-Match": r.headers["ETag"]},
            timeout=60,
        )
        assert w.status_code == 204, w.text
        position = w.headers[replicas.HEADER]
        assert client.cookies.get(replicas.COOKIE) == position
        # sealed: a WAL position in clear would tell how much everyone wrote since
        assert replicas.parse_lsn(position) is None and "/" not in position
        # The writer sees its change at once, although the replica has not replayed it…
        before = reads(replicated)
        assert client.get(item, timeout=60).json()["properties"]["population_total"] == value + 1
        # …and so does a script that sends the header back instead of the cookie.
        assert population(replicated, site, admin, **{replicas.HEADER: position}) == value + 1
        assert reads(replicated)["primary"] == before["primary"] + 2
        # Someone who wrote nothing still reads the replica, within the lag bound; a position
        # in clear, or forged, is nothing (the replica answers, nobody waits).
        assert population(replicated, site, admin) == value
        assert population(replicated, site, admin, **{replicas.HEADER: "FFFFFFFF/FFFFFFFF"}) == value
        assert population(replicated, site, admin, **{replicas.HEADER: position[:-4] + "AAAA"}) == value
    # Once replayed there, the writer's reads go back to the replica.
    before = reads(replicated)
    assert client.get(item, timeout=60).json()["properties"]["population_total"] == value + 1
    assert reads(replicated)["replica"] == before["replica"] + 1


def test_a_replica_too_far_behind_is_skipped(
    replicated: str,
    replica: Replica,
    base_url: str,
    site: int,
    users: dict[str, TestUser],
    db: psycopg.Connection,
) -> None:
    admin = users["national-admin-nation"]
    value = population(replicated, site, admin)
    with replica.paused(db):
        write_population(base_url, site, admin, value + 1)
        written = time.monotonic()
        # Within the bound, the replica may answer with what it holds; past it, the primary answers.
        while population(replicated, site, admin) != value + 1:
            assert time.monotonic() - written < MAX_LAG_S + 5, "la réplique en retard sert encore"
            time.sleep(CHECK_S)
        assert time.monotonic() - written >= MAX_LAG_S - 1  # not before the bound
        before = reads(replicated)
        assert population(replicated, site, admin) == value + 1
        after = reads(replicated)
        assert after["primary"] == before["primary"] + 1 and after["replica"] == before["replica"]
    # Caught up again, it serves again.
    before = reads(replicated)
    assert population(replicated, site, admin) == value + 1
    assert reads(replicated)["replica"] == before["replica"] + 1


def test_access_control_is_the_same_on_the_replica(
    replicated: str, base_url: str, site: int, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    outsider = users[f"operator-departement-{OTHER_AREA}"]
    insider = users[f"correspondent-departement-{AREA}"]
    gironde = {
        row[0] for row in db.execute("SELECT id FROM resorption.sites WHERE departement_code = %s", (AREA,))
    }
    assert site in gironde
    before = reads(replicated)
    requests_made = 0
    for user in (outsider, insider):
        for params in ({"limit": 1000}, {"limit": 1000, "bbox": GIRONDE_BBOX}):
            on_replica = requests.get(
                f"{replicated}/collections/sites/items", params=params, headers=user.headers, timeout=60
            )
            on_primary = requests.get(
                f"{base_url}/collections/sites/items", params=params, headers=user.headers, timeout=60
            )
            requests_made += 1
            assert on_replica.status_code == on_primary.status_code == 200
            assert on_replica.json()["features"] == on_primary.json()["features"]
            ids = {f["id"] for f in on_replica.json()["features"]}
            if user is outsider:  # their own sites, nothing of Gironde
                assert not ids & gironde and bool(ids) == ("bbox" not in params)
            else:
                assert ids
        hits = {"resulttype": "hits", "bbox": GIRONDE_BBOX}
        counted = requests.get(
            f"{replicated}/collections/sites/items", params=hits, headers=user.headers, timeout=60
        )
        expected = requests.get(
            f"{base_url}/collections/sites/items", params=hits, headers=user.headers, timeout=60
        )
        requests_made += 1
        assert counted.status_code == 200
        assert counted.json()["numberMatched"] == expected.json()["numberMatched"]
        assert (counted.json()["numberMatched"] == 0) == (user is outsider)
        one = requests.get(f"{replicated}/collections/sites/items/{site}", headers=user.headers, timeout=60)
        requests_made += 1
        assert one.status_code == (404 if user is outsider else 200)
        if user is outsider:  # the same answer as for an id that does not exist at all
            missing = requests.get(
                f"{replicated}/collections/sites/items/999999999", headers=user.headers, timeout=60
            )
            requests_made += 1
            assert missing.status_code == 404
            assert one.json()["description"].replace(str(site), "X") == missing.json()["description"].replace(
                "999999999", "X"
            )
    after = reads(replicated)
    assert after["replica"] - before["replica"] >= requests_made and after["primary"] == before["primary"]


def test_reads_of_sensitive_fields_are_audited_on_the_primary(
    replicated: str, site: int, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    admin = users["national-admin-nation"]
    count = (
        "SELECT count(*) FROM resorption.audit_log WHERE action = 'read' AND username = %s AND item_id = %s"
    )
    before = db.execute(count, (admin.username, str(site))).fetchone()[0]
    served = reads(replicated)["replica"]
    population(replicated, site, admin)
    assert reads(replicated)["replica"] == served + 1  # read on the replica, which cannot write…
    rows = audited_reads(db, count.replace("count(*)", "id"), (admin.username, str(site)), wanted=before + 1)
    assert len(rows) == before + 1  # …audited


def test_reads_answer_when_the_replica_is_down(
    replicated: str, replica: Replica, site: int, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    admin = users["national-admin-nation"]
    value = population(replicated, site, admin)
    stop_replica(replica.port)
    before = reads(replicated)
    for _ in range(6):  # both workers, before and after their watchers notice
        started = time.monotonic()
        assert population(replicated, site, admin) == value
        hits = requests.get(
            f"{replicated}/collections/sites/items",
            params={"resulttype": "hits"},
            headers=admin.headers,
            timeout=60,
        )
        assert hits.status_code == 200 and hits.json()["numberMatched"] > 0
        assert time.monotonic() - started < 4
    assert reads(replicated)["primary"] >= before["primary"] + 12


def test_replica_addresses_take_the_credentials_of_the_application_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://owner:secret@primary:5432/resorption")
    monkeypatch.setenv("RESORPTION_APP_DB_PASSWORD", "mot de passe")
    monkeypatch.delenv("RESORPTION_APP_DATABASE_URL", raising=False)
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS",
        "postgresql://owner:secret@replique-1:5433/resorption, postgres://replique-2/resorption",
    )
    assert Settings.from_env().replica_urls == (
        "postgresql://resorption_app:mot%20de%20passe@replique-1:5433/resorption",
        "postgres://resorption_app:mot%20de%20passe@replique-2/resorption",
    )
    monkeypatch.setenv("DATABASE_REPLICA_URLS", "replique-1:5432")
    with pytest.raises(ConfigurationError, match="DATABASE_REPLICA_URLS"):
        Settings.from_env()


def test_wal_positions_read_as_postgresql_writes_them() -> None:
    assert replicas.parse_lsn("16/B374D848") == 0x16_B374D848
    assert replicas.format_lsn(0x16_B374D848) == "16/B374D848"
    assert replicas.parse_lsn(replicas.format_lsn(0)) == 0
    for malformed in ("", "16/", "/1", "x/1", "1/2/3", "123456789/1", "1/1; DROP", None):
        assert replicas.parse_lsn(malformed) is None
