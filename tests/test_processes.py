"""The resorption workflow through OGC API Processes: close-site, record-census,
advance-resorption and territory-statistics, with rights, French refusals and private jobs.

Every test writes its own sites in Gironde (and one in Seine-Saint-Denis for the scope
checks) and deletes them when it ends, as the owner, so that the demo rows other modules
count stay as they were.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from tests.api import number_matched
from tests.fix_users import TestUser

BORDEAUX = (-0.5792, 44.8378)  # commune 33063
SAINT_DENIS = (2.3574, 48.9362)  # Seine-Saint-Denis (93)
TODAY = dt.date.today().isoformat()
# The statistics give the state at the end of a day in Paris (ahead of UTC).
PARIS_TODAY = dt.datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()


class Client:
    """Requests as test users; remembers the sites it created so that they can be removed."""

    def __init__(self, base_url: str, created: list[int]) -> None:
        self.base_url = base_url
        self.created = created

    def request(self, user: TestUser | None, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**(user.headers if user else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)

    def site(self, user: TestUser, point: tuple[float, float] = BORDEAUX, **properties: Any) -> int:
        """Create a site (declared in 2024) and return its id."""
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(point)},
            "properties": {"name": "Site des tests de processus", "declared_at": "2024-03-01", **properties},
        }
        r = self.request(user, "POST", "/collections/sites/items", json=feature)
        assert r.status_code == 201, r.text
        identifier = int(r.headers["Location"].rsplit("/", 1)[1])
        self.created.append(identifier)
        return identifier

    def execute(
        self, user: TestUser | None, process: str, inputs: dict[str, Any], **kwargs: Any
    ) -> requests.Response:
        return self.request(
            user, "POST", f"/processes/{process}/execution", json={"inputs": inputs}, **kwargs
        )

    def get_site(self, user: TestUser, identifier: int) -> dict[str, Any]:
        r = self.request(user, "GET", f"/collections/sites/items/{identifier}", params={"f": "json"})
        assert r.status_code == 200, r.text
        return r.json()["properties"]


@pytest.fixture
def created(database_url: str) -> Iterator[list[int]]:
    """The sites a test created; deleted as the owner when it ends."""
    sites: list[int] = []
    yield sites
    with psycopg.connect(database_url) as conn:
        for identifier in sites:
            conn.execute("DELETE FROM resorption.sites WHERE id = %s", (identifier,))


@pytest.fixture
def c(base_url: str, created: list[int]) -> Client:
    return Client(base_url, created)


@pytest.fixture
def admin(users: dict[str, TestUser]) -> TestUser:
    return users["national-admin-nation"]


@pytest.fixture
def correspondent(users: dict[str, TestUser]) -> TestUser:
    """Writes and closes sites in Gironde; reads the nation."""
    return users["correspondent-departement-33"]


def _closing(site: int, **overrides: Any) -> dict[str, Any]:
    return {
        "site": site,
        "status": "resorbed",
        "closed_at": TODAY,
        "closed_with_solutions": "yes",
        "solutions": [
            {"solution": "social_housing", "people": 12, "households": 3},
            {"solution": "emergency_shelter", "people": 8, "households": 2},
        ],
        **overrides,
    }


def _french_error(r: requests.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["description"] and "Traceback" not in r.text and "psycopg" not in r.text, body
    return body


# -- the processes are described ------------------------------------------------


def test_processes_are_listed_in_french(anonymous: requests.Session) -> None:
    r = anonymous.get("/processes", params={"f": "json"})
    assert r.status_code == 200, r.text
    ids = {p["id"] for p in r.json()["processes"]}
    assert {"close-site", "record-census", "advance-resorption", "territory-statistics"} <= ids
    r = anonymous.get("/processes/close-site", params={"f": "json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Fermer un site"
    assert body["inputs"]["closed_with_solutions"]["schema"]["enum"] == ["yes", "no", "unknown"]


# -- close-site -----------------------------------------------------------------


def test_close_site_writes_the_closing_and_its_solutions(
    c: Client, admin: TestUser, correspondent: TestUser, database_url: str
) -> None:
    site = c.site(admin, population_total=25, population_households=6)
    r = c.execute(correspondent, "close-site", _closing(site))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resorbed" and r.json()["version"]

    props = c.get_site(admin, site)
    assert props["status"] == "resorbed"
    assert props["closed_at"] == TODAY
    assert props["closed_with_solutions"] == "yes"
    solutions = {s["solution"]: s for s in props["closing_solutions"]}
    assert solutions["social_housing"]["people"] == 12 and solutions["emergency_shelter"]["households"] == 2

    # The closing is a version of the site, by its author; and it is audited.
    changes = c.request(
        admin, "GET", "/collections/site_changes/items", params={"site_id": site, "f": "json", "limit": 50}
    ).json()["features"]
    closing = [f for f in changes if any(ch["field"] == "status" for ch in f["properties"]["changes"])]
    assert closing and closing[0]["properties"]["changed_by"] == correspondent.username
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT count(*) FROM resorption.audit_log WHERE username = %s AND action = 'close' AND item_id = %s",
            (correspondent.username, str(site)),
        ).fetchone()[0]
    assert audited == 1
    # The closing is one event of the outbox (MQTT, Server-Sent Events), written with it.
    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT fields FROM resorption.outbox WHERE collection = 'sites' AND item_id = %s "
            "AND operation = 'update' ORDER BY id",
            (site,),
        ).fetchall()
    assert len(events) == 1 and {"status", "closed_at"} <= set(events[0][0]), events

    # An already closed site is refused, in French.
    again = _french_error(c.execute(correspondent, "close-site", _closing(site)), 409)
    assert "déjà fermé" in again["description"]


def test_each_process_write_is_one_version_and_one_audit_row(
    c: Client, admin: TestUser, correspondent: TestUser, database_url: str
) -> None:
    """The processes write through the one write path: each execution is one new version of
    the site and one audit row, naming the process."""
    site = c.site(admin, population_total=30)
    versions = "SELECT count(*) FROM resorption.sites_history WHERE id = %s"
    audited = (
        "SELECT action, detail->>'process' FROM resorption.audit_log "
        "WHERE username = %s AND collection = 'sites' AND item_id = %s ORDER BY id"
    )
    steps = [
        ("record-census", {"site": site, "census_at": TODAY, "population_total": 31}, "update"),
        ("advance-resorption", {"site": site, "phases": {"sociological_diagnosis": TODAY}}, "update"),
        ("close-site", _closing(site), "close"),
    ]
    expected: list[tuple[str, str]] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute(versions, (site,)).fetchone()[0] == 1
        for count, (process, inputs, action) in enumerate(steps, start=2):
            r = c.execute(correspondent, process, inputs)
            assert r.status_code == 200, r.text
            assert conn.execute(versions, (site,)).fetchone()[0] == count, process
            expected.append((action, process))
            assert conn.execute(audited, (correspondent.username, str(site))).fetchall() == expected
        # A refused execution writes nothing: no version, no audit row.
        _french_error(c.execute(correspondent, "close-site", _closing(site)), 409)
        assert conn.execute(versions, (site,)).fetchone()[0] == len(steps) + 1
        assert conn.execute(audited, (correspondent.username, str(site))).fetchall() == expected


def test_close_site_checks_its_inputs(c: Client, admin: TestUser, correspondent: TestUser) -> None:
    site = c.site(admin, population_total=10)
    body = _french_error(
        c.execute(
            correspondent,
            "close-site",
            _closing(
                site,
                status="other",
                closed_with_solutions="yes",
                solutions=[
                    {"solution": "social_housing", "people": 2, "households": 5},
                    {"solution": "castle", "people": 1},
                ],
            ),
        ),
        400,
    )
    problems = {e["property"] for e in body["errors"]}
    assert {"closing_context", "solutions[0].households", "solutions[1].solution"} <= problems
    body = _french_error(
        c.execute(correspondent, "close-site", {"site": site, "status": "open", "closed_at": "2999-01-01"}),
        400,
    )
    problems = {e["property"] for e in body["errors"]}
    assert {"status", "closed_at", "closed_with_solutions"} <= problems
    body = _french_error(c.execute(correspondent, "close-site", _closing(site, closed_at="2020-01-01")), 400)
    assert "signalement" in body["description"]
    body = _french_error(
        c.execute(correspondent, "close-site", _closing(site, closed_with_solutions="no")), 400
    )
    assert any(e["property"] == "solutions" for e in body["errors"])
    # Nothing was written.
    assert c.get_site(admin, site)["status"] == "open"


def test_close_site_needs_the_right_to_close_there(
    c: Client, admin: TestUser, correspondent: TestUser, users: dict[str, TestUser]
) -> None:
    here = c.site(admin)
    elsewhere = c.site(admin, SAINT_DENIS)
    _french_error(c.execute(None, "close-site", _closing(here)), 401)
    # An intervener may not close at all; a correspondent of Gironde not in Seine-Saint-Denis.
    body = _french_error(c.execute(users["intervener-departement-33"], "close-site", _closing(here)), 403)
    assert "fermer" in body["description"]
    body = _french_error(c.execute(correspondent, "close-site", _closing(elsewhere)), 403)
    assert "93" in body["description"]
    # A site the caller cannot read does not exist for them.
    _french_error(c.execute(users["operator-opts-departement-33"], "close-site", _closing(elsewhere)), 404)
    _french_error(c.execute(correspondent, "close-site", _closing(999_999_999)), 404)
    # An institutional partner closes only with the option.
    _french_error(c.execute(users["institutional-partner-departement-33"], "close-site", _closing(here)), 403)
    r = c.execute(users["institutional-partner-opts-departement-33"], "close-site", _closing(here))
    assert r.status_code == 200, r.text
    assert c.get_site(admin, elsewhere)["status"] == "open"


# -- record-census ----------------------------------------------------------------


def test_record_census_updates_the_population_as_a_version(
    c: Client, admin: TestUser, correspondent: TestUser
) -> None:
    site = c.site(admin, population_total=30, population_minors=12, minors_0_3=4)
    census = {
        "site": site,
        "census_at": TODAY,
        "census_by": "DDETS de la Gironde",
        "population_total": 41,
        "population_households": 10,
        "population_women": 20,
        "population_minors": 18,
        "population_girls": 9,
        "minors_6_12": 7,
        "minors_in_school": 6,
    }
    r = c.execute(correspondent, "record-census", census)
    assert r.status_code == 200, r.text
    props = c.get_site(admin, site)
    assert props["population_total"] == 41 and props["population_minors"] == 18
    assert props["minors_0_3"] is None  # the new breakdown replaces the old one
    assert props["census_status"] == "done" and props["census_at"] == TODAY
    assert props["population_updated_at"] == TODAY and props["census_by"] == "DDETS de la Gironde"
    changes = c.request(
        admin, "GET", "/collections/site_changes/items", params={"site_id": site, "f": "json"}
    ).json()["features"]
    fields = {ch["field"] for f in changes for ch in f["properties"]["changes"]}
    assert {"population_total", "census_status"} <= fields


def test_record_census_is_validated_like_an_edit(
    c: Client, admin: TestUser, correspondent: TestUser, users: dict[str, TestUser]
) -> None:
    site = c.site(admin, population_total=30)
    body = _french_error(
        c.execute(correspondent, "record-census", {"site": site, "population_total": "beaucoup"}), 400
    )
    assert "census_at" in {e["property"] for e in body["errors"]}
    body = _french_error(
        c.execute(
            correspondent, "record-census", {"site": site, "census_at": TODAY, "population_total": "beaucoup"}
        ),
        400,
    )
    assert "population_total" in {e["property"] for e in body["errors"]}
    body = _french_error(
        c.execute(
            correspondent,
            "record-census",
            {"site": site, "census_at": TODAY, "population_total": 5, "population_minors": 9},
        ),
        400,
    )
    assert any(e["property"] == "population_minors" for e in body["errors"])
    assert "mineurs" in body["description"]
    _french_error(c.execute(None, "record-census", {"site": site}), 401)
    _french_error(
        c.execute(
            users["intervener-departement-33"],
            "record-census",
            {"site": site, "census_at": TODAY, "population_total": 5},
        ),
        403,
    )
    assert c.get_site(admin, site)["population_total"] == 30


# -- advance-resorption ------------------------------------------------------------


def test_advance_resorption_checks_the_order_of_phases(
    c: Client, admin: TestUser, correspondent: TestUser
) -> None:
    site = c.site(admin)
    body = _french_error(
        c.execute(
            correspondent,
            "advance-resorption",
            {
                "site": site,
                "phases": {"sociological_diagnosis": "2024-04-01", "contractualisation": "2024-05-01"},
            },
        ),
        400,
    )
    assert "phases préalables" in body["description"]
    assert c.get_site(admin, site)["phase_sociological_diagnosis_at"] is None

    preliminary = {
        "sociological_diagnosis": "2024-04-01",
        "technical_diagnosis": "2024-04-15",
        "social_assessment": "2024-05-01",
        "political_validation": "2024-06-01",
    }
    r = c.execute(correspondent, "advance-resorption", {"site": site, "phases": preliminary})
    assert r.status_code == 200, r.text
    assert r.json()["phases"]["political_validation"] == "2024-06-01"
    # Not before the end of the preliminary phases; a done phase keeps its date; unknown phases refused.
    body = _french_error(
        c.execute(
            correspondent,
            "advance-resorption",
            {"site": site, "phases": {"contract_preparation": "2024-05-15"}},
        ),
        400,
    )
    assert "2024-06-01" in body["description"]
    body = _french_error(
        c.execute(
            correspondent,
            "advance-resorption",
            {"site": site, "phases": {"technical_diagnosis": "2024-04-20"}},
        ),
        400,
    )
    assert "déjà achevée" in body["description"]
    body = _french_error(
        c.execute(
            correspondent, "advance-resorption", {"site": site, "phases": {"demolition": "2024-07-01"}}
        ),
        400,
    )
    assert "phases.demolition" in {e["property"] for e in body["errors"]}
    r = c.execute(
        correspondent,
        "advance-resorption",
        {"site": site, "phases": {"contract_preparation": "2024-07-01", "family_information": "2024-07-15"}},
    )
    assert r.status_code == 200, r.text
    props = c.get_site(admin, site)
    assert props["phase_contract_preparation_at"] == "2024-07-01"
    assert props["phase_sociological_diagnosis_at"] == "2024-04-01"


def test_advance_resorption_needs_write_rights(
    c: Client, admin: TestUser, correspondent: TestUser, users: dict[str, TestUser]
) -> None:
    elsewhere = c.site(admin, SAINT_DENIS)
    phases = {"site": elsewhere, "phases": {"sociological_diagnosis": "2024-04-01"}}
    _french_error(c.execute(None, "advance-resorption", phases), 401)
    _french_error(c.execute(correspondent, "advance-resorption", phases), 403)
    _french_error(c.execute(users["operator-opts-departement-33"], "advance-resorption", phases), 404)


# -- territory-statistics --------------------------------------------------------


def _statistics(**overrides: Any) -> dict[str, Any]:
    return {
        "level": "departement",
        "code": "33",
        "start": "2019-01-01",
        "end": PARIS_TODAY,
        "step": "year",
        **overrides,
    }


def test_territory_statistics_come_from_history(
    c: Client, admin: TestUser, correspondent: TestUser, http: requests.Session
) -> None:
    before = c.execute(correspondent, "territory-statistics", _statistics())
    assert before.status_code == 200, before.text
    series = before.json()["series"]
    assert series[0]["date"] == "2019-01-01" and series[-1]["date"] == PARIS_TODAY
    assert any(p["people"] > 0 for p in series)
    last = series[-1]
    open_sites = number_matched(http, "sites", {"filter": "departement_code = '33' AND status = 'open'"})
    assert last["sites"] == last["by_status"]["open"] == open_sites
    assert set(last["living_conditions"]) >= {"water", "sanitation", "electricity", "waste"}

    # A site appears today, with 33 people of European origin, then closes with a solution.
    site = c.site(admin, population_total=33, population_minors=5, social_origins=["european"])
    r = c.execute(
        correspondent,
        "close-site",
        _closing(
            site,
            closed_at=YESTERDAY,
            solutions=[{"solution": "voluntary_return", "people": 4, "households": 1}],
        ),
    )
    assert r.status_code == 200, r.text
    after = c.execute(correspondent, "territory-statistics", _statistics()).json()["series"][-1]
    assert after["sites"] == last["sites"]  # open then closed: not open at the end of today
    assert after["by_status"]["resorbed"] == last["by_status"]["resorbed"] + 1
    assert after["closures"]["sites"] == last["closures"]["sites"] + 1
    assert after["closures"]["people"] == last["closures"]["people"] + 33
    returned = {s["solution"]: s for s in after["closures"]["solutions"]}
    before_returned = {s["solution"]: s for s in last["closures"]["solutions"]}
    assert (
        returned["voluntary_return"]["people"]
        == before_returned.get("voluntary_return", {"people": 0})["people"] + 4
    )


def test_territory_statistics_are_limited_to_the_scope(c: Client, users: dict[str, TestUser]) -> None:
    operator = users["operator-departement-33"]  # reads Gironde only
    _french_error(c.execute(None, "territory-statistics", _statistics()), 401)
    body = _french_error(c.execute(operator, "territory-statistics", _statistics(code="93")), 403)
    assert "93" in body["description"]
    mine = c.execute(operator, "territory-statistics", _statistics()).json()
    r = c.execute(operator, "territory-statistics", _statistics(level="nation", code=None))
    assert r.status_code == 200, r.text
    nation = r.json()
    assert nation["scope"] == ["33"]
    # What the operator sees of the nation is Gironde and nothing else.
    assert [p["people"] for p in nation["series"]] == [p["people"] for p in mine["series"]]
    body = _french_error(
        c.execute(operator, "territory-statistics", _statistics(step="week", start="2030-01-01")), 400
    )
    assert {"step", "start"} <= {e["property"] for e in body["errors"]}


# -- jobs ---------------------------------------------------------------------------


def _wait(c: Client, user: TestUser, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status = c.request(user, "GET", location, params={"f": "json"})
        assert status.status_code == 200, status.text
        if status.json()["status"] in ("successful", "failed") or time.monotonic() > deadline:
            return status.json()
        time.sleep(0.2)


def test_statistics_run_as_a_private_job(c: Client, admin: TestUser, users: dict[str, TestUser]) -> None:
    owner = users["correspondent-departement-33"]
    other = users["local-admin-departement-33"]
    r = c.execute(owner, "territory-statistics", _statistics(), headers={"Prefer": "respond-async"})
    assert r.status_code == 201, r.text
    location = r.headers["Location"].removeprefix(c.base_url)
    job_id = location.rsplit("/", 1)[1]
    assert _wait(c, owner, location)["status"] == "successful"

    results = c.request(owner, "GET", f"/jobs/{job_id}/results", params={"f": "json"})
    assert results.status_code == 200, results.text
    assert results.json()["series"][-1]["date"] == PARIS_TODAY

    # Nobody else sees the job, its results, or deletes it; an administrator sees it.
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
        assert c.request(other, "GET", path, params={"f": "json"}).status_code == 404
        assert c.request(None, "GET", path, params={"f": "json"}).status_code == 401
    assert c.request(other, "DELETE", f"/jobs/{job_id}").status_code == 404
    listed = c.request(other, "GET", "/jobs", params={"f": "json"}).json()["jobs"]
    assert job_id not in {j["jobID"] for j in listed}
    assert job_id in {
        j["jobID"] for j in c.request(owner, "GET", "/jobs", params={"f": "json"}).json()["jobs"]
    }
    assert c.request(admin, "GET", f"/jobs/{job_id}", params={"f": "json"}).status_code == 200
    assert c.request(None, "GET", "/jobs", params={"f": "json"}).status_code == 401


def test_a_failed_job_keeps_only_a_french_message(c: Client, users: dict[str, TestUser]) -> None:
    owner = users["operator-departement-33"]
    r = c.execute(owner, "territory-statistics", _statistics(code="93"), headers={"Prefer": "respond-async"})
    assert r.status_code == 201, r.text
    status = _wait(c, owner, r.headers["Location"].removeprefix(c.base_url))
    assert status["status"] == "failed"
    assert "hors de votre territoire" in status["message"]
    assert "Error" not in status["message"] and "Traceback" not in status["message"]


def test_execution_bodies_that_are_not_objects_are_refused(c: Client, admin: TestUser) -> None:
    path = "/processes/territory-statistics/execution"
    for body in ([None, None], {"inputs": [1]}, {"inputs": {"level": "nation\x00"}}):
        _french_error(c.request(admin, "POST", path, json=body), 400)


def test_a_job_reports_its_progress_to_its_owner_only(database_url: str) -> None:
    """Progress is written through the caller's jobs transaction: row-level security lets the
    owner's job move, and nobody else's."""
    from types import SimpleNamespace

    from resorption.caller import Caller
    from resorption.identity import Principal
    from resorption.processes.jobs import job_progress
    from resorption.settings import Settings

    settings = Settings.from_env(database_url)
    with psycopg.connect(database_url) as owner:
        for job, who in (("progress-mine", "alice-progress"), ("progress-theirs", "bob-progress")):
            owner.execute(
                "INSERT INTO resorption_jobs.jobs (identifier, process_id, owner, status, progress) "
                "VALUES (%s, 'export-sites', %s, 'running', 0)",
                (job, who),
            )
    try:
        alice = Caller.of(Principal(username="alice-progress", role="operator"), settings)
        for job in ("progress-mine", "progress-theirs"):
            job_progress(SimpleNamespace(job_id=job), alice)(40, "400 sites lus")
        with psycopg.connect(database_url) as owner:
            rows = {
                job: (progress, message)
                for job, progress, message in owner.execute(
                    "SELECT identifier, progress, message FROM resorption_jobs.jobs "
                    "WHERE identifier LIKE 'progress-%'"
                )
            }
        assert rows == {"progress-mine": (40, "400 sites lus"), "progress-theirs": (0, None)}
    finally:
        with psycopg.connect(database_url) as owner:
            owner.execute("DELETE FROM resorption_jobs.jobs WHERE identifier LIKE 'progress-%'")
