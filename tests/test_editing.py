"""Editing through the HTTP API (OGC API Features Part 4): create, replace, patch, delete.

Every test writes its own sites and actions in Gironde and deletes them when it ends
(as the owner), so that the demo rows other modules count stay as they were.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from owslib.ogcapi.features import Features
from owslib.util import Authentication
from pyproj import Transformer

from tests.fix_users import TestUser

BORDEAUX = (-0.5792, 44.8378)  # commune 33063
PARIS = (2.3522, 48.8566)  # outside Gironde
GENEVA = (6.1432, 46.2044)  # outside France
ITEMS = "/collections/sites/items"


def site(point: tuple[float, float] = BORDEAUX, **properties: Any) -> dict[str, Any]:
    """A minimal valid site as a GeoJSON Feature."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(point)},
        "properties": {"name": "Site des tests d'édition", "declared_at": "2024-03-01", **properties},
    }


class Writer:
    """Requests as one test user, remembering what it created so that it can be removed."""

    def __init__(self, base_url: str, created: list[tuple[str, int]]) -> None:
        self.base_url = base_url
        self.created = created

    def request(self, user: TestUser | None, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**(user.headers if user else {}), **kwargs.pop("headers", {})}
        r = requests.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)
        if method == "POST" and r.status_code == 201:
            collection = path.split("/")[2]
            self.created.append((collection, int(r.headers["Location"].rsplit("/", 1)[1])))
        return r

    def create(self, user: TestUser, feature: dict[str, Any], collection: str = "sites") -> str:
        r = self.request(user, "POST", f"/collections/{collection}/items", json=feature)
        assert r.status_code == 201, r.text
        return r.headers["Location"].removeprefix(self.base_url)


@pytest.fixture
def created(database_url: str) -> Iterator[list[tuple[str, int]]]:
    """The items a test created; deleted as the owner when it ends."""
    items: list[tuple[str, int]] = []
    yield items
    with psycopg.connect(database_url) as conn:
        for collection, identifier in items:
            conn.execute(f"DELETE FROM resorption.{collection} WHERE id = %s", (identifier,))


@pytest.fixture
def w(base_url: str, created: list[tuple[str, int]]) -> Writer:
    return Writer(base_url, created)


@pytest.fixture
def correspondent(users: dict[str, TestUser]) -> TestUser:
    return users["correspondent-departement-33"]


@pytest.fixture
def admin(users: dict[str, TestUser]) -> TestUser:
    return users["national-admin-nation"]


# -- creating ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/geo+json", "application/geo+json; charset=utf-8", "application/json"]
)
def test_create_a_site_as_qgis_sends_it(
    w: Writer, correspondent: TestUser, db: psycopg.Connection, content_type: str
) -> None:
    import orjson

    body = orjson.dumps(site(population_total=12, population_households=4, social_origins=["european"]))
    r = w.request(correspondent, "POST", ITEMS, data=body, headers={"Content-Type": content_type})
    assert r.status_code == 201, r.text
    path = r.headers["Location"].removeprefix(w.base_url)
    assert path.startswith(ITEMS + "/")
    got = w.request(correspondent, "GET", path)
    assert got.status_code == 200
    assert got.headers["ETag"] == r.headers["ETag"]
    props = got.json()["properties"]
    # The commune comes from the location, the département and region from the commune.
    assert (props["commune_code"], props["departement_code"], props["region_code"]) == ("33063", "33", "75")
    assert props["population_total"] == 12
    assert props["social_origins"] == ["european"]
    assert props["status"] == "open"
    created_by, updated_by = db.execute(
        "SELECT created_by, updated_by FROM resorption.sites WHERE id = %s", (int(path.rsplit("/", 1)[1]),)
    ).fetchone()
    assert created_by == updated_by == correspondent.username


def test_content_crs_lambert_93_is_reprojected(
    w: Writer, correspondent: TestUser, db: psycopg.Connection
) -> None:
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True).transform(*BORDEAUX)
    headers = {"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/2154>"}
    r = w.request(correspondent, "POST", ITEMS, json=site((x, y)), headers=headers)
    assert r.status_code == 201, r.text
    identifier = int(r.headers["Location"].rsplit("/", 1)[1])
    lon, lat = db.execute(
        "SELECT ST_X(location), ST_Y(location) FROM resorption.sites WHERE id = %s", (identifier,)
    ).fetchone()
    assert (round(lon, 5), round(lat, 5)) == BORDEAUX


def test_an_unsupported_content_crs_is_400(w: Writer, correspondent: TestUser) -> None:
    r = w.request(correspondent, "POST", ITEMS, json=site(), headers={"Content-Crs": "<EPSG:27572>"})
    assert r.status_code == 400
    assert "Content-Crs" in r.json()["description"]


def test_every_problem_is_listed_in_french(w: Writer, correspondent: TestUser) -> None:
    feature = site(
        name="x" * 40,
        population_total="beaucoup",
        population_households=0,
        status="demoli",
        declared_at="2024-13-01",
        departement_code="75",
        water_rating="good",
        couleur="rouge",
    )
    r = w.request(correspondent, "POST", ITEMS, json=feature)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "InvalidParameterValue"
    problems = {e["property"]: e["message"] for e in body["errors"]}
    assert set(problems) == {
        "name",
        "population_total",
        "population_households",
        "status",
        "declared_at",
        "departement_code",
        "water_rating",
        "couleur",
    }
    assert "35 caractères au plus" in problems["name"]
    assert "nombre entier attendu" in problems["population_total"]
    assert "supérieur ou égal à 1" in problems["population_households"]
    assert "valeurs permises" in problems["status"] and "open" in problems["status"]
    assert "AAAA-MM-JJ" in problems["declared_at"]
    assert "lecture seule" in problems["departement_code"]
    assert "lecture seule" in problems["water_rating"]
    assert "inconnue" in problems["couleur"]
    for message in problems.values():
        assert message in body["description"]


def test_a_check_constraint_is_named_by_its_field(w: Writer, correspondent: TestUser) -> None:
    r = w.request(correspondent, "POST", ITEMS, json=site(population_total=3, population_households=5))
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == [
        {
            "property": "population_households",
            "message": "le nombre de ménages dépasse le nombre de personnes",
        }
    ]


def test_a_missing_required_value_is_400(w: Writer, correspondent: TestUser) -> None:
    feature = site()
    del feature["properties"]["declared_at"]
    feature["geometry"] = None
    r = w.request(correspondent, "POST", ITEMS, json=feature)
    assert r.status_code == 400
    assert {e["property"] for e in r.json()["errors"]} == {"declared_at", "geometry"}


@pytest.mark.parametrize(
    ("geometry", "expected"),
    [
        ({"type": "Point", "coordinates": list(GENEVA)}, "aucun département français"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "de type Point"),
        ({"type": "Point", "coordinates": ["a", 1]}, "coordonnées mal formées"),
        ({"type": "Point", "coordinates": [200, 44]}, "hors des longitudes"),
    ],
)
def test_geometry_must_be_a_point_in_france(
    w: Writer, correspondent: TestUser, geometry: dict, expected: str
) -> None:
    feature = site()
    feature["geometry"] = geometry
    r = w.request(correspondent, "POST", ITEMS, json=feature)
    assert r.status_code == 400, r.text
    (problem,) = r.json()["errors"]
    assert problem["property"] == "geometry"
    assert expected in problem["message"]


def test_unknown_commune_is_400(w: Writer, correspondent: TestUser) -> None:
    r = w.request(correspondent, "POST", ITEMS, json=site(commune_code="99999"))
    assert r.status_code == 400
    assert r.json()["errors"][0]["property"] == "commune_code"


# -- who may write where ------------------------------------------------------------------


def test_a_location_outside_the_write_scope_is_403(w: Writer, correspondent: TestUser) -> None:
    r = w.request(correspondent, "POST", ITEMS, json=site(PARIS))
    assert r.status_code == 403, r.text
    assert "hors de votre territoire" in r.json()["description"]
    # Naming a commune elsewhere is no way around it.
    r = w.request(correspondent, "POST", ITEMS, json=site(commune_code="75056"))
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("operator-departement-33", 403),  # no create_site option
        ("external-observer-departement-33", 403),
        ("intervener-departement-33", 403),
        ("national-actor-nation", 403),
        ("operator-opts-departement-33", 201),
        ("institutional-partner-departement-33", 201),
        ("local-admin-departement-33", 201),
    ],
)
def test_who_may_create_a_site(w: Writer, users: dict[str, TestUser], username: str, status: int) -> None:
    r = w.request(users[username], "POST", ITEMS, json=site())
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["description"].startswith("Votre rôle ne vous permet pas")


def test_anonymous_callers_must_sign_in(w: Writer) -> None:
    assert w.request(None, "POST", ITEMS, json=site()).status_code == 401


def test_hidden_fields_are_refused_like_unknown_ones(w: Writer, users: dict[str, TestUser]) -> None:
    operator = users["operator-opts-departement-33"]  # may create, may not read owners
    r = w.request(operator, "POST", ITEMS, json=site(owner_type="private", owner_name="M. Dupont"))
    unknown = w.request(operator, "POST", ITEMS, json=site(owner_type="private", proprietaire="M. Dupont"))
    assert r.status_code == unknown.status_code == 400
    assert r.json()["errors"][0]["message"] == unknown.json()["errors"][0]["message"]


def test_closing_needs_the_close_right(w: Writer, users: dict[str, TestUser]) -> None:
    partner = users["institutional-partner-departement-33"]  # writes, closes only with the option
    path = w.create(partner, site())
    closing = {"properties": {"status": "closed_by_justice", "closed_at": "2024-06-01"}}
    r = w.request(partner, "PATCH", path, json=closing)
    assert r.status_code == 403, r.text
    assert "fermer" in r.json()["description"]
    operator = users["operator-opts-departement-33"]
    r = w.request(operator, "PATCH", path, json=closing)
    assert r.status_code == 204, r.text
    assert w.request(operator, "GET", path).json()["properties"]["status"] == "closed_by_justice"


def test_updating_outside_the_scope_is_403_and_unreadable_is_404(
    w: Writer, admin: TestUser, users: dict[str, TestUser]
) -> None:
    paris = w.create(admin, site(PARIS))
    r = w.request(users["correspondent-departement-33"], "PATCH", paris, json={"properties": {"name": "x"}})
    assert r.status_code == 403
    # An operator of Gironde cannot even read a site of Paris.
    r = w.request(users["operator-opts-departement-33"], "PATCH", paris, json={"properties": {"name": "x"}})
    assert r.status_code == 404
    # Moving a site of Gironde to Paris leaves the scope too.
    bordeaux = w.create(admin, site())
    move = {"geometry": {"type": "Point", "coordinates": list(PARIS)}}
    r = w.request(users["correspondent-departement-33"], "PATCH", bordeaux, json=move)
    assert r.status_code == 403


# -- replacing, patching, deleting ---------------------------------------------------------


def test_patch_merges_and_put_replaces(w: Writer, correspondent: TestUser) -> None:
    path = w.create(correspondent, site(population_total=10, address="1 rue des Tests"))
    r = w.request(
        correspondent,
        "PATCH",
        path,
        json={"properties": {"population_total": 14, "address": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 204, r.text
    props = w.request(correspondent, "GET", path).json()["properties"]
    assert (props["population_total"], props["address"], props["name"]) == (
        14,
        None,
        "Site des tests d'édition",
    )
    # PUT: what is not given takes its default; read-only values sent back as read are ignored.
    feature = w.request(correspondent, "GET", path).json()
    feature["properties"] = {
        **{k: v for k, v in feature["properties"].items() if k in ("id", "departement_code", "commune_name")},
        "declared_at": "2023-01-02",
        "name": "Remplacé",
    }
    r = w.request(correspondent, "PUT", path, json=feature)
    assert r.status_code == 204, r.text
    props = w.request(correspondent, "GET", path).json()["properties"]
    assert (props["name"], props["declared_at"], props["population_total"]) == (
        "Remplacé",
        "2023-01-02",
        None,
    )
    assert props["commune_code"] == "33063"


def test_stale_if_match_is_412(w: Writer, correspondent: TestUser) -> None:
    path = w.create(correspondent, site())
    etag = w.request(correspondent, "GET", path).headers["ETag"]
    r = w.request(
        correspondent, "PATCH", path, json={"properties": {"population_total": 5}}, headers={"If-Match": etag}
    )
    assert r.status_code == 204
    assert r.headers["ETag"] != etag
    r = w.request(
        correspondent, "PATCH", path, json={"properties": {"population_total": 6}}, headers={"If-Match": etag}
    )
    assert r.status_code == 412
    assert "modifié depuis" in r.json()["description"]
    assert w.request(correspondent, "GET", path).json()["properties"]["population_total"] == 5
    r = w.request(correspondent, "DELETE", path, headers={"If-Match": etag})
    assert r.status_code in (403, 412)


def test_concurrent_editors_lose_no_update(
    w: Writer, correspondent: TestUser, users: dict[str, TestUser]
) -> None:
    path = w.create(correspondent, site(population_total=10))
    etag = w.request(correspondent, "GET", path).headers["ETag"]
    editors = {
        correspondent.username: (correspondent, 20),
        "local-admin-departement-33": (users["local-admin-departement-33"], 30),
    }
    results: dict[str, int] = {}
    start = threading.Barrier(len(editors))

    def edit(name: str, user: TestUser, value: int) -> None:
        start.wait()
        r = w.request(
            user, "PATCH", path, json={"properties": {"population_total": value}}, headers={"If-Match": etag}
        )
        results[name] = r.status_code

    threads = [threading.Thread(target=edit, args=(n, u, v)) for n, (u, v) in editors.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [204, 412]
    winner = next(n for n, s in results.items() if s == 204)
    assert (
        w.request(correspondent, "GET", path).json()["properties"]["population_total"] == editors[winner][1]
    )


def test_only_a_national_admin_deletes(w: Writer, correspondent: TestUser, admin: TestUser) -> None:
    path = w.create(correspondent, site())
    r = w.request(correspondent, "DELETE", path)
    assert r.status_code == 403
    assert "supprimer" in r.json()["description"]
    assert w.request(admin, "DELETE", path).status_code == 204
    assert w.request(admin, "GET", path).status_code == 404
    assert w.request(admin, "DELETE", path).status_code == 404


def test_writes_are_audited(w: Writer, admin: TestUser, db: psycopg.Connection) -> None:
    path = w.create(admin, site(owner_type="private", owner_name="SCI des Tests"))
    identifier = path.rsplit("/", 1)[1]
    assert w.request(admin, "PATCH", path, json={"properties": {"population_total": 3}}).status_code == 204
    assert w.request(admin, "DELETE", path).status_code == 204
    rows = db.execute(
        "SELECT action, username, groups, method FROM resorption.audit_log "
        "WHERE collection = 'sites' AND item_id = %s AND action <> 'read' ORDER BY id",
        (identifier,),
    ).fetchall()
    assert rows == [
        ("create", admin.username, ["owner"], "POST"),
        ("update", admin.username, [], "PATCH"),
        ("delete", admin.username, [], "DELETE"),
    ]


# -- OPTIONS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("external-observer-departement-33", "GET, HEAD, OPTIONS"),
        ("operator-departement-33", "GET, HEAD, OPTIONS"),
        ("operator-opts-departement-33", "GET, HEAD, OPTIONS, POST"),
        ("national-admin-nation", "GET, HEAD, OPTIONS, POST"),
    ],
)
def test_options_on_items(w: Writer, users: dict[str, TestUser], username: str, allowed: str) -> None:
    r = w.request(users[username], "OPTIONS", ITEMS)
    assert r.status_code == 204
    assert r.headers["Allow"] == allowed


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("external-observer-departement-33", "GET, HEAD, OPTIONS"),
        ("correspondent-departement-33", "GET, HEAD, OPTIONS, PUT, PATCH"),
        ("national-admin-nation", "GET, HEAD, OPTIONS, PUT, PATCH, DELETE"),
        ("local-admin-departement-33", "GET, HEAD, OPTIONS, PUT, PATCH"),
    ],
)
def test_options_on_an_item(
    w: Writer, admin: TestUser, users: dict[str, TestUser], username: str, allowed: str
) -> None:
    path = w.create(admin, site())
    r = w.request(users[username], "OPTIONS", path)
    assert r.status_code == 204
    assert r.headers["Allow"] == allowed


# -- actions -------------------------------------------------------------------------------


def test_create_an_action_with_a_polygon(w: Writer, users: dict[str, TestUser]) -> None:
    intervener = users["intervener-departement-33"]
    lon, lat = BORDEAUX
    ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat + 0.01], [lon, lat]]
    action = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "name": "Médiation scolaire (tests)",
            "started_at": "2024-01-01",
            "topics": ["schooling"],
        },
    }
    path = w.create(intervener, action, "actions")
    got = w.request(intervener, "GET", path).json()
    assert got["geometry"]["type"] == "MultiPolygon"
    assert got["properties"]["departement_code"] == "33"
    r = w.request(intervener, "PATCH", path, json={"properties": {"topics": ["schooling", "nope"]}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["property"] == "topics"
    r = w.request(
        users["external-observer-departement-33"], "POST", "/collections/actions/items", json=action
    )
    assert r.status_code == 403


# -- a real client --------------------------------------------------------------------------


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def test_owslib_round_trip(base_url: str, admin: TestUser, created: list[tuple[str, int]]) -> None:
    api = Features(base_url, auth=Authentication(auth_delegate=_Bearer(admin.token)))
    assert api.collection_item_create("sites", site(population_total=7)) is True
    identifier = api.response_headers["Location"].rsplit("/", 1)[1]
    created.append(("sites", int(identifier)))
    feature = api.collection_item("sites", identifier)
    assert feature["properties"]["population_total"] == 7
    feature["properties"] = {"declared_at": "2024-03-01", "name": "Par OWSLib", "population_total": 8}
    api.headers["Content-Type"] = "application/geo+json"
    assert api.collection_item_update("sites", identifier, feature) is True
    assert api.collection_item("sites", identifier)["properties"]["population_total"] == 8
    assert api.collection_item_delete("sites", identifier) is True
    with pytest.raises(RuntimeError):
        api.collection_item("sites", identifier)


# -- the database's last word ------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        (
            "INSERT INTO resorption.sites (commune_code, declared_at, location) "
            "VALUES ('75056', '2024-01-01', ST_Point(2.35, 48.85, 4326))",
            "row-level security",
        ),
        (
            "INSERT INTO resorption.sites (commune_code, declared_at, location, owner_name) "
            "VALUES ('33063', '2024-01-01', ST_Point(-0.58, 44.84, 4326), 'x')",
            "column privilege",
        ),
        (
            "INSERT INTO resorption.sites (commune_code, declared_at, location, status, closed_at) "
            "VALUES ('33063', '2024-01-01', ST_Point(-0.58, 44.84, 4326), 'unknown', '2024-02-01')",
            "close scope",
        ),
        ("DELETE FROM resorption.sites WHERE departement_code = '33'", "delete scope"),
    ],
)
def test_the_database_refuses_what_the_scopes_forbid(database_url: str, statement: str, why: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE resorption_write")
        for key, value in {
            "resorption.sites_scope": "*",
            "resorption.sites_write_scope": "33",
            "resorption.sites_close_scope": "",
            "resorption.sites_delete_scope": "",
            "resorption.username": "test",
        }.items():
            conn.execute("SELECT set_config(%s, %s, false)", (key, value))
        try:
            cur = conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
            return
        assert why == "delete scope" and cur.rowcount == 0, why
        conn.rollback()
