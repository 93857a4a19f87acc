"""Open data: public figures per département and region, under statistical secrecy.

Every expectation is computed here from `resorption.sites` in Python, independently of
the SQL of `070_opendata.sql`: the published figures must equal it where they are
published, stand for at least 5 sites and 10 people, and no hidden figure may be
recovered from the published ones (region minus its départements, national total minus
the regions, or any other linear combination).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
import requests

from resorption import clock

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
    """Both views read straight in the database (to see the effect of made-up sites)."""
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


@pytest.fixture(scope="module")
def published(anonymous: requests.Session) -> Published:
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
