"""Attacks that must fail, and the database as the last line: a bug in Python fails closed."""

from __future__ import annotations

import psycopg
import pytest
import requests
from psycopg import errors

from resorption import database
from resorption import settings as app_settings
from resorption.caller import Caller
from resorption.errors import ResorptionError
from resorption.identity import Principal
from resorption.providers.features import FeatureProvider
from resorption.query import FeatureQuery
from tests.fix_db import audited_reads
from tests.fix_users import AREA, CATALOG, OTHER_AREA, TestUser

OPERATOR = "operator-departement-33"


@pytest.fixture
def operator(users: dict[str, TestUser]) -> TestUser:
    return users[OPERATOR]


def test_a_bbox_across_the_border_returns_only_the_scope(
    http: requests.Session, db: psycopg.Connection, operator: TestUser
) -> None:
    """A box over Gironde and its neighbours: the operator of Gironde sees Gironde only."""
    box = "-2,43.5,1.5,46"
    inside = db.execute(
        "SELECT count(*) FILTER (WHERE departement_code = %s), count(*) FROM resorption.sites "
        "WHERE ST_Intersects(location, ST_MakeEnvelope(-2, 43.5, 1.5, 46, 4326))",
        (AREA,),
    ).fetchone()
    assert inside[1] > inside[0] > 0, "the box must reach sites of other départements"
    body = http.get(
        "/collections/sites/items",
        params={"bbox": box, "limit": 1000, "properties": "departement_code"},
        headers=operator.headers,
    ).json()
    assert body["numberMatched"] == inside[0]
    assert {f["properties"]["departement_code"] for f in body["features"]} == {AREA}


INJECTIONS = [
    "' OR 1=1 --",
    "1; DROP TABLE resorption.sites; --",
    "\\' OR ''='",
    "33' OR 'x'='x",
    ")) OR TRUE --",
]
PARAMETERS = [
    "departement_code",
    "q",
    "sortby",
    "properties",
    "bbox",
    "datetime",
    "crs",
    "limit",
    "offset",
    "filter",
    "filter-lang",
    "filter-crs",
    "bbox-crs",
    "resulttype",
    "skipGeometry",
    "f",
]


@pytest.mark.parametrize("parameter", PARAMETERS)
@pytest.mark.parametrize("value", INJECTIONS)
def test_sql_injection_in_every_parameter(
    http: requests.Session, db: psycopg.Connection, operator: TestUser, parameter: str, value: str
) -> None:
    r = http.get(
        "/collections/sites/items",
        params={parameter: value, "properties": "departement_code"}
        if parameter != "properties"
        else {parameter: value},
        headers=operator.headers,
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert {f["properties"].get("departement_code", AREA) for f in r.json()["features"]} <= {AREA}
    assert db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0] > 0


def test_an_injection_in_the_item_id_is_a_404(http: requests.Session, operator: TestUser) -> None:
    for value in ["1 OR 1=1", "1'; --", "1)--"]:
        assert http.get(f"/collections/sites/items/{value}", headers=operator.headers).status_code == 404


def test_the_application_role_reads_nothing_by_itself(app_connection: psycopg.Connection) -> None:
    for table in ("sites", "actions", "users", "api_tokens", "audit_log"):
        with pytest.raises(errors.InsufficientPrivilege):
            app_connection.execute(f"SELECT 1 FROM resorption.{table} LIMIT 1")
        app_connection.rollback()
    owner, bypass, superuser = app_connection.execute(
        "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'resorption' AND tableowner = current_user), "
        "rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert (owner, bypass, superuser) == (0, False, False)


# The two kinds of reader role (sql/005_row_security.sql): the same columns, the scoped read
# policies or the nationwide ones.
READERS = ("resorption_read_finances_justice_owner", "resorption_nationwide_read_finances_justice_owner")


@pytest.mark.parametrize("role", READERS)
def test_row_security_without_a_scope_shows_nothing(app_connection: psycopg.Connection, role: str) -> None:
    app_connection.execute(f"SET ROLE {role}")
    assert app_connection.execute("SELECT count(*) FROM resorption.sites").fetchone()[0] == 0
    assert app_connection.execute("SELECT count(*) FROM resorption.actions").fetchone()[0] == 0
    assert app_connection.execute("SELECT count(*) FROM resorption.site_closing_solutions").fetchone()[0] == 0


# The tables of an action's details: each row names its action (action_id).
ACTION_DETAILS = (
    "action_departements",
    "action_organisations",
    "action_finances",
    "action_indicators",
    "action_sites",
)


@pytest.mark.parametrize("role", READERS)
@pytest.mark.parametrize("actions_scope", [None, "", AREA, "*"])
@pytest.mark.parametrize("sites_scope", [None, AREA, "*"])
def test_action_details_follow_the_scope_of_their_action(
    app_connection: psycopg.Connection,
    db: psycopg.Connection,
    actions_scope: str | None,
    sites_scope: str | None,
    role: str,
) -> None:
    """Each detail of an action (départements, partners, finances, indicators, linked sites) is
    visible exactly when its action is (and, for a linked site, the site too): a national
    reader sees them all, a département reader those of the actions with one of their
    départements in it, a reader without a scope none (sql/040_actions.sql). A nationwide role
    whose scopes are not the nation's sees nothing (fail closed)."""

    def visible(column: str, scope: str | None, table: str) -> str:
        if scope is None or scope == "":
            return "false"
        if scope == "*":
            return "true"
        if role.startswith("resorption_nationwide"):
            return "false"
        if table == "actions":
            return (
                f"EXISTS (SELECT 1 FROM resorption.action_departements v WHERE v.action_id = d.{column} "
                f"AND v.departement_code = '{scope}')"
            )
        return f"EXISTS (SELECT 1 FROM resorption.sites v WHERE v.id = d.{column} AND v.departement_code = '{scope}')"

    app_connection.execute(f"SET ROLE {role}")
    for name, value in (("resorption.actions_scope", actions_scope), ("resorption.sites_scope", sites_scope)):
        if value is not None:
            app_connection.execute("SELECT set_config(%s, %s, false)", (name, value))
    for table in ACTION_DETAILS:
        rule = visible("action_id", actions_scope, "actions")
        if table == "action_sites":
            rule += " AND " + visible("site_id", sites_scope, "sites")
        expected = db.execute(f"SELECT count(*) FROM resorption.{table} d WHERE {rule}").fetchone()[0]
        seen = app_connection.execute(f"SELECT count(*) FROM resorption.{table}").fetchone()[0]
        assert seen == expected, (table, actions_scope, sites_scope)
    # the view a page of a département's actions names shows only the caller's départements
    outside = app_connection.execute(
        "SELECT count(*) FROM resorption.actions_in_scope WHERE departement_code <> %s", (AREA,)
    ).fetchone()[0]
    assert outside == (
        0
        if actions_scope != "*"
        else db.execute(
            "SELECT count(*) FROM resorption.action_departements WHERE departement_code <> %s", (AREA,)
        ).fetchone()[0]
    )
    assert db.execute("SELECT count(*) FROM resorption.action_sites").fetchone()[0] > 0


# The tables of a site's details, and the columns naming the sites each row needs to read.
SITE_DETAILS = {
    "site_closing_solutions": ("site_id",),
    "site_reinstallation_origins": ("site_id", "origin_site_id"),
    "site_actors": ("site_id",),
    "site_followers": ("site_id",),
}


@pytest.mark.parametrize("role", READERS)
@pytest.mark.parametrize("sites_scope", [None, "", AREA, "*"])
def test_site_details_follow_the_scope_of_their_site(
    app_connection: psycopg.Connection,
    db: psycopg.Connection,
    users: dict,
    sites_scope: str | None,
    role: str,
) -> None:
    """Each detail of a site (closing solutions, origins of a reinstallation, actors, the
    caller's follows) is visible exactly when its site is (and the origin site too): a national
    reader sees them all, a département reader those of its sites, a reader without a scope
    none (sql/035_site_details.sql, 160_actors.sql: resorption.site_readable). A nationwide role
    whose scope is a département's sees nothing (fail closed)."""
    nationwide = role.startswith("resorption_nationwide")
    username = next(iter(users))
    follower = db.execute("SELECT id FROM resorption.users WHERE username = %s", (username,)).fetchone()[0]
    sites = [
        db.execute("SELECT min(id) FROM resorption.sites WHERE departement_code = %s", (d,)).fetchone()[0]
        for d in (AREA, OTHER_AREA)
    ]
    organisation = db.execute("SELECT min(id) FROM resorption.organisations").fetchone()[0]
    added = [
        db.execute(
            "INSERT INTO resorption.site_actors (site_id, organisation_id, themes, declared_by) "
            "VALUES (%s, %s, '{health}', 'test') RETURNING id",
            (site, organisation),
        ).fetchone()[0]
        for site in sites
    ]
    for site in sites:
        db.execute(
            "INSERT INTO resorption.site_followers (user_id, site_id) VALUES (%s, %s)", (follower, site)
        )
    try:
        app_connection.execute(f"SET ROLE {role}")
        app_connection.execute("SELECT set_config('resorption.user_id', %s, false)", (str(follower),))
        if sites_scope is not None:
            app_connection.execute("SELECT set_config('resorption.sites_scope', %s, false)", (sites_scope,))
        for table, columns in SITE_DETAILS.items():
            if sites_scope in (None, "") or (nationwide and sites_scope != "*"):
                rule = "false"
            elif sites_scope == "*":
                rule = "true"
            else:
                rule = " AND ".join(
                    f"EXISTS (SELECT 1 FROM resorption.sites v WHERE v.id = d.{c} AND v.departement_code = '{AREA}')"
                    for c in columns
                )
            if table == "site_followers":
                rule += f" AND d.user_id = {follower}"
            every = db.execute(f"SELECT count(*) FROM resorption.{table}").fetchone()[0]
            expected = db.execute(f"SELECT count(*) FROM resorption.{table} d WHERE {rule}").fetchone()[0]
            seen = app_connection.execute(f"SELECT count(*) FROM resorption.{table}").fetchone()[0]
            assert seen == expected, (table, sites_scope)
            assert every > 0, table
            if sites_scope == AREA and not nationwide:
                assert 0 < expected < every, (table, expected, every)
    finally:
        db.execute(
            "DELETE FROM resorption.site_followers WHERE user_id = %s AND site_id = ANY(%s)",
            (follower, sites),
        )
        db.execute("DELETE FROM resorption.site_actors WHERE id = ANY(%s)", (added,))


def _read_policies(db: psycopg.Connection) -> dict[str, set[str]]:
    """For each table whose read policies name a kind of role, the roles they name."""
    rows = db.execute(
        "SELECT tablename, unnest(roles) FROM pg_policies WHERE schemaname = 'resorption' AND cmd = 'SELECT' "
        "AND tablename IN (SELECT tablename FROM pg_policies WHERE roles && "
        "'{resorption_scoped,resorption_nationwide}'::name[])"
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, role in rows:
        found.setdefault(table, set()).add(role)
    return found


def test_each_table_read_by_scope_has_one_policy_of_each_kind(db: psycopg.Connection) -> None:
    """A table whose scoped read policy has no nationwide twin would show national readers
    nothing; one read by PUBLIC too would give the nationwide roles its sub-plans back."""
    policies = _read_policies(db)
    assert {"sites", "actions", "site_actors", "action_sites", "actions_history"} <= set(policies)
    assert {t: r for t, r in policies.items() if r != {"resorption_scoped", "resorption_nationwide"}} == {}


def test_each_reader_and_writer_role_is_of_one_kind(db: psycopg.Connection) -> None:
    """Each transaction role reads under one kind of policy: the one its name says."""
    rows = db.execute(
        "SELECT r.rolname, array_agg(k.rolname ORDER BY k.rolname) FILTER (WHERE k.rolname IS NOT NULL) "
        "FROM pg_roles r LEFT JOIN pg_roles k ON k.rolname IN ('resorption_scoped', 'resorption_nationwide') "
        "AND pg_has_role(r.rolname, k.rolname, 'USAGE') "
        "WHERE r.rolname ~ '^resorption_(nationwide_)?(read|write)' GROUP BY r.rolname"
    ).fetchall()
    assert len(rows) == 32
    for name, kinds in rows:
        assert kinds == (
            ["resorption_nationwide"] if name.startswith("resorption_nationwide_") else ["resorption_scoped"]
        )


@pytest.mark.parametrize("scope", ["*", AREA, ""])
def test_a_nationwide_reader_reads_every_row_under_the_nation_only(
    app_connection: psycopg.Connection, db: psycopg.Connection, scope: str
) -> None:
    """Under the nationwide policies, every row of every table read by scope when the scopes are
    the nation's, and none otherwise: a wrong choice of role fails closed."""
    app_connection.execute("SET ROLE resorption_nationwide_read_finances_justice_owner")
    for name in ("resorption.sites_scope", "resorption.actions_scope"):
        app_connection.execute("SELECT set_config(%s, %s, false)", (name, scope))
    for table in _read_policies(db):
        # the caller's follows only: as user 0, whose are none, in every case
        every = (
            db.execute(f"SELECT count(*) FROM resorption.{table}").fetchone()[0]
            if table != "site_followers"
            else 0
        )
        seen = app_connection.execute(f"SELECT count(*) FROM resorption.{table}").fetchone()[0]
        assert seen == (every if scope == "*" else 0), (table, scope)
        if table in (
            "sites",
            "actions",
            "action_departements",
            "action_sites",
            "site_counts",
            "site_blocks",
            "site_blocks_nation",
            "sites_history",
        ):
            assert every > 0, table


def test_a_national_reader_s_statements_carry_no_sub_plan_of_the_scoped_rule(
    app_connection: psycopg.Connection,
) -> None:
    """One action with its details and one site with its actions, as the server reads them: under
    the nationwide policies, no sub-plan (the scoped rule's per-row lookups); under the scoped
    ones with the same national scopes, several (sql/005_row_security.sql)."""
    statement = (
        "EXPLAIN (COSTS OFF) SELECT a.id, "
        "(SELECT count(*) FROM resorption.action_departements d WHERE d.action_id = a.id), "
        "(SELECT count(*) FROM resorption.action_indicators i WHERE i.action_id = a.id), "
        "EXISTS (SELECT 1 FROM resorption.action_sites l JOIN resorption.sites s ON s.id = l.site_id "
        "WHERE l.action_id = a.id) FROM resorption.actions a WHERE a.id = 1"
    )
    sub_plans = {}
    for role in READERS:
        app_connection.execute(f"SET ROLE {role}")
        for name in ("resorption.sites_scope", "resorption.actions_scope"):
            app_connection.execute("SELECT set_config(%s, '*', false)", (name,))
        plan = "\n".join(r[0] for r in app_connection.execute(statement))
        sub_plans[role] = plan.count("SubPlan")
    # the statement's own three sub-selects, and nothing else
    assert sub_plans == {READERS[0]: sub_plans[READERS[0]], READERS[1]: 3}
    assert sub_plans[READERS[0]] > 3


def test_a_forbidden_column_is_refused_by_postgresql(app_connection: psycopg.Connection) -> None:
    app_connection.execute("SET ROLE resorption_read")
    app_connection.execute("SELECT set_config('resorption.sites_scope', '*', false)")
    with pytest.raises(errors.InsufficientPrivilege):
        app_connection.execute("SELECT owner_name FROM resorption.sites LIMIT 1")
    app_connection.rollback()
    app_connection.execute("SET ROLE resorption_read")
    with pytest.raises(errors.InsufficientPrivilege):
        app_connection.execute("SELECT count(*) FROM resorption.action_finances")


def test_a_provider_bug_naming_a_forbidden_field_yields_an_error_not_data(database_url: str) -> None:
    """Even if Python wrongly believed the operator may read owners, PostgreSQL refuses."""
    operator = Principal(
        username=OPERATOR,
        user_id=1,
        role="operator",
        area_level="departement",
        area_code=AREA,
        area_departements=frozenset({AREA}),
    )
    try:
        provider = FeatureProvider(
            {"name": "resorption.providers.features.FeatureProvider", "type": "feature", "data": "sites"},
            Caller.of(operator, app_settings.Settings.from_env(database_url)),
        )
        assert "owner_name" not in {f.name for f in provider.readable}
        sites = CATALOG["sites"]
        buggy = FeatureQuery(collection=sites, readable=(sites.fields["owner_name"],), limit=5)
        with pytest.raises((ResorptionError, psycopg.Error)):
            provider.reader.features(buggy)
    finally:
        database.close_pool()


def test_sensitive_reads_are_audited(http: requests.Session, db: psycopg.Connection, users: dict) -> None:
    admin = users["national-admin-nation"]
    observer = users["external-observer-departement-33"]
    before = db.execute("SELECT coalesce(max(id), 0) FROM resorption.audit_log").fetchone()[0]
    site = http.get("/collections/sites/items", params={"limit": 1}, headers=admin.headers).json()[
        "features"
    ][0]
    http.get(f"/collections/sites/items/{site['id']}", headers=admin.headers)
    http.get("/collections/sites/items", params={"limit": 1}, headers=observer.headers)
    # Only the rows of these requests: a job another test started may still be writing its own.
    rows = audited_reads(
        db,
        "SELECT username, action, collection, item_id, groups, method, path FROM resorption.audit_log "
        "WHERE id > %s AND path LIKE '/collections/sites/items%%' ORDER BY at, id",
        (before,),
        wanted=3,
        timeout=1.5,  # the batch is written within 200 ms: a third row would be there by now
    )
    assert [r[0] for r in rows] == [admin.username, admin.username]  # the observer read nothing sensitive
    assert rows[1][1:5] == ("read", "sites", str(site["id"]), ["justice", "owner"])
    assert rows[1][5] == "GET" and rows[1][6].startswith(f"/collections/sites/items/{site['id']}")


def test_admins_query_the_audit_log_from_the_command_line(
    http: requests.Session, database_url: str, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from resorption.cli.commands import main

    admin = users["national-admin-nation"]
    http.get("/collections/sites/items", params={"limit": 1}, headers=admin.headers)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "400")  # rich would otherwise truncate the table's cells
    result = CliRunner().invoke(main, ["audit", "--user", admin.username, "--group", "owner", "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert admin.username in result.output and "sites" in result.output


def test_static_assets_do_not_check_credentials(anonymous: requests.Session, db: psycopg.Connection) -> None:
    """Even with wrong credentials, a stylesheet is served, and no sign-in failure is counted."""
    before = db.execute("SELECT coalesce(sum(failures), 0) FROM resorption.sign_in_counters").fetchone()[0]
    r = anonymous.get("/static/css/resorption.css", auth=("personne", "mauvais-mot-de-passe"))
    assert r.status_code == 200
    after = db.execute("SELECT coalesce(sum(failures), 0) FROM resorption.sign_in_counters").fetchone()[0]
    assert after == before
