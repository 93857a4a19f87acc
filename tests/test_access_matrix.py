"""The access matrix, generated from config/access-policy.yml: every role × options × area
× read path shows exactly the rows of its scope and the fields of its groups.

Expectations are read from the YAML file here, independently of resorption.policy.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from pathlib import Path

import psycopg
import pytest
import requests
import yaml

from tests.fix_users import AREA, CATALOG, OTHER_AREA, POLICY, TestUser, _username, user_cases

RAW = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "access-policy.yml").read_text())
CASES = user_cases(POLICY)
IDS = [_username(*case) for case in CASES]


def expected_groups(role: str, options: frozenset[str]) -> set[str]:
    grants = RAW["roles"][role]["groups"]
    return {
        g
        for g, grant in grants.items()
        if grant == "always" or (grant.startswith("option:") and grant.split(":", 1)[1] in options)
    }


def expected_scope(role: str, options: frozenset[str], level: str, collection: str) -> str:
    """'nation', 'area' or 'none' for reading `collection`."""
    rule = RAW["roles"][role][collection]["read"]
    if rule.startswith("option:"):
        rule = "area" if rule.split(":", 1)[1] in options else "none"
    if rule == "area" and level == "nation":
        return "nation"
    return rule


def visible_fields(collection: str, groups: set[str]) -> set[str]:
    return {
        name
        for name, f in CATALOG[collection].fields.items()
        if f.group.sensitive is None or f.group.sensitive in groups
    }


def hidden_fields(collection: str, groups: set[str]) -> set[str]:
    return set(CATALOG[collection].fields) - visible_fields(collection, groups)


@cache
def departements_with(db_dsn: str, table: str) -> frozenset[str]:
    with psycopg.connect(db_dsn) as conn:
        return frozenset(
            r[0] for r in conn.execute(f"SELECT DISTINCT departement_code FROM resorption.{table}")
        )


def count_in(db: psycopg.Connection, table: str, scope: str) -> int:
    if scope == "nation":
        return db.execute(f"SELECT count(*) FROM resorption.{table}").fetchone()[0]
    if table == "actions":
        return db.execute(
            "SELECT count(DISTINCT action_id) FROM resorption.action_departements WHERE departement_code = %s",
            (AREA,),
        ).fetchone()[0]
    return db.execute(
        f"SELECT count(*) FROM resorption.{table} WHERE departement_code = %s", (AREA,)
    ).fetchone()[0]


def get(http: requests.Session, user: TestUser, path: str, **params: str) -> requests.Response:
    return http.get(path, params=params, headers=user.headers)


@pytest.fixture(params=CASES, ids=IDS)
def user(request: pytest.FixtureRequest, users: dict[str, TestUser]) -> TestUser:
    return users[_username(*request.param)]


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_rows_are_limited_to_the_scope(
    http: requests.Session, db: psycopg.Connection, user: TestUser, collection: str
) -> None:
    scope = expected_scope(user.role, user.options, user.area_level, collection)
    r = get(
        http,
        user,
        f"/collections/{collection}/items",
        limit="10000",
        skipGeometry="true",
        properties="departement_code",
    )
    if scope == "none":
        assert r.status_code == 404
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == len(body["features"]) == count_in(db, collection, scope)
    hits = get(http, user, f"/collections/{collection}/items", resulttype="hits").json()
    assert hits["numberMatched"] == count_in(db, collection, scope)
    if scope == "area" and collection == "sites":
        assert {f["properties"]["departement_code"] for f in body["features"]} == {AREA}


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_fields_are_those_of_the_groups(http: requests.Session, user: TestUser, collection: str) -> None:
    if expected_scope(user.role, user.options, user.area_level, collection) == "none":
        return
    groups = expected_groups(user.role, user.options)
    expected = visible_fields(collection, groups)
    page = get(http, user, f"/collections/{collection}/items", limit="3").json()
    for feature in page["features"]:
        assert set(feature["properties"]) == expected
    one = get(http, user, f"/collections/{collection}/items/{page['features'][0]['id']}").json()
    assert set(one["properties"]) == expected
    queryables = get(http, user, f"/collections/{collection}/queryables").json()["properties"]
    assert not set(queryables) & hidden_fields(collection, groups)
    schema = get(http, user, f"/collections/{collection}/schema", f="json").json()["properties"]
    assert not set(schema) & hidden_fields(collection, groups)
    assert {f for f in expected if CATALOG[collection].fields[f].group.sensitive} <= set(schema)
    r = get(http, user, f"/collections/{collection}/items", limit="3", f="csv")
    if RAW["roles"][user.role]["export"] == "none":
        assert r.status_code == 403, "a file is an export (test_bulk_reads)"
        return
    header = next(csv.reader(io.StringIO(r.text)))
    assert not set(header) & hidden_fields(collection, groups)


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_hidden_fields_are_like_unknown_ones(http: requests.Session, user: TestUser, collection: str) -> None:
    """Filtering, sorting or selecting a hidden field answers exactly as for a field that does not exist."""
    if expected_scope(user.role, user.options, user.area_level, collection) == "none":
        return
    hidden = sorted(
        f
        for f in hidden_fields(collection, expected_groups(user.role, user.options))
        if CATALOG[collection].fields[f].filterable
    )
    for name in hidden:
        for param, value, fake_value in (
            ("filter", f"{name} IS NULL", "nexistepas IS NULL"),
            ("sortby", name, "nexistepas"),
            ("properties", name, "nexistepas"),
        ):
            r = get(http, user, f"/collections/{collection}/items", **{param: value})
            fake = get(http, user, f"/collections/{collection}/items", **{param: fake_value})
            assert r.status_code == fake.status_code == 400
            assert r.json()["description"].replace(name, "X") == fake.json()["description"].replace(
                "nexistepas", "X"
            )
        # an equality parameter on a hidden field is refused like any unknown parameter (OGC API
        # Features Part 1, /req/core/query-param-unknown), with the same words
        r = get(http, user, f"/collections/{collection}/items", resulttype="hits", **{name: "x"})
        fake = get(http, user, f"/collections/{collection}/items", resulttype="hits", nexistepas="x")
        assert r.status_code == fake.status_code == 400
        assert r.json()["description"].replace(name, "X") == fake.json()["description"].replace("nexistepas", "X")


def test_an_item_outside_the_scope_does_not_exist(
    http: requests.Session, db: psycopg.Connection, user: TestUser
) -> None:
    outside = db.execute(
        "SELECT min(id) FROM resorption.sites WHERE departement_code = %s", (OTHER_AREA,)
    ).fetchone()[0]
    scope = expected_scope(user.role, user.options, user.area_level, "sites")
    r = get(http, user, f"/collections/sites/items/{outside}")
    assert r.status_code == (200 if scope == "nation" else 404)
    if r.status_code == 404:
        missing = get(http, user, "/collections/sites/items/987654321")
        assert r.json()["description"].replace(str(outside), "N") == missing.json()["description"].replace(
            "987654321", "N"
        )


def test_html_pages_show_no_hidden_field(http: requests.Session, user: TestUser) -> None:
    if expected_scope(user.role, user.options, user.area_level, "sites") == "none":
        return
    groups = expected_groups(user.role, user.options)
    page = get(http, user, "/collections/sites/items", limit="1").json()
    html = get(http, user, f"/collections/sites/items/{page['features'][0]['id']}", f="html").text
    for name in hidden_fields("sites", groups):
        label = CATALOG["sites"].fields[name].label.fr
        assert f">{label}<" not in html, label


@pytest.mark.parametrize(
    "path",
    [
        "/collections/sites",
        "/collections/sites/items",
        "/collections/sites/items/1",
        "/collections/sites/queryables",
        "/collections/sites/schema",
        "/collections/actions/items",
        "/collections/actions/items/1",
        "/collections/actions/queryables",
    ],
)
def test_anonymous_callers_are_asked_to_sign_in(anonymous: requests.Session, path: str) -> None:
    r = anonymous.get(path)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert "features" not in r.text


def test_anonymous_collection_list_shows_only_public_layers(anonymous: requests.Session) -> None:
    listed = {c["id"] for c in anonymous.get("/collections", params={"f": "json"}).json()["collections"]}
    assert not listed & {"sites", "actions"}
    assert {"regions", "departements", "communes"} <= listed


def test_signed_in_collection_list_shows_sites(http: requests.Session, users: dict[str, TestUser]) -> None:
    user = users[_username("correspondent", frozenset(), "departement", AREA)]
    listed = {
        c["id"]
        for c in http.get("/collections", params={"f": "json"}, headers=user.headers).json()["collections"]
    }
    assert {"sites", "actions", "departements"} <= listed
