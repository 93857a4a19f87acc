"""History and time travel: versions written by the database, `datetime` reading the past,
the changelog collection, and the demonstration's history.

Trigger tests write as the owner and clean up after themselves. Time-travel tests build
sites with a known past by writing their versions straight into the history table (the
triggers would stamp the clock), then ask the API as different users.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from psycopg.types.json import Jsonb

from tests.fix_users import TestUser

REF = "TEST-HIST-"


def _columns(db: psycopg.Connection) -> str:
    return db.execute(
        "SELECT resorption.history_columns('resorption.sites', 'resorption.sites_history')"
    ).fetchone()[0]


def _insert_site(db: psycopg.Connection, ref: str, commune: str, **values: Any) -> int:
    """A live site, as the owner (its triggers write its first version)."""
    row = {
        "external_ref": REF + ref,
        "commune_code": commune,
        "declared_at": "2020-06-01",
        "population_total": 50,
        **values,
    }
    names = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    return db.execute(
        f"INSERT INTO resorption.sites (location, {names}) "
        f"SELECT ST_PointOnSurface(c.geom), {marks} FROM resorption.communes c WHERE c.code = %s RETURNING id",
        [*row.values(), commune],
    ).fetchone()[0]


def _set_history(
    db: psycopg.Connection, site_id: int, versions: list[tuple[str, str | None, str, dict]]
) -> None:
    """Replace a site's versions by (valid from, valid to, operation, values over the live row).

    `valid to` None is the open current version; operation 'delete' makes the one-instant
    tombstone at `valid from`.
    """
    columns = _columns(db)
    base = db.execute(
        "SELECT to_jsonb(h) FROM resorption.sites_history h WHERE id = %s ORDER BY version_id LIMIT 1",
        (site_id,),
    ).fetchone()[0]
    db.execute("DELETE FROM resorption.sites_history WHERE id = %s", (site_id,))
    for start, end, operation, values in versions:
        bounds = "[]" if operation == "delete" else "[)"
        db.execute(
            f"INSERT INTO resorption.sites_history ({columns}, valid, operation, changed_by, changed_fields) "
            f"SELECT {columns}, tstzrange(%s, %s, %s), %s, 'histoire', %s "
            "FROM jsonb_populate_record(NULL::resorption.sites, %s)",
            (
                start,
                start if operation == "delete" else end,
                bounds,
                operation,
                list(values) if operation == "update" else [],
                Jsonb({**base, **values}),
            ),
        )


@pytest.fixture(scope="module")
def past(database_url: str) -> Iterator[dict[str, int]]:
    """Sites with a known past, in Gironde (A to D) and Seine-Saint-Denis (E).

    - A: 20 people from 2021-01-01, 50 since 2022-06-01 (and a justice procedure, an owner);
    - B: open from 2021-01-01, closed by justice on 2023-03-01;
    - C: open from 2021-01-01, deleted on 2023-01-01;
    - D: declared and recorded in 2024;
    - E: in Seine-Saint-Denis, 30 people since 2021-01-01.
    """
    with psycopg.connect(database_url, autocommit=True) as db:
        a = _insert_site(
            db,
            "A",
            "33063",
            name="Histoire A",
            justice_procedure=True,
            owner_type="private",
            owner_name="SCI Histoire",
        )
        b = _insert_site(
            db, "B", "33063", name="Histoire B", status="closed_by_justice", closed_at="2023-03-01"
        )
        c = _insert_site(db, "C", "33063", name="Histoire C")
        d = _insert_site(db, "D", "33063", name="Histoire D", declared_at="2024-05-01")
        e = _insert_site(db, "E", "93066", name="Histoire E", population_total=30)
        _set_history(
            db,
            a,
            [
                (
                    "2021-01-01",
                    "2022-06-01",
                    "insert",
                    {"population_total": 20, "justice_procedure": False, "owner_name": "Mairie"},
                ),
                (
                    "2022-06-01",
                    None,
                    "update",
                    {"population_total": 50, "justice_procedure": True, "owner_name": "SCI Histoire"},
                ),
            ],
        )
        _set_history(
            db,
            b,
            [
                ("2021-01-01", "2023-03-01T18:00:00Z", "insert", {"status": "open", "closed_at": None}),
                (
                    "2023-03-01T18:00:00Z",
                    None,
                    "update",
                    {"status": "closed_by_justice", "closed_at": "2023-03-01"},
                ),
            ],
        )
        _set_history(db, c, [("2021-01-01", "2023-01-01", "insert", {})])
        db.execute("DELETE FROM resorption.sites WHERE id = %s", (c,))
        # The trigger found no current version and wrote today's tombstone: move it back.
        _set_history(
            db,
            c,
            [
                ("2021-01-01", "2023-01-01", "insert", {}),
                ("2023-01-01", None, "delete", {}),
            ],
        )
        _set_history(db, d, [("2024-05-02", None, "insert", {})])
        _set_history(db, e, [("2021-01-01", None, "insert", {})])
        yield {"A": a, "B": b, "C": c, "D": d, "E": e}
        db.execute("DELETE FROM resorption.sites WHERE external_ref LIKE %s", (REF + "%",))
        db.execute("DELETE FROM resorption.sites_history WHERE external_ref LIKE %s", (REF + "%",))


def _travel(session: requests.Session, when: str | None, **params: str) -> dict[str, dict]:
    """The test sites the API returns at `when` (None: today), by name letter."""
    query = {"filter": f"external_ref LIKE '{REF}%'", "limit": "100", **params}
    if when:
        query["datetime"] = when
    response = session.get("/collections/sites/items", params=query)
    assert response.status_code == 200, response.text
    return {f["properties"]["external_ref"].removeprefix(REF): f for f in response.json()["features"]}


def _as(base_url: str, user: TestUser) -> requests.Session:
    session = requests.Session()
    session.headers.update(user.headers)
    original = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        return original(method, base_url + url if url.startswith("/") else url, *args, timeout=60, **kwargs)

    session.request = request  # type: ignore[method-assign]
    return session


# -- the triggers ------------------------------------------------------------------


@pytest.mark.parametrize("table", ["sites", "actions"])
def test_history_table_has_every_column(db: psycopg.Connection, table: str) -> None:
    """A column added to a live table without its history twin would silently go unversioned."""
    query = (
        "SELECT column_name, data_type, udt_name FROM information_schema.columns "
        "WHERE table_schema = 'resorption' AND table_name = %s"
    )
    live = set(db.execute(query, (table,)).fetchall())
    history = set(db.execute(query, (f"{table}_history",)).fetchall())
    assert live <= history
    assert {r[0] for r in history - live} == {
        "version_id",
        "valid",
        "operation",
        "changed_by",
        "changed_fields",
        "activity_id",  # its event's id in the activity feed (sql/190_activity.sql)
    }


def _versions(conn: psycopg.Connection, site_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT operation::text, changed_by, changed_fields, population_total, upper_inf(valid), "
        "lower(valid) IS NOT DISTINCT FROM upper(valid) FROM resorption.sites_history WHERE id = %s ORDER BY lower(valid), version_id",
        (site_id,),
    ).fetchall()


def test_triggers_write_a_version_per_write(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('resorption.username', 'agent-33', true)")
                site = _insert_site(conn, "T1", "33063", population_total=12)
            with conn.transaction():
                conn.execute("SELECT set_config('resorption.username', 'recenseur', true)")
                conn.execute(
                    "UPDATE resorption.sites SET population_total = 15, population_minors = 4 WHERE id = %s",
                    (site,),
                )
            with conn.transaction():  # "still accurate"
                conn.execute("UPDATE resorption.sites SET confirmed_at = now() WHERE id = %s", (site,))
            with conn.transaction():
                conn.execute("SELECT set_config('resorption.username', 'admin', true)")
                conn.execute("DELETE FROM resorption.sites WHERE id = %s", (site,))
            owner = conn.execute("SELECT session_user").fetchone()[0]
            assert _versions(conn, site) == [
                ("insert", "agent-33", [], 12, False, False),
                ("update", "recenseur", ["population_total", "population_minors"], 15, False, False),
                ("confirm", owner, ["confirmed_at"], 15, False, False),
                ("delete", "admin", [], 15, False, True),
            ]
            ranges = conn.execute(
                "SELECT lower(valid), upper(valid) FROM resorption.sites_history WHERE id = %s "
                "ORDER BY lower(valid)",
                (site,),
            ).fetchall()
            assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
        finally:
            conn.execute("DELETE FROM resorption.sites WHERE external_ref = %s", (REF + "T1",))
            conn.execute("DELETE FROM resorption.sites_history WHERE external_ref = %s", (REF + "T1",))


def test_writes_of_one_transaction_make_one_version(database_url: str) -> None:
    """Nobody else saw the intermediate states: one version, never an empty range."""
    with psycopg.connect(database_url) as conn:
        site = _insert_site(conn, "T2", "33063", population_total=12)
        conn.execute("UPDATE resorption.sites SET population_total = 13 WHERE id = %s", (site,))
        assert _versions(conn, site) == [
            ("insert", conn.execute("SELECT session_user").fetchone()[0], [], 13, True, False)
        ]
        conn.execute("DELETE FROM resorption.sites WHERE id = %s", (site,))
        assert _versions(conn, site) == []
        conn.rollback()


def test_a_writer_that_waited_for_the_row_begins_its_version_after(database_url: str) -> None:
    """B starts first, A writes and commits, then B (which waited for the row) writes: B's
    now() is earlier than A's version, yet the versions follow each other without overlap
    (the trigger once took A's version for B's own: an exclusion violation, a 500)."""
    with psycopg.connect(database_url, autocommit=True) as setup:
        site = _insert_site(setup, "T-concurrent", "33063", population_total=10)
    try:
        with psycopg.connect(database_url) as b, psycopg.connect(database_url) as a:
            b.execute("SELECT now()")  # B's transaction (and its now()) begins here
            a.execute("UPDATE resorption.sites SET population_total = 11 WHERE id = %s", (site,))
            a.commit()
            b.execute("UPDATE resorption.sites SET population_total = 12 WHERE id = %s", (site,))
            b.commit()
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT operation::text, population_total, lower(valid) < upper(valid) OR upper_inf(valid) "
                "FROM resorption.sites_history WHERE id = %s ORDER BY lower(valid)",
                (site,),
            ).fetchall()
        assert rows == [("insert", 10, True), ("update", 11, True), ("update", 12, True)]
    finally:
        with psycopg.connect(database_url, autocommit=True) as cleanup:
            cleanup.execute("DELETE FROM resorption.sites WHERE id = %s", (site,))


def test_actions_are_versioned(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        action = conn.execute(
            "INSERT INTO resorption.actions (name, started_at, topics, departement_code) "
            "VALUES ('Action historique', '2024-01-01', '{health}', '33') RETURNING id"
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT operation::text, name, upper_inf(valid) FROM resorption.actions_history WHERE id = %s",
            (action,),
        ).fetchall()
        assert rows == [("insert", "Action historique", True)]
        conn.rollback()


def test_history_is_read_only_for_the_application(database_url: str) -> None:
    """Only the triggers write the history: the reader roles may not."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE resorption_read_finances_justice_owner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM resorption.sites_history")
        conn.rollback()


# -- time travel through the API ---------------------------------------------------


def test_a_past_instant_shows_the_sites_as_they_stood(http: requests.Session, past: dict[str, int]) -> None:
    then = _travel(http, "2022-01-01")
    assert set(then) == {"A", "B", "C", "E"}  # D was not recorded yet
    assert then["A"]["properties"]["population_total"] == 20
    assert then["A"]["id"] == past["A"]
    assert then["B"]["properties"]["status"] == "open"  # closed later
    assert then["B"]["properties"]["closed_at"] is None
    assert then["C"]["id"] == past["C"]  # deleted since
    later = _travel(http, "2022-07-01T12:00:00Z")
    assert later["A"]["properties"]["population_total"] == 50
    # Closed on 2023-03-01 (recorded that evening): present on that day, as closed; gone after.
    assert _travel(http, "2023-03-01")["B"]["properties"]["status"] == "closed_by_justice"
    assert "B" not in _travel(http, "2023-03-02")
    assert set(_travel(http, "2024-01-01")) == {"A", "E"}
    assert set(_travel(http, "2025-01-01")) == {"A", "D", "E"}
    assert set(_travel(http, None)) == {"A", "B", "D", "E"}  # today, every site, closed ones too


def test_time_travel_keeps_filters_sorting_and_counts(http: requests.Session, past: dict[str, int]) -> None:
    small = _travel(http, "2022-01-01", filter=f"external_ref LIKE '{REF}%' AND population_total < 40")
    assert set(small) == {"A", "E"}
    assert set(_travel(http, None, filter=f"external_ref LIKE '{REF}%' AND population_total < 40")) == {"E"}
    page = http.get(
        "/collections/sites/items",
        params={
            "filter": f"external_ref LIKE '{REF}%'",
            "datetime": "2022-01-01",
            "sortby": "-population_total",
            "properties": "population_total,external_ref",
        },
    ).json()
    assert [f["properties"]["population_total"] for f in page["features"]] == [50, 50, 30, 20]
    hits = http.get(
        "/collections/sites/items",
        params={"filter": f"external_ref LIKE '{REF}%'", "datetime": "2022-01-01", "resulttype": "hits"},
    ).json()
    assert hits["numberMatched"] == 4
    # bbox around Bordeaux: the Gironde sites only.
    near = _travel(http, "2022-01-01", bbox="-0.75,44.75,-0.45,44.95")
    assert set(near) == {"A", "B", "C"}


def test_an_interval_reads_the_sites_present_during_it(http: requests.Session, past: dict[str, int]) -> None:
    """Intervals keep their meaning on today's rows: B closed in 2023 was present in 2022."""
    during = _travel(http, "2022-01-01/2022-12-31")
    assert {"A", "B", "E"} <= set(during)
    assert "C" not in during  # deleted: not in today's rows
    assert during["A"]["properties"]["population_total"] == 50


def test_time_travel_keeps_the_access_control(
    base_url: str, users: dict[str, TestUser], past: dict[str, int]
) -> None:
    operator = _as(base_url, users["operator-departement-33"])
    then = _travel(operator, "2022-01-01")
    assert set(then) == {"A", "B", "C"}  # not E, in Seine-Saint-Denis
    properties = then["A"]["properties"]
    assert properties["population_total"] == 20
    assert "owner_name" not in properties and "justice_procedure" not in properties
    response = operator.get(
        "/collections/sites/items", params={"datetime": "2022-01-01", "filter": "justice_procedure = true"}
    )
    assert response.status_code == 400
    with_justice = _travel(_as(base_url, users["operator-opts-departement-33"]), "2022-01-01")
    assert with_justice["A"]["properties"]["justice_procedure"] is False
    assert "owner_name" not in with_justice["A"]["properties"]


def test_the_database_refuses_hidden_history_columns(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE resorption_read")
        conn.execute("SELECT set_config('resorption.sites_scope', '*', true)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT owner_name FROM resorption.sites_history")
        conn.rollback()
        conn.execute("SET ROLE resorption_read")
        conn.execute("SELECT set_config('resorption.sites_scope', '33', true)")
        outside = conn.execute(
            "SELECT count(*) FROM resorption.sites_history WHERE departement_code <> '33'"
        ).fetchone()[0]
        assert outside == 0
        conn.rollback()


# -- the changelog -----------------------------------------------------------------


def _changes(session: requests.Session, site_id: int) -> list[dict]:
    response = session.get(
        "/collections/site_changes/items", params={"site_id": str(site_id), "sortby": "valid_from"}
    )
    assert response.status_code == 200, response.text
    return [f["properties"] for f in response.json()["features"]]


def test_site_changes_lists_versions_with_old_and_new_values(
    http: requests.Session, past: dict[str, int]
) -> None:
    versions = _changes(http, past["A"])
    assert [v["operation"] for v in versions] == ["insert", "update"]
    assert versions[0]["valid_to"].startswith("2022-06-01")
    assert versions[1]["valid_to"] is None
    assert versions[1]["changed_by"] == "histoire"
    changes = {c["field"]: (c["old"], c["new"]) for c in versions[1]["changes"]}
    assert changes["population_total"] == (20, 50)
    assert changes["justice_procedure"] == (False, True)
    assert changes["owner_name"] == ("Mairie", "SCI Histoire")
    deleted = _changes(http, past["C"])
    assert [v["operation"] for v in deleted] == ["insert", "delete"]


def test_site_changes_hide_what_the_reader_may_not_read(
    base_url: str, users: dict[str, TestUser], past: dict[str, int]
) -> None:
    operator = _as(base_url, users["operator-departement-33"])
    changes = {c["field"] for c in _changes(operator, past["A"])[1]["changes"]}
    assert changes == {"population_total"}  # neither the owner nor the justice procedure
    justice = _as(base_url, users["operator-opts-departement-33"])
    assert {c["field"] for c in _changes(justice, past["A"])[1]["changes"]} == {
        "population_total",
        "justice_procedure",
    }
    assert _changes(operator, past["E"]) == []  # outside Gironde
    assert (
        _as(base_url, users["national-admin-nation"])
        .get(f"/collections/site_changes/items?site_id={past['E']}")
        .json()["features"]
    )


def test_site_changes_are_not_public(anonymous: requests.Session) -> None:
    assert anonymous.get("/collections/site_changes/items").status_code in (401, 404)


def test_a_site_links_to_its_changes(http: requests.Session, past: dict[str, int]) -> None:
    item = http.get(f"/collections/sites/items/{past['A']}").json()
    history = [link for link in item["links"] if link["rel"] == "version-history"]
    assert history and f"site_id={past['A']}" in history[0]["href"]


# -- the demonstration's history ---------------------------------------------------


def test_demo_history_is_consistent(db: psycopg.Connection) -> None:
    demo = "external_ref LIKE 'DEMO-%'"
    # Exactly one open version per live site, equal to the live row.
    differing = db.execute(
        "SELECT count(*) FROM resorption.sites s LEFT JOIN resorption.sites_history h "
        "ON h.id = s.id AND upper_inf(h.valid) "
        f"WHERE s.{demo} AND (h.id IS NULL OR to_jsonb(s) IS DISTINCT FROM "
        "(to_jsonb(h) - 'version_id' - 'valid' - 'operation' - 'changed_by' - 'changed_fields' - 'activity_id'))"
    ).fetchone()[0]
    assert differing == 0
    # Versions chain without gaps and begin with their creation, since the platform opened.
    broken = db.execute(
        "SELECT count(*) FROM (SELECT valid, operation, lead(lower(valid)) OVER w AS next, "
        "row_number() OVER w AS n FROM resorption.sites_history "
        f"WHERE {demo} WINDOW w AS (PARTITION BY id ORDER BY lower(valid))) v "
        "WHERE (next IS NOT NULL AND upper(valid) <> next) OR ((n = 1) <> (operation = 'insert'))"
    ).fetchone()[0]
    assert broken == 0
    first, versions, sites, closed_later = db.execute(
        "SELECT min(lower(valid)), count(*), count(DISTINCT id), "
        "count(DISTINCT id) FILTER (WHERE status = 'open' AND id IN "
        "  (SELECT id FROM resorption.sites WHERE status <> 'open')) "
        f"FROM resorption.sites_history WHERE {demo}"
    ).fetchone()
    assert first.year == 2019
    assert versions > 2 * sites  # sites change: counts, censuses, closures, confirmations
    assert closed_later > 100  # closed sites were open before
    operations = dict(
        db.execute(
            f"SELECT operation::text, count(*) FROM resorption.sites_history WHERE {demo} GROUP BY 1"
        ).fetchall()
    )
    assert operations.keys() == {"insert", "update", "confirm"}


def test_people_in_slums_on_a_past_day(http: requests.Session, db: psycopg.Connection) -> None:
    """How many people lived in slums in Gironde on 1 January 2022? The API and SQL agree."""
    expected = db.execute(
        "SELECT count(*), coalesce(sum(population_total), 0) FROM resorption.sites_history "
        "WHERE departement_code = '33' AND valid @> '2022-01-01T23:59:59.999999Z'::timestamptz "
        "AND operation <> 'delete' AND declared_at <= '2022-01-01' "
        "AND (closed_at IS NULL OR closed_at >= '2022-01-01') AND external_ref LIKE 'DEMO-%'"
    ).fetchone()
    page = http.get(
        "/collections/sites/items",
        params={
            "datetime": "2022-01-01",
            "departement_code": "33",
            "limit": "1000",
            "filter": "external_ref LIKE 'DEMO-%'",
            "properties": "population_total",
            "skipGeometry": "true",
        },
    ).json()
    people = sum(f["properties"]["population_total"] or 0 for f in page["features"])
    assert (len(page["features"]), people) == expected
    assert expected[0] > 0


@pytest.mark.parametrize("changelog", ["site_changes", "action_changes"])
def test_a_first_page_of_a_changelog_reads_only_its_versions(
    changelog: str, database_url: str, users: dict[str, TestUser]
) -> None:
    """Each change's previous version is one read of the time-ordered index, even in the plan a
    national first page gets (sorting ruled out, reader._planner): it used to walk every version
    of the history backwards for each change (at 100,000 sites, a first page timed out)."""
    from resorption.app import create_app
    from resorption.authentication import principal_of_user
    from resorption.caller import Caller
    from resorption.reader import PAGE_PLANNER
    from resorption.settings import Settings

    settings = Settings.from_env(database_url)
    with create_app(settings).app_context():
        caller = Caller.of(principal_of_user(users["national-admin-nation"].username, settings), settings)
        with caller.reading({**PAGE_PLANNER, "enable_sort": "off"}) as conn:
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    f"EXPLAIN (ANALYZE, COSTS OFF) SELECT t.id, t.changes FROM resorption.{changelog} t "
                    "ORDER BY t.id LIMIT 10"
                )
            )
    removed = sum(int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan))
    assert removed < 100, plan  # a few versions of the same item at most, not the whole history


@pytest.mark.parametrize("user", ["national-admin-nation", "correspondent-departement-33"])
def test_the_first_ids_of_the_actions_changelog_are_merged_from_the_primary_keys(
    user: str, database_url: str, users: dict[str, TestUser]
) -> None:
    """The three histories of action_changes are merged in the order of their version ids
    (each branch reads one table, with no condition of its own): a first page reads its
    versions, where a join in a branch made it read and sort every version of every action."""
    from resorption.app import create_app
    from resorption.authentication import principal_of_user
    from resorption.caller import Caller
    from resorption.reader import PAGE_PLANNER
    from resorption.settings import Settings

    settings = Settings.from_env(database_url)
    with create_app(settings).app_context():
        caller = Caller.of(principal_of_user(users[user].username, settings), settings)
        with caller.reading(PAGE_PLANNER) as conn:
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN (COSTS OFF) SELECT t.id FROM resorption.action_changes t ORDER BY t.id LIMIT 10"
                )
            )
    assert "Merge Append" in plan, plan
    assert not re.search(r"^\s*(->\s+)?Sort\s*$", plan, re.MULTILINE), plan  # a Sort node
    # the results' versions (the last two branches) each look their action up by its id, never
    # a hash of every action of the scope (147,422 at 1,000,000 sites: 260 ms before a national
    # first page's first row)
    results = plan[plan.index("on action_indicators_history") :]
    assert "hashed SubPlan" not in results, plan
    for history in ("actions_history", "action_indicators_history", "action_finances_history"):
        assert re.search(rf"Index (Only )?Scan using {history}_pkey on {history}\b", plan), plan


@pytest.fixture
def moved_actions(database_url: str) -> Iterator[dict[str, int]]:
    """Two actions of Seine-Saint-Denis: one moved there from Gironde (its first version lies in
    Gironde), one that also covers Gironde."""
    with psycopg.connect(database_url, autocommit=True) as db:
        ids = {}
        for name in ("moved", "covering"):
            ids[name] = db.execute(
                "INSERT INTO resorption.actions (name, started_at, topics, departement_code) "
                "VALUES (%s, '2024-01-01', '{health}', %s) RETURNING id",
                (f"Action {name}", "33" if name == "moved" else "93"),
            ).fetchone()[0]
        db.execute("UPDATE resorption.actions SET departement_code = '93' WHERE id = %s", (ids["moved"],))
        db.execute(
            "DELETE FROM resorption.action_departements WHERE action_id = %s AND departement_code = '33'",
            (ids["moved"],),
        )
        db.execute("INSERT INTO resorption.action_departements VALUES (%s, '33')", (ids["covering"],))
        try:
            yield ids
        finally:
            db.execute("DELETE FROM resorption.actions WHERE id = ANY(%s)", (list(ids.values()),))


@pytest.mark.parametrize("changelog", ["site_changes", "action_changes", "activity"])
def test_a_departements_journal_is_what_its_policy_shows(
    changelog: str,
    base_url: str,
    database_url: str,
    users: dict[str, TestUser],
    moved_actions: dict[str, int],
) -> None:
    """A département's reader gets, page after page and in its count, exactly the rows the
    row-level security shows it: the plain condition by département that spares reading the
    other départements' rows (query/features.py, SCOPE_COLUMNS and SCOPE_VIEWS) neither adds nor
    drops one. An action's versions of Gironde stay in Gironde's changelog after the action
    moved away; an action of another département that covers Gironde is in it too."""
    from resorption.app import create_app
    from resorption.authentication import principal_of_user
    from resorption.caller import Caller
    from resorption.reader import PAGE_PLANNER
    from resorption.settings import Settings
    from tests.api import all_features, number_matched

    user = users["operator-departement-33"]
    settings = Settings.from_env(database_url)
    with create_app(settings).app_context():
        caller = Caller.of(principal_of_user(user.username, settings), settings)
        with caller.reading(PAGE_PLANNER) as conn:
            shown = {r[0] for r in conn.execute(f"SELECT t.id FROM resorption.{changelog} t")}
            departements = {
                r[0] for r in conn.execute(f"SELECT DISTINCT departement_code FROM resorption.{changelog}")
            }
    assert shown and departements >= {"33"}
    session = _as(base_url, user)
    served = [
        f["id"] for f in all_features(session, f"/collections/{changelog}/items", {"skipGeometry": "true"})
    ]
    assert len(served) == len(set(served))
    assert set(served) == shown
    assert number_matched(session, changelog) == len(shown)
    if changelog == "action_changes":
        with psycopg.connect(database_url) as db:
            versions = dict(
                db.execute(
                    "SELECT departement_code, version_id FROM resorption.actions_history WHERE id = %s",
                    (moved_actions["moved"],),
                ).fetchall()
            )
            covering = {
                r[0]
                for r in db.execute(
                    "SELECT version_id FROM resorption.actions_history WHERE id = %s",
                    (moved_actions["covering"],),
                )
            }
        assert versions["33"] in shown and versions["93"] not in shown
        assert covering and covering <= shown
