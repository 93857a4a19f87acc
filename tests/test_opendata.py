"""Open data: public figures per département and region, under statistical secrecy.

Every expectation is computed here from `resorption.sites` in Python, independently of
the SQL of `070_opendata.sql`: the published figures must equal it where they are
published, stand for at least 5 sites and 10 people, and no hidden figure may be
recovered from the published ones (region minus its départements, national total minus
the regions, or any other linear combination).

The collections serve a snapshot of the figures, computed once a day by the owner (not at
each request, which anyone could send): a change to the sites shows only after a refresh
(`resorption donnees-ouvertes rafraichir`, the publisher's daily check, `db setup`), so the
tests refresh before comparing, and one test shows the change waiting for it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests
from click.testing import CliRunner

from resorption import broker, clock
from resorption.cli.commands import main
from resorption.policy import ANONYMOUS_DB_ROLE, writer_role
from resorption.privileges import reader_roles
from resorption.settings import APP_DB_USER
from tests.fix_mqtt import PublisherProcess
from tests.fix_users import POLICY

MIN_SITES, MIN_PEOPLE = 5, 10
COLLECTIONS = {"departement": "stats_departements", "region": "stats_regions"}
OPEN_MEASURES = ("open_sites", "population", "minors", "households")
CLOSED_MEASURES = {
    "resorbed": "closed_resorbed",
    "closed_by_justice": "closed_by_justice",
    "closed_by_pref_admin": "closed_by_pref_admin",
    "closed_by_city_admin": "closed_by_city_admin",
    "other": "closed_other",
    "unknown": "closed_unknown",
}
MEASURES = (*OPEN_MEASURES, *CLOSED_MEASURES.values())
SINCE = dt.date(2019, 1, 1)


@dataclass
class Cell:
    """One figure as the sites make it: its value, and the sites and people behind it."""

    value: int = 0
    sites: int = 0
    people: int = 0

    def add(self, value: int, sites: int, people: int) -> None:
        self.value += value
        self.sites += sites
        self.people += people

    @property
    def publishable(self) -> bool:
        return self.sites >= MIN_SITES and self.people >= MIN_PEOPLE


@dataclass(frozen=True)
class Truth:
    """What the sites say, per (level, code, measure), and the territories."""

    cells: Mapping[tuple[str, str, str], Cell]
    region_of: Mapping[str, str]  # département → region
    regions: tuple[str, ...]

    def departements(self, region: str) -> list[str]:
        return sorted(d for d, r in self.region_of.items() if r == region)


def truth(conn: psycopg.Connection) -> Truth:
    """The figures computed straight from the sites, before any suppression."""
    region_of = dict(conn.execute("SELECT code, region_code FROM resorption.departements").fetchall())
    regions = tuple(sorted(set(region_of.values())))
    cells: dict[tuple[str, str, str], Cell] = defaultdict(Cell)
    for code in region_of:
        for m in MEASURES:
            cells["departement", code, m] = Cell()
    for code in regions:
        for m in MEASURES:
            cells["region", code, m] = Cell()
    rows = conn.execute(
        "SELECT departement_code, status::text, closed_at, population_total, population_minors, "
        "population_households FROM resorption.sites"
    ).fetchall()
    for departement, status, closed_at, total, minors, households in rows:
        contributions: list[tuple[str, int, int, int]] = []
        if status == "open":
            contributions.append(("open_sites", 1, 1, total or 0))
            for measure, figure in (("population", total), ("minors", minors), ("households", households)):
                if figure is not None:
                    contributions.append((measure, figure, 1, figure))
        elif closed_at >= SINCE:
            contributions.append((CLOSED_MEASURES[status], 1, 1, total or 0))
        for measure, value, sites, people in contributions:
            cells["departement", departement, measure].add(value, sites, people)
            cells["region", region_of[departement], measure].add(value, sites, people)
    return Truth(cells=dict(cells), region_of=region_of, regions=regions)


Published = dict[tuple[str, str], dict]  # (level, code) → properties


def published_from_api(client: requests.Session) -> Published:
    """Both collections as the API serves them."""
    published: Published = {}
    for level, collection in COLLECTIONS.items():
        r = client.get(f"/collections/{collection}/items", params={"limit": 1000})
        assert r.status_code == 200, r.text
        for feature in r.json()["features"]:
            published[level, feature["id"]] = feature["properties"]
    return published


def published_from_views(conn: psycopg.Connection) -> Published:
    """Both views read straight in the database, after a refresh in the same transaction (to see
    the effect of made-up sites)."""
    conn.execute("SELECT resorption.refresh_opendata()")
    published: Published = {}
    for level, view in (("departement", "opendata_departements"), ("region", "opendata_regions")):
        cursor = conn.execute(f"SELECT * FROM resorption.{view}")
        names = [c.name for c in cursor.description]
        for row in cursor.fetchall():
            properties = dict(zip(names, row, strict=True))
            published[level, properties["code"]] = properties
    return published


def secrecy_violations(t: Truth, published: Published) -> list[str]:
    """Every way the published figures break statistical secrecy (empty when they don't)."""
    problems: list[str] = []
    assert set(published) == {k[:2] for k in t.cells}, "one row per département and per region"
    hidden = {key: published[key[:2]][key[2]] is None for key in t.cells}

    for (level, code, measure), cell in t.cells.items():
        value = published[level, code][measure]
        if value is not None:
            if value != cell.value:
                problems.append(f"{level} {code} {measure}: {value} publié, {cell.value} en base")
            if not cell.publishable:
                problems.append(
                    f"{level} {code} {measure}: publié avec {cell.sites} sites, {cell.people} pers."
                )

    for measure in MEASURES:
        unknown_in_hidden_regions = Cell()
        any_hidden_region = False
        for region in t.regions:
            hidden_departements = [d for d in t.departements(region) if hidden["departement", d, measure]]
            group = Cell()
            for d in hidden_departements:
                c = t.cells["departement", d, measure]
                group.add(c.value, c.sites, c.people)
            if hidden["region", region, measure]:
                any_hidden_region = True
                unknown_in_hidden_regions.add(group.value, group.sites, group.people)
                # Otherwise the region is the sum of its published départements.
                if not hidden_departements:
                    problems.append(f"région {region} {measure}: masquée mais somme de départements publiés")
            elif hidden_departements:
                # Region minus its published départements = the sum of the hidden ones.
                if len(hidden_departements) == 1:
                    problems.append(f"région {region} {measure}: un seul département masqué")
                if not group.publishable:
                    problems.append(
                        f"région {region} {measure}: départements masqués {hidden_departements} "
                        f"= {group.sites} sites, {group.people} pers."
                    )
        # National total (public elsewhere) minus the published regions; when no region is
        # published, that is the national total itself, which secrecy cannot hide.
        any_published_region = any(not hidden["region", r, measure] for r in t.regions)
        if any_hidden_region and any_published_region and not unknown_in_hidden_regions.publishable:
            problems.append(
                f"national {measure}: les régions masquées ne font que {unknown_in_hidden_regions}"
            )
        problems += _determined_cells(t, published, measure)

    for key, properties in published.items():
        expected = any(properties[m] is None for m in MEASURES)
        if properties["secret_statistique"] is not expected:
            problems.append(f"{key}: secret_statistique vaut {properties['secret_statistique']}")
    return problems


def _determined_cells(t: Truth, published: Published, measure: str) -> list[str]:
    """Hidden figures that a linear combination of the published ones (and of the national total)
    gives exactly: x_i is determined when the unit vector e_i lies in the row space of the system."""
    keys = [("region", r) for r in t.regions] + [("departement", d) for d in sorted(t.region_of)]
    unknowns = [key for key in keys if published[key][measure] is None]
    if not unknowns:
        return []
    index = {key: i for i, key in enumerate(unknowns)}
    rows = []
    for region in t.regions:  # region − Σ départements = 0
        row = np.zeros(len(unknowns))
        if ("region", region) in index:
            row[index["region", region]] = 1
        for d in t.departements(region):
            if ("departement", d) in index:
                row[index["departement", d]] -= 1
        rows.append(row)
    national = np.zeros(len(unknowns))  # Σ regions = national total
    for region in t.regions:
        if ("region", region) in index:
            national[index["region", region]] = 1
    rows.append(national)
    system = np.array(rows)
    rank = np.linalg.matrix_rank(system)
    problems = []
    for key, i in index.items():
        unit = np.zeros(len(unknowns))
        unit[i] = 1
        if np.linalg.matrix_rank(np.vstack([system, unit])) == rank:
            problems.append(f"{key} {measure}: masqué mais calculable à partir des chiffres publiés")
    return problems


# --- the published collections, read without credentials -----------------------------------


def refresh_by_command(database_url: str) -> str:
    """`resorption donnees-ouvertes rafraichir`, as the owner (DATABASE_URL); its message."""
    result = CliRunner().invoke(
        main, ["donnees-ouvertes", "rafraichir"], env={"DATABASE_URL": database_url, "COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def published(anonymous: requests.Session, database_url: str) -> Published:
    # Tests of other modules change sites: the snapshot is computed again from them first.
    refresh_by_command(database_url)
    return published_from_api(anonymous)


@pytest.mark.parametrize("collection", COLLECTIONS.values())
def test_anonymous_reads_the_open_data(anonymous: requests.Session, collection: str) -> None:
    """Items, one item, queryables and schema answer without any credentials."""
    item = "33" if collection == "stats_departements" else "75"
    for path in (
        f"/collections/{collection}",
        f"/collections/{collection}/items",
        f"/collections/{collection}/items/{item}",
        f"/collections/{collection}/queryables",
        f"/collections/{collection}/schema",
    ):
        r = anonymous.get(path, params={"f": "json"})
        assert "Authorization" not in r.request.headers
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    for path in (f"/collections/{collection}/items", f"/collections/{collection}/items/{item}"):
        r = anonymous.get(path, params={"f": "html"})
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), path
    body = anonymous.get(f"/collections/{collection}/items", params={"resulttype": "hits"}).json()
    assert body["numberMatched"] == (101 if collection == "stats_departements" else 18)
    queryables = anonymous.get(f"/collections/{collection}/queryables", params={"f": "json"}).json()
    assert {"open_sites", "population", "minors", "closed_resorbed", "secret_statistique"} <= set(
        queryables["properties"]
    )


def test_anonymous_is_refused_the_sites_and_actions(anonymous: requests.Session) -> None:
    """Sites and actions need credentials: 401, with the Basic challenge QGIS answers."""
    for collection in ("sites", "actions"):
        r = anonymous.get(f"/collections/{collection}/items")
        assert r.status_code == 401, (collection, r.status_code)
        assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), r.headers


def test_published_figures_keep_statistical_secrecy(published: Published, db: psycopg.Connection) -> None:
    """Published figures equal the sites' where published; none is small; none can be recovered."""
    assert secrecy_violations(truth(db), published) == []


def test_the_demo_publishes_figures(published: Published) -> None:
    """Secrecy must not hide everything: the big territories of the demo have their figures."""
    idf = published["region", "11"]
    assert idf["open_sites"] and idf["population"] and idf["minors"]
    assert published["departement", "93"]["open_sites"] is not None
    assert sum(p["open_sites"] is None for k, p in published.items() if k[0] == "departement") > 10


def test_rows_are_dated_and_named(published: Published, db: psycopg.Connection) -> None:
    today = clock.today()  # the day in Paris, whatever the server's time zone
    gironde = published["departement", "33"]
    assert gironde["name"] == "Gironde" and gironde["region_code"] == "75"
    assert gironde["region_name"] == "Nouvelle-Aquitaine"
    for properties in published.values():
        assert properties["as_of"] == today.isoformat()
        # No date of the last change of any site: it told when a site changed anywhere.
        assert "updated_at" not in properties


@pytest.mark.parametrize(
    ("collection", "table"), [("stats_departements", "departements"), ("stats_regions", "regions")]
)
def test_geometry_is_the_simplified_territory(
    anonymous: requests.Session, db: psycopg.Connection, collection: str, table: str
) -> None:
    """One valid MultiPolygon per territory: its own outline, lighter, never finer."""
    r = anonymous.get(f"/collections/{collection}/items", params={"limit": 1000})
    features = r.json()["features"]
    assert features
    for feature in features:
        assert feature["geometry"]["type"] == "MultiPolygon", feature["id"]
        valid, shares, points, original_points = db.execute(
            "WITH g AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326) AS geom) "
            f"SELECT ST_IsValid(g.geom), ST_Area(ST_Intersection(g.geom, t.geom)) / ST_Area(t.geom), "
            f"ST_NPoints(g.geom), ST_NPoints(t.geom) FROM g, resorption.{table} t WHERE t.code = %s",
            (json.dumps(feature["geometry"]), feature["id"]),
        ).fetchone()
        assert valid, feature["id"]
        assert shares > 0.98, (feature["id"], shares)
        assert points <= original_points, feature["id"]


def test_filters_see_only_published_figures(anonymous: requests.Session, published: Published) -> None:
    """A filter or a sort on a figure works on the published (NULL when hidden) value, not on the
    hidden one: asking for small values finds nothing."""
    r = anonymous.get(
        "/collections/stats_departements/items",
        params={"filter": "open_sites < 5 OR population < 10", "resulttype": "hits"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == 0
    r = anonymous.get(
        "/collections/stats_departements/items", params={"filter": "open_sites IS NULL", "resulttype": "hits"}
    )
    hidden = sum(1 for k, p in published.items() if k[0] == "departement" and p["open_sites"] is None)
    assert r.json()["numberMatched"] == hidden


# --- the daily snapshot -------------------------------------------------------------------

SNAPSHOT_COLUMNS = ("as_of", *MEASURES, "secret_statistique")


def live_figures(db: psycopg.Connection) -> Published:
    """The figures computed now from every site (the owner's private view), rows as published."""
    cursor = db.execute("SELECT * FROM resorption.opendata_figures")
    names = [c.name for c in cursor.description]
    return {(row[0], row[1]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_served_figures_equal_the_live_computation_after_a_refresh(
    anonymous: requests.Session, db: psycopg.Connection, database_url: str
) -> None:
    """After `resorption donnees-ouvertes rafraichir`, every figure the API serves is the one
    computed from the sites at that moment, dated today in Paris."""
    message = refresh_by_command(database_url)
    assert "101 départements" in message and "18 régions" in message, message
    served, live = published_from_api(anonymous), live_figures(db)
    assert set(served) == set(live)
    for key, properties in served.items():
        assert properties["as_of"] == clock.today().isoformat()
        assert {m: properties[m] for m in (*MEASURES, "secret_statistique")} == {
            m: live[key][m] for m in (*MEASURES, "secret_statistique")
        }, key


def test_a_change_to_the_sites_waits_for_the_refresh(
    anonymous: requests.Session, db: psycopg.Connection, database_url: str
) -> None:
    """The collections serve the stored snapshot: a site's new population is not in the figures
    until the next refresh (documented in the README), then it is."""
    site, population = db.execute(
        "SELECT id, population_total FROM resorption.sites WHERE departement_code = '93' "
        "AND status = 'open' AND population_total IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()

    def seine_saint_denis() -> dict:
        r = anonymous.get("/collections/stats_departements/items/93", params={"f": "json"})
        assert r.status_code == 200, r.text
        return r.json()["properties"]

    before = seine_saint_denis()
    assert before["population"] is not None  # published, so that the change can show
    try:
        db.execute(
            "UPDATE resorption.sites SET population_total = %s WHERE id = %s", (population + 100, site)
        )
        assert seine_saint_denis() == before  # not yet: the snapshot is the one of the last refresh
        assert live_figures(db)["departement", "93"]["population"] == before["population"] + 100
        refresh_by_command(database_url)
        after = seine_saint_denis()
        assert after["population"] == before["population"] + 100
        assert after["population"] == live_figures(db)["departement", "93"]["population"]
    finally:
        db.execute("UPDATE resorption.sites SET population_total = %s WHERE id = %s", (population, site))
        refresh_by_command(database_url)
    assert seine_saint_denis() == before


def test_nobody_but_the_owner_can_refresh_or_read_the_snapshot(
    anonymous: requests.Session, db: psycopg.Connection
) -> None:
    """No route or process starts the computation, and no role a request or the application runs
    as may execute the refresh or read the live computation or the snapshot: only the two
    published views."""
    for method in ("GET", "POST"):
        for path in ("/donnees-ouvertes/rafraichir", "/donnees-ouvertes/stats_departements/rafraichir"):
            r = anonymous.request(method, path)
            assert r.status_code in (404, 405), (method, path, r.status_code)
    processes = anonymous.get("/processes", params={"f": "json"}).json()["processes"]
    assert not [
        p["id"] for p in processes if "ouvert" in p["id"] or "opendata" in p["id"] or "rafra" in p["id"]
    ]

    roles = [APP_DB_USER, ANONYMOUS_DB_ROLE, *reader_roles(POLICY)]
    roles += [writer_role(*reader) for reader in reader_roles(POLICY).values()]
    for role in roles:
        assert not db.execute(
            "SELECT has_function_privilege(%s, 'resorption.refresh_opendata()', 'EXECUTE')", (role,)
        ).fetchone()[0], role
        for relation in ("resorption.opendata_figures", "resorption.opendata_snapshot"):
            rights = db.execute(
                "SELECT has_table_privilege(%(r)s, %(t)s, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE') "
                "OR has_any_column_privilege(%(r)s, %(t)s, 'SELECT')",
                {"r": role, "t": relation},
            ).fetchone()[0]
            assert not rights, (role, relation)
    for role in (ANONYMOUS_DB_ROLE, *reader_roles(POLICY)):  # what requests run as
        for view in ("resorption.opendata_departements", "resorption.opendata_regions"):
            assert db.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, view)).fetchone()[0]
    # Tried for real: refused by PostgreSQL itself.
    with psycopg.connect(db.info.dsn) as conn:
        for role in (ANONYMOUS_DB_ROLE, *reader_roles(POLICY)):
            with conn.transaction(force_rollback=True):
                conn.execute(f'SET LOCAL ROLE "{role}"')
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT resorption.refresh_opendata()")


def test_the_snapshot_holds_only_what_is_published(
    anonymous: requests.Session, db: psycopg.Connection
) -> None:
    """The stored rows carry no column beyond the published ones (no hidden value, no count of
    sites or people behind a cell, no date of a change) and every value is the one served."""
    columns = [
        r[0]
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'resorption' "
            "AND table_name = 'opendata_snapshot' ORDER BY ordinal_position"
        )
    ]
    assert columns == ["level", "code", *SNAPSHOT_COLUMNS]
    served = published_from_api(anonymous)
    cursor = db.execute(
        f"SELECT level, code, {', '.join(SNAPSHOT_COLUMNS)} FROM resorption.opendata_snapshot"
    )
    stored = {(row[0], row[1]): dict(zip(SNAPSHOT_COLUMNS, row[2:], strict=True)) for row in cursor}
    assert set(stored) == set(served)
    for key, row in stored.items():
        row["as_of"] = row["as_of"].isoformat()
        assert row == {c: served[key][c] for c in SNAPSHOT_COLUMNS}, key


def test_the_last_snapshot_is_served_until_the_publisher_refreshes_it(
    anonymous: requests.Session,
    db: psycopg.Connection,
    database_url: str,
    base_url: str,
    mqtt_address: broker.BrokerAddress,
    tmp_path: Path,
) -> None:
    """Before the day's refresh the collections still answer, with the last snapshot and its own
    day; the publisher (`resorption publish`, always running) sees it is older than today in
    Paris and computes today's."""
    yesterday = clock.today() - dt.timedelta(days=1)
    db.execute("UPDATE resorption.opendata_snapshot SET as_of = %s", (yesterday,))

    def days() -> set[str]:
        r = anonymous.get("/collections/stats_regions/items", params={"limit": 100})
        assert r.status_code == 200 and len(r.json()["features"]) == 18, r.text
        return {f["properties"]["as_of"] for f in r.json()["features"]}

    assert days() == {yesterday.isoformat()}
    cursor = "SELECT name FROM resorption.outbox_cursors WHERE name = 'mqtt'"
    had_cursor = db.execute(cursor).fetchone() is not None
    publisher = PublisherProcess(database_url, base_url, tmp_path / "publisher.log")
    publisher.start()
    try:
        deadline = time.monotonic() + 30
        while days() != {clock.today().isoformat()} and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        publisher.kill()
        if not had_cursor:  # a publisher's position holds back the outbox's purge (test_outbox)
            db.execute("DELETE FROM resorption.outbox_cursors WHERE name = 'mqtt'")
    assert days() == {clock.today().isoformat()}, publisher.log.read_text()


# The published views as revision 0036 left them: computed from the sites at each request.
VIEWS_OF_0036 = """
CREATE VIEW resorption.opendata_departements WITH (security_barrier) AS
SELECT d.code, d.name, d.region_code, r.name AS region_name,
       (now() AT TIME ZONE 'Europe/Paris')::date AS as_of,
       f.open_sites, f.population, f.minors, f.households,
       f.closed_resorbed, f.closed_by_justice, f.closed_by_pref_admin, f.closed_by_city_admin,
       f.closed_other, f.closed_unknown, f.secret_statistique,
       d.geom_simplified AS geom
FROM resorption.departements d
JOIN resorption.regions r ON r.code = d.region_code
JOIN resorption.opendata_figures f ON f.level = 'departement' AND f.code = d.code;
CREATE VIEW resorption.opendata_regions WITH (security_barrier) AS
SELECT r.code, r.name,
       (now() AT TIME ZONE 'Europe/Paris')::date AS as_of,
       f.open_sites, f.population, f.minors, f.households,
       f.closed_resorbed, f.closed_by_justice, f.closed_by_pref_admin, f.closed_by_city_admin,
       f.closed_other, f.closed_unknown, f.secret_statistique,
       r.geom_simplified AS geom
FROM resorption.regions r
JOIN resorption.opendata_figures f ON f.level = 'region' AND f.code = r.code;
"""


def test_revision_0038_moves_a_database_of_0036_to_the_snapshot(scratch_url: str) -> None:
    """A database as 0036 left it (views computed at each request, no snapshot) gets the table,
    the refresh that only its owner runs, the views reading the table, and a first snapshot."""
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0036")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(
            "DROP VIEW resorption.opendata_departements, resorption.opendata_regions; "
            "DROP FUNCTION resorption.refresh_opendata(); DROP TABLE resorption.opendata_snapshot"
        )
        conn.execute(VIEWS_OF_0036)
        conn.execute(
            "INSERT INTO resorption.regions (code, name) VALUES ('11', 'Île-de-France'); "
            "INSERT INTO resorption.departements (code, name, region_code) VALUES ('93', 'Seine-Saint-Denis', '11')"
        )
    upgrade(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for view in ("opendata_departements", "opendata_regions"):
            definition = conn.execute(
                "SELECT pg_get_viewdef(%s::regclass)", (f"resorption.{view}",)
            ).fetchone()[0]
            assert "opendata_snapshot" in definition and "opendata_figures" not in definition, view
        assert conn.execute(
            "SELECT NOT has_function_privilege('public', 'resorption.refresh_opendata()', 'EXECUTE')"
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT level, code, as_of, open_sites FROM resorption.opendata_snapshot ORDER BY 1"
        ).fetchall()
        assert rows == [("departement", "93", clock.today(), None), ("region", "11", clock.today(), None)]
        assert conn.execute("SELECT code, as_of FROM resorption.opendata_departements").fetchall() == [
            ("93", clock.today())
        ]


# --- the suppression rules on made-up sites ------------------------------------------------


@pytest.fixture
def tx(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A transaction without any site, rolled back after the test."""
    with psycopg.connect(db.info.dsn) as conn:
        conn.execute("DELETE FROM resorption.sites")
        yield conn
        conn.rollback()


def add_sites(
    conn: psycopg.Connection,
    commune: str,
    n: int,
    people: int | None = 20,
    status: str = "open",
    minors: int | None = None,
) -> None:
    """`n` sites in one commune, open or closed last month."""
    closed = status != "open"
    conn.execute(
        "INSERT INTO resorption.sites (location, commune_code, declared_at, status, closed_at, "
        "closing_context, population_total, population_minors) "
        "SELECT ST_PointOnSurface(c.geom), c.code, date '2020-01-01', %s, "
        "CASE WHEN %s THEN current_date - 30 END, CASE WHEN %s THEN 'fermeture' END, %s, %s "
        "FROM resorption.communes c, generate_series(1, %s) WHERE c.code = %s",
        (status, closed, closed, people, minors, n, commune),
    )


def background(conn: psycopg.Connection, status: str = "open") -> None:
    """Two regions hidden by the primary rule (4 sites each in Corse and Centre-Val de Loire),
    together large enough that the national total minus the published regions tells nothing."""
    add_sites(conn, "2A004", 4, status=status)  # Ajaccio
    add_sites(conn, "45234", 4, status=status)  # Orléans


def figures(conn: psycopg.Connection, measure: str = "open_sites") -> dict[str, int | None]:
    """One measure, by 'departement code' or 'region code' key, straight from the views."""
    return {f"{level} {code}": p[measure] for (level, code), p in published_from_views(conn).items()}


def test_region_minus_published_departements_reveals_no_small_count(tx: psycopg.Connection) -> None:
    """Bretagne publishes 16 sites: Ille-et-Vilaine (10) and Finistère (6) pass the rule, but the
    other départements hold 0, so Finistère is hidden too; otherwise 16 − 10 − 6 would tell 0."""
    background(tx)
    add_sites(tx, "35238", 10)  # Rennes
    add_sites(tx, "29019", 6)  # Brest
    f = figures(tx)
    assert f["region 53"] == 16
    assert f["departement 35"] == 10
    assert f["departement 29"] is None
    assert f["departement 22"] is None and f["departement 56"] is None
    assert f["region 94"] is None and f["region 24"] is None
    assert secrecy_violations(truth(tx), published_from_views(tx)) == []


def test_a_hidden_region_needs_a_complement_at_national_level(tx: psycopg.Connection) -> None:
    """One site in Bretagne alone: the national total minus the published regions would tell it.
    The smallest published region, Corse, is hidden too, with one of its départements (else it
    would be the sum of its published départements)."""
    add_sites(tx, "2A004", 6)  # Ajaccio
    add_sites(tx, "2B033", 5)  # Bastia
    add_sites(tx, "75056", 30)  # Paris
    add_sites(tx, "93066", 40)  # Saint-Denis
    add_sites(tx, "35238", 1)
    f = figures(tx)
    assert f["region 53"] is None
    assert f["region 94"] is None
    assert (f["departement 2A"], f["departement 2B"]) == (6, None)
    assert f["region 11"] == 70
    assert f["departement 93"] == 40 and f["departement 75"] is None
    assert secrecy_violations(truth(tx), published_from_views(tx)) == []


def test_people_stand_behind_every_figure(tx: psycopg.Connection) -> None:
    """Sites whose population is unknown count as sites, not as people: Gironde publishes its
    8 sites but not the population of the 4 whose population is known."""
    background(tx)
    add_sites(tx, "33063", 4, people=None)  # Bordeaux
    add_sites(tx, "33063", 4, people=30, minors=12)
    add_sites(tx, "64445", 6, people=20)  # Pau
    add_sites(tx, "33063", 3, people=20, status="resorbed")  # 3 sites: too few
    add_sites(tx, "64445", 5, people=1, status="closed_by_justice")  # 5 sites but 5 people: too few
    f = published_from_views(tx)
    gironde, region = f["departement", "33"], f["region", "75"]
    assert gironde["open_sites"] == 8
    assert gironde["population"] is None and gironde["minors"] is None
    assert region["open_sites"] == 14 and region["population"] == 240
    assert region["closed_resorbed"] is None and region["closed_by_justice"] is None
    assert gironde["secret_statistique"] is True
    assert secrecy_violations(truth(tx), published_from_views(tx)) == []


def test_closed_sites_count_since_2019(tx: psycopg.Connection) -> None:
    """Sites closed before 2019 are not counted."""
    background(tx, status="closed_by_pref_admin")
    add_sites(tx, "75056", 6, status="closed_by_pref_admin")
    add_sites(tx, "93066", 6, status="closed_by_pref_admin")
    tx.execute(
        "UPDATE resorption.sites SET declared_at = '2017-01-01', closed_at = '2018-12-31' "
        "WHERE commune_code = '93066'"
    )
    f = figures(tx, "closed_by_pref_admin")
    assert f["region 11"] == 6
    assert f["departement 75"] is None  # the other départements of the region hold 0
    assert secrecy_violations(truth(tx), published_from_views(tx)) == []
