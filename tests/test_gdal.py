"""GDAL's OAPIF driver (Debian's GDAL 3.6 command-line tools) reads and copies our collections.

`ogrinfo` must list and describe our layers; `ogr2ogr` must copy every feature to a
GeoPackage, paging through our `next` links (PAGE_SIZE is kept small so that it
pages), keep our ids as feature ids, our coordinates and our attributes, and honour
a spatial filter the way our `bbox` does. With CPL_DEBUG on, GDAL logs every URL it
fetches on stderr: that is how the tests see the paging from the client's side. A
machine without GDAL fails here: it never skips.

GDAL signs in the way its users do: HTTP Basic with a username and an API token, from
the GDAL_HTTP_AUTH and GDAL_HTTP_USERPWD configuration options (environment variables,
so that the token stays off the command line). Most tests run as the national
administrator, who reads every row and field; a user of one département must copy only
that département's sites, and GDAL without credentials must see only public layers.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import psycopg.sql
import pytest
import requests
from shapely import wkb
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from tests.api import all_features, number_matched
from tests.fix_users import AREA
from tests.fix_users import TestUser as User  # pytest would collect a `Test…` name

LAMBERT_93 = "http://www.opengis.net/def/crs/EPSG/0/2154"
PAGE_SIZE = 100
TOLERANCE_M = 0.05
# GeoPackage geometry header: flags bits 1-3 give the envelope's size in bytes.
ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
ADMIN = "national-admin-nation"
# Reads the sites of its département only, and no owner.
OPERATOR = f"operator-departement-{AREA}"
# The collections anyone may read: the reference layers and the open data, if any.
REFERENCE_LAYERS = {"regions", "departements", "communes"}
PUBLIC_LAYERS = REFERENCE_LAYERS | {"stats_departements", "stats_regions"}


@dataclass(frozen=True)
class Expected:
    """What GDAL should see in one collection."""

    table: str
    ogrinfo_geometry: str
    gpkg_geometry: str
    # Scalar properties GDAL must copy exactly as our API serves them.
    compared: tuple[str, ...]


EXPECTED = {
    "sites": Expected(
        table="resorption.sites",
        ogrinfo_geometry="Point",
        gpkg_geometry="POINT",
        compared=(
            "name",
            "external_ref",
            "commune_code",
            "commune_name",
            "status",
            "declared_at",
            "population_total",
            "population_minors",
        ),
    ),
    "actions": Expected(
        table="resorption.actions",
        ogrinfo_geometry="Multi Polygon",
        gpkg_geometry="MULTIPOLYGON",
        compared=("name", "reference", "started_at", "ended_at", "place_type", "people_followed"),
    ),
}


@dataclass(frozen=True)
class Copy:
    """A GeoPackage written by ogr2ogr from one of our collections, and the URLs GDAL fetched."""

    path: Path
    layer: str
    fetched: list[str]

    def rows(self, columns: tuple[str, ...] = ()) -> dict[int, dict[str, Any]]:
        """fid → {geometry, column…} for every row of the copied layer."""
        with sqlite3.connect(self.path) as conn:
            conn.row_factory = sqlite3.Row
            names = ", ".join(f'"{c}"' for c in ("fid", "geom", *columns))
            return {
                row["fid"]: {"geometry": gpkg_geometry(row["geom"]), **{c: row[c] for c in columns}}
                for row in conn.execute(f'SELECT {names} FROM "{self.layer}"')
            }

    def columns(self) -> list[str]:
        """The copied layer's columns, in order."""
        with sqlite3.connect(self.path) as conn:
            return [row[1] for row in conn.execute(f'PRAGMA table_info("{self.layer}")')]

    def geometry_column(self) -> tuple[str, int]:
        """Geometry type name and SRID the GeoPackage declares for the layer."""
        with sqlite3.connect(self.path) as conn:
            return conn.execute(
                "SELECT geometry_type_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                (self.layer,),
            ).fetchone()


def gpkg_geometry(blob: bytes | None) -> BaseGeometry | None:
    """A GeoPackage geometry blob (header, optional envelope, then WKB) as a shapely geometry."""
    if blob is None:
        return None
    assert blob[:2] == b"GP", blob[:8]
    envelope = ENVELOPE_BYTES[(blob[3] >> 1) & 0b111]
    return wkb.loads(bytes(blob[8 + envelope :]))


def tool(name: str) -> str:
    """Path of a GDAL command-line tool; the test fails when GDAL is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} est introuvable : installez gdal-bin (GDAL ≥ 3.6, pilote OAPIF).")
    return path


def run(*args: str, user: User | None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a GDAL tool with HTTP debugging on, signed in as `user` (Basic: username and API
    token) or without credentials; fail with its output when it fails, if `check`."""
    env = {**os.environ, "CPL_DEBUG": "ON", "GDAL_HTTP_TIMEOUT": "120"}
    env.pop("GDAL_HTTP_AUTH", None)
    env.pop("GDAL_HTTP_USERPWD", None)
    if user is not None:
        env.update(GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=f"{user.username}:{user.token}")
    done = subprocess.run(
        [tool(args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} a échoué (code {done.returncode}).\n"
            f"--- stderr ---\n{done.stderr[-5000:]}\n--- stdout ---\n{done.stdout[-2000:]}"
        )
    return done


def fetched_urls(stderr: str) -> list[str]:
    """The URLs GDAL fetched, from its `HTTP: Fetch(…)` debug lines."""
    return re.findall(r"^HTTP: Fetch\((.+)\)$", stderr, flags=re.MULTILINE)


def item_pages(fetched: list[str], collection: str, limit: int) -> set[int]:
    """Offsets of the items pages of `limit` features GDAL fetched from a collection."""
    offsets = set()
    for url in fetched:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.path.endswith(f"/collections/{collection}/items") and query.get("limit") == [str(limit)]:
            offsets.add(int(query.get("offset", ["0"])[0]))
    return offsets


def ogr2ogr(base_url: str, user: User, out: Path, collection: str, page_size: int, *options: str) -> Copy:
    """Copy a collection to a GeoPackage with ogr2ogr as `user`, keeping our ids as fids."""
    done = run(
        "ogr2ogr",
        "-f",
        "GPKG",
        "-preserve_fid",
        *options,
        "-oo",
        f"PAGE_SIZE={page_size}",
        str(out),
        f"OAPIF:{base_url}",
        collection,
        user=user,
    )
    return Copy(out, collection, fetched_urls(done.stderr))


def features_by_id(
    http: requests.Session, collection: str, params: dict[str, Any] | None = None
) -> dict[int, dict[str, Any]]:
    """id → feature for a whole query of our API."""
    return {f["id"]: f for f in all_features(http, f"/collections/{collection}/items", params)}


def ogrinfo_layers(stdout: str) -> dict[str, str]:
    """Layer name → geometry type, as `ogrinfo <datasource>` lists them."""
    return dict(re.findall(r"^\d+: (\w+) \(title: .+\) \(([\w ]+)\)$", stdout, flags=re.MULTILINE))


def ogrinfo_fields(stdout: str) -> list[str]:
    """Field names listed by `ogrinfo -so` (the lines after the axis mapping line)."""
    lines = stdout.split("Data axis to CRS axis mapping:", 1)[1].splitlines()[1:]
    return [m.group(1) for line in lines if (m := re.match(r"^(\w+): \w+", line))]


@pytest.fixture(scope="module")
def admin(users: dict[str, User]) -> User:
    """The national administrator, who reads every row and field."""
    return users[ADMIN]


@pytest.fixture(scope="module")
def copies(base_url: str, admin: User, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Copy]:
    """Each collection copied whole by ogr2ogr, PAGE_SIZE features per request."""
    out = tmp_path_factory.mktemp("gdal")
    return {c: ogr2ogr(base_url, admin, out / f"{c}.gpkg", c, PAGE_SIZE) for c in EXPECTED}


@pytest.fixture(scope="module")
def api(http: requests.Session) -> dict[str, dict[int, dict[str, Any]]]:
    """Our API's features per collection, in CRS84, by id."""
    return {c: features_by_id(http, c) for c in EXPECTED}


@pytest.fixture
def journal_messages(http: requests.Session, admin: User, db: psycopg.Connection) -> Iterator[None]:
    """One message in each journal: GDAL reads a layer's geometry type from its first features,
    and a new database has no message at all."""
    written = []
    for journal, parent, key in (
        ("site_comments", "sites", "site_id"),
        ("action_comments", "actions", "action_id"),
    ):
        first = http.get(f"/collections/{parent}/items", params={"limit": 1}, headers=admin.headers).json()
        feature = {
            "type": "Feature",
            "geometry": None,
            "properties": {key: first["features"][0]["id"], "message": "Message pour GDAL"},
        }
        r = http.post(
            f"/collections/{journal}/items",
            json=feature,
            headers={**admin.headers, "Content-Type": "application/geo+json"},
        )
        assert r.status_code == 201, r.text
        written.append((journal, int(r.headers["Location"].rsplit("/", 1)[1])))
    yield
    for journal, identifier in written:
        db.execute(
            psycopg.sql.SQL("DELETE FROM {} WHERE id = %s").format(
                psycopg.sql.Identifier("resorption", journal)
            ),
            (identifier,),
        )


@pytest.mark.usefixtures("journal_messages")
def test_ogrinfo_lists_our_layers_with_geometry_types(base_url: str, admin: User) -> None:
    """`ogrinfo OAPIF:<landing page>` lists every collection, with its title and geometry type."""
    stdout = run("ogrinfo", "-ro", f"OAPIF:{base_url}", user=admin).stdout
    assert ogrinfo_layers(stdout) == {
        "sites": "Point",
        "actions": "Multi Polygon",
        "site_changes": "Point",
        "action_changes": "Multi Polygon",
        "site_comments": "Point",
        "action_comments": "Multi Polygon",
        "regions": "Multi Polygon",
        "departements": "Multi Polygon",
        "communes": "Multi Polygon",
        "stats_departements": "Multi Polygon",
        "stats_regions": "Multi Polygon",
        "activity": "Point",
    }, stdout


@pytest.mark.parametrize("collection", EXPECTED)
def test_ogrinfo_describes_a_layer(
    base_url: str, admin: User, http: requests.Session, db: psycopg.Connection, collection: str
) -> None:
    """`ogrinfo -so` gives the geometry type, the count and every readable property as a field."""
    stdout = run("ogrinfo", "-ro", "-so", f"OAPIF:{base_url}", collection, user=admin).stdout
    assert f"Geometry: {EXPECTED[collection].ogrinfo_geometry}\n" in stdout, stdout
    in_db = db.execute(f"SELECT count(*) FROM {EXPECTED[collection].table}").fetchone()[0]
    assert f"Feature Count: {in_db}\n" in stdout, stdout
    assert 'ID["EPSG",4326]' in stdout and "Data axis to CRS axis mapping: 2,1" in stdout
    schema = http.get(f"/collections/{collection}/schema", params={"f": "json"}).json()
    readable = [name for name in schema["properties"] if name != "geometry"]
    assert ogrinfo_fields(stdout) == readable


@pytest.mark.parametrize("collection", EXPECTED)
def test_ogr2ogr_pages_through_next_links(
    copies: dict[str, Copy], http: requests.Session, collection: str
) -> None:
    """ogr2ogr asks for pages of PAGE_SIZE and follows our `next` links to the last page."""
    matched = number_matched(http, collection)
    assert matched > PAGE_SIZE
    fetched = copies[collection].fetched
    assert item_pages(fetched, collection, PAGE_SIZE) == set(range(0, matched, PAGE_SIZE)), fetched


@pytest.mark.parametrize("collection", EXPECTED)
def test_ogr2ogr_copies_every_feature_once(
    copies: dict[str, Copy], http: requests.Session, db: psycopg.Connection, collection: str
) -> None:
    """The GeoPackage holds as many rows as numberMatched and the database, with our ids as fids."""
    rows = copies[collection].rows()
    table = EXPECTED[collection].table
    ids = sorted(r[0] for r in db.execute(f"SELECT id FROM {table}"))
    assert len(rows) == number_matched(http, collection) == len(ids)
    assert sorted(rows) == ids
    assert copies[collection].geometry_column() == (EXPECTED[collection].gpkg_geometry, 4326)


@pytest.mark.parametrize("collection", EXPECTED)
def test_ogr2ogr_keeps_geometries_and_attributes(
    copies: dict[str, Copy], api: dict[str, dict[int, dict[str, Any]]], collection: str
) -> None:
    """Coordinates (longitude first) and scalar properties arrive unchanged in the GeoPackage."""
    compared = EXPECTED[collection].compared
    rows = copies[collection].rows(compared)
    assert sorted(rows) == sorted(api[collection])
    differences = []
    for fid, row in rows.items():
        served = api[collection][fid]
        geometry = shape(served["geometry"])
        assert row["geometry"].geom_type == geometry.geom_type, (fid, row["geometry"].geom_type)
        if not row["geometry"].equals_exact(geometry, 1e-9):
            differences.append((fid, "geometry", geometry.wkt[:80], row["geometry"].wkt[:80]))
        differences.extend(
            (fid, name, served["properties"][name], row[name])
            for name in compared
            if _gpkg_value(served["properties"][name]) != row[name]
        )
    assert not differences, f"{len(differences)} différences (id, quoi, API, GDAL) : {differences[:10]}"


def _gpkg_value(value: Any) -> Any:
    """How a GeoJSON property value is stored in a GeoPackage column (booleans are integers)."""
    return int(value) if isinstance(value, bool) else value


def test_ogr2ogr_reprojects_sites_where_our_api_puts_them(
    base_url: str, admin: User, http: requests.Session, tmp_path: Path
) -> None:
    """GDAL's own reprojection to Lambert-93 (-t_srs EPSG:2154) matches our crs=EPSG:2154."""
    copy = ogr2ogr(base_url, admin, tmp_path / "sites-l93.gpkg", "sites", PAGE_SIZE, "-t_srs", "EPSG:2154")
    assert copy.geometry_column() == ("POINT", 2154)
    rows = copy.rows()
    l93 = features_by_id(http, "sites", {"crs": LAMBERT_93})
    served = {fid: f["geometry"]["coordinates"] for fid, f in l93.items()}
    assert sorted(rows) == sorted(served)
    far = [
        (fid, [row["geometry"].x, row["geometry"].y], served[fid])
        for fid, row in rows.items()
        if math.hypot(row["geometry"].x - served[fid][0], row["geometry"].y - served[fid][1]) > TOLERANCE_M
    ]
    assert not far, f"{len(far)} sites à plus de {TOLERANCE_M} m (id, GDAL, API) : {far[:10]}"


def test_ogr2ogr_spatial_filter_matches_our_bbox(
    base_url: str, admin: User, http: requests.Session, db: psycopg.Connection, tmp_path: Path
) -> None:
    """`ogr2ogr -spat` on Gironde's bounding box copies exactly the sites our `bbox` returns."""
    box = db.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) AS e FROM resorption.departements WHERE code = '33') gironde"
    ).fetchone()
    page_size = 10
    copy = ogr2ogr(
        base_url, admin, tmp_path / "gironde.gpkg", "sites", page_size, "-spat", *(repr(v) for v in box)
    )
    in_db = [
        r[0]
        for r in db.execute(
            "SELECT id FROM resorption.sites"
            " WHERE ST_Intersects(location, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) ORDER BY id",
            box,
        )
    ]
    bbox = ",".join(repr(v) for v in box)
    matched = number_matched(http, "sites", {"bbox": bbox})
    served = sorted(features_by_id(http, "sites", {"bbox": bbox}))
    assert sorted(copy.rows()) == served == in_db
    assert len(in_db) == matched > page_size
    # GDAL passed the box to our server and paged through the filtered result (its first,
    # unfiltered request of one page only probes the layer's schema when it opens it).
    filtered = [u for u in copy.fetched if "bbox=" in u]
    assert item_pages(filtered, "sites", page_size) == set(range(0, matched, page_size)), copy.fetched
    assert item_pages(copy.fetched, "sites", page_size) == {0, *range(0, matched, page_size)}


def test_ogr2ogr_attribute_filter_is_sent_as_query_parameters(
    base_url: str, admin: User, db: psycopg.Connection, tmp_path: Path
) -> None:
    """`ogr2ogr -where` on two properties becomes `?status=…&departement_code=…` and selects the same rows."""
    departement = db.execute(
        "SELECT departement_code FROM resorption.sites WHERE status = 'open'"
        " GROUP BY departement_code ORDER BY count(*) DESC, departement_code LIMIT 1"
    ).fetchone()[0]
    page_size = 10
    where = f"status = 'open' AND departement_code = '{departement}'"
    copy = ogr2ogr(base_url, admin, tmp_path / "open.gpkg", "sites", page_size, "-where", where)
    in_db = [
        r[0]
        for r in db.execute(
            "SELECT id FROM resorption.sites WHERE status = 'open' AND departement_code = %s ORDER BY id",
            (departement,),
        )
    ]
    assert sorted(copy.rows()) == in_db
    assert len(in_db) > page_size
    # The filter ran on our server, page after page, not in GDAL over the whole collection.
    filtered = [u for u in copy.fetched if "status=open" in u and f"departement_code={departement}" in u]
    assert item_pages(filtered, "sites", page_size) == set(range(0, len(in_db), page_size)), copy.fetched


def test_ogr2ogr_copies_only_the_departement_of_its_user(
    base_url: str, users: dict[str, User], db: psycopg.Connection, tmp_path: Path
) -> None:
    """An operator of Gironde, signed in with Basic credentials, copies exactly Gironde's sites,
    page after page, and no owner: what the database holds for that département, nothing else."""
    page_size = 10
    copy = ogr2ogr(base_url, users[OPERATOR], tmp_path / "operator.gpkg", "sites", page_size)
    in_db = [
        r[0]
        for r in db.execute(
            "SELECT id FROM resorption.sites WHERE departement_code = %s ORDER BY id", (AREA,)
        )
    ]
    assert len(in_db) > page_size
    rows = copy.rows(("departement_code",))
    assert sorted(rows) == in_db
    assert {row["departement_code"] for row in rows.values()} == {AREA}
    assert "owner_name" not in copy.columns()
    # The credentials went with our `next` links too: every page arrived.
    assert item_pages(copy.fetched, "sites", page_size) == set(range(0, len(in_db), page_size)), copy.fetched


def test_ogrinfo_without_credentials_lists_only_public_layers(
    base_url: str, anonymous: requests.Session
) -> None:
    """Without credentials GDAL lists the public collections our /collections shows anonymous
    callers (reference layers, open data), and neither sites nor actions."""
    stdout = run("ogrinfo", "-ro", f"OAPIF:{base_url}", user=None).stdout
    layers = set(ogrinfo_layers(stdout))
    public = {c["id"] for c in anonymous.get("/collections", params={"f": "json"}).json()["collections"]}
    assert layers == public, stdout
    assert REFERENCE_LAYERS <= layers <= PUBLIC_LAYERS, stdout


def test_ogrinfo_without_credentials_cannot_open_sites(base_url: str) -> None:
    """Without credentials GDAL cannot open `sites`: as a layer of the landing page it does not
    exist, and its own URL answers 401; GDAL fails either way and never fetches a site."""
    by_name = run("ogrinfo", "-ro", "-so", f"OAPIF:{base_url}", "sites", user=None, check=False)
    assert by_name.returncode != 0, by_name.stdout
    assert "Couldn't fetch requested layer sites" in by_name.stdout + by_name.stderr
    by_url = run("ogrinfo", "-ro", "-so", f"OAPIF:{base_url}/collections/sites", user=None, check=False)
    assert by_url.returncode != 0, by_url.stdout
    assert "HTTP error code : 401" in by_url.stderr, by_url.stderr
    fetched = fetched_urls(by_name.stderr) + fetched_urls(by_url.stderr)
    assert not [u for u in fetched if "/collections/sites/items" in u], fetched
