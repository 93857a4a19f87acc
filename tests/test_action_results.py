"""The results of actions: indicator snapshots and finances recorded by two processes, their
history in `action_changes`, and the action dashboard of a territory.

Every test writes its own actions (in Gironde, one in Seine-Saint-Denis for the scope checks)
and deletes them as the owner when it ends, so that the demo rows other modules count stay
as they were. Everything goes through HTTP against the real server and PostGIS.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from resorption import clock
from tests.fix_users import TestUser

TODAY = dt.date.today().isoformat()
TOMORROW = (clock.today() + dt.timedelta(days=1)).isoformat()  # tomorrow in Paris, as the product says
GIRONDE_SQUARE = [[[-0.58, 44.83], [-0.57, 44.83], [-0.57, 44.84], [-0.58, 44.84], [-0.58, 44.83]]]
SAINT_DENIS_SQUARE = [[[2.35, 48.93], [2.36, 48.93], [2.36, 48.94], [2.35, 48.94], [2.35, 48.93]]]
CORRESPONDENT = "correspondent-departement-33"  # writes actions in 33, reads the finances
OPERATOR = "operator-departement-33"  # writes actions in 33, no finances
OBSERVER = "external-observer-departement-33"  # reads actions in 33, writes none
NEIGHBOUR = "operator-departement-93"  # reads nothing of 33
LOCAL_ADMIN = "local-admin-departement-33"  # reads every action, writes in 33 only


class Client:
    """Requests as test users; remembers the actions it created so that they can be removed."""

    def __init__(self, base_url: str, users: dict[str, TestUser], created: list[int]) -> None:
        self.base_url = base_url
        self.users = users
        self.created = created

    def request(self, who: str | None, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**(self.users[who].headers if who else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)

    def action(self, square: list = GIRONDE_SQUARE, started_at: str = "2023-01-01") -> int:
        """Create an action (as the national administrator) and return its id."""
        feature = {
            "type": "Feature",
            "geometry": {"type": "MultiPolygon", "coordinates": [square]},
            "properties": {
                "name": "Action des tests de résultats",
                "started_at": started_at,
                "topics": ["schooling", "housing"],
            },
        }
        r = self.request("national-admin-nation", "POST", "/collections/actions/items", json=feature)
        assert r.status_code == 201, r.text
        identifier = int(r.headers["Location"].rsplit("/", 1)[1])
        self.created.append(identifier)
        return identifier

    def execute(self, who: str | None, process: str, inputs: dict[str, Any]) -> requests.Response:
        return self.request(who, "POST", f"/processes/{process}/execution", json={"inputs": inputs})

    def changes(self, who: str, **params: Any) -> requests.Response:
        return self.request(who, "GET", "/collections/action_changes/items", params={"f": "json", **params})

    def get_action(self, who: str, identifier: int) -> requests.Response:
        return self.request(who, "GET", f"/collections/actions/items/{identifier}", params={"f": "json"})


@pytest.fixture
def created(database_url: str) -> Iterator[list[int]]:
    """The actions a test created; deleted (with their results and versions) as the owner."""
    actions: list[int] = []
    yield actions
    with psycopg.connect(database_url) as conn:
        for identifier in actions:
            conn.execute("DELETE FROM resorption.actions WHERE id = %s", (identifier,))
            for history in ("action_indicators_history", "action_finances_history"):
                conn.execute(f"DELETE FROM resorption.{history} WHERE action_id = %s", (identifier,))


@pytest.fixture
def c(base_url: str, users: dict[str, TestUser], created: list[int]) -> Client:
    return Client(base_url, users, created)


def _french_error(r: requests.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["description"] and "Traceback" not in r.text and "psycopg" not in r.text, body
    return body


def _problems(r: requests.Response) -> dict[str, str]:
    body = _french_error(r, 400)
    return {e["property"]: e["message"] for e in body["errors"]}


SNAPSHOT = {
    "people": 40,
    "households": 12,
    "women": 18,
    "minors": 15,
    "people_housing": 6,
    "households_housing": 2,
    "minors_identified": 14,
    "minors_school_start": 9,
    "minors_primary": 7,
    "minors_middle": 3,
}


# -- the processes are described ------------------------------------------------------


def test_the_processes_are_listed_in_french(anonymous: requests.Session) -> None:
    ids = {p["id"] for p in anonymous.get("/processes", params={"f": "json"}).json()["processes"]}
    assert {"record-action-indicators", "record-action-finances"} <= ids
    body = anonymous.get("/processes/record-action-indicators", params={"f": "json"}).json()
    assert body["title"] == "Enregistrer les indicateurs d'une action"
    assert {"action", "measured_at", "version", "people", "minors_high"} <= set(body["inputs"])
    body = anonymous.get("/processes/record-action-finances", params={"f": "json"}).json()
    assert body["title"] == "Enregistrer les financements d'une action"
    assert body["inputs"]["lines"]["schema"]["items"]["properties"]["funding_type"]["enum"][0] == "state"


# -- record-action-indicators ---------------------------------------------------------


def test_an_indicator_snapshot_is_recorded_versioned_and_audited(c: Client, database_url: str) -> None:
    action = c.action()
    before = c.get_action(OPERATOR, action).headers["ETag"]
    r = c.execute(
        OPERATOR, "record-action-indicators", {"action": action, "measured_at": "2024-06-30", **SNAPSHOT}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["new"] is True and out["indicators"]["people"] == 40 and out["indicators"]["women"] == 18
    # The action shows its latest results, and its version moved.
    item = c.get_action(OPERATOR, action)
    assert item.headers["ETag"] == out["version"] != before
    props = item.json()["properties"]
    assert props["indicators_at"] == "2024-06-30" and props["people_followed"] == 40
    assert props["people_housing"] == 6 and props["minors_school_start"] == 9

    # A correction of that date replaces the snapshot whole: one more version, old → new.
    r = c.execute(
        OPERATOR, "record-action-indicators", {"action": action, "measured_at": "2024-06-30", "people": 42}
    )
    assert r.status_code == 200 and r.json()["new"] is False, r.text
    versions = c.changes(OPERATOR, action_id=action, subject="indicators", sortby="valid_from").json()
    assert [f["properties"]["operation"] for f in versions["features"]] == ["insert", "update"]
    first, second = (f["properties"] for f in versions["features"])
    assert first["measured_at"] == "2024-06-30" and first["changed_by"] == OPERATOR
    assert {"field": "people", "old": None, "new": 40} in first["changes"]
    assert {"field": "people", "old": 40, "new": 42} in second["changes"]
    assert {"field": "women", "old": 18, "new": None} in second["changes"]
    assert first["valid_to"] == second["valid_from"] and second["valid_to"] is None
    # The action's own "touched" versions are not listed as changes of the action.
    assert [
        f["properties"]["subject"] for f in c.changes(OPERATOR, action_id=action).json()["features"]
    ].count("action") == 1

    with psycopg.connect(database_url) as conn:
        history = conn.execute(
            "SELECT operation::text, people FROM resorption.action_indicators_history "
            "WHERE action_id = %s ORDER BY version_id",
            (action,),
        ).fetchall()
        audited = conn.execute(
            "SELECT action, detail->>'process', detail->>'measured_at' FROM resorption.audit_log "
            "WHERE username = %s AND collection = 'actions' AND item_id = %s ORDER BY id",
            (OPERATOR, str(action)),
        ).fetchall()
    assert history == [("insert", 40), ("update", 42)]
    assert audited == [("update", "record-action-indicators", "2024-06-30")] * 2


def test_every_problem_of_a_snapshot_is_said_in_french_by_input(c: Client, database_url: str) -> None:
    action = c.action(started_at="2023-01-01")
    problems = _problems(
        c.execute(
            OPERATOR,
            "record-action-indicators",
            {
                "measured_at": "30/06/2024",
                "people": -1,
                "women": "beaucoup",
                "minors": 2.5,
                "colour": "bleu",
            },
        )
    )
    assert problems == {
        "colour": problems["colour"],
        "action": "valeur obligatoire.",
        "measured_at": "date attendue au format AAAA-MM-JJ, reçu « 30/06/2024 ».",
        "people": "doit être supérieur ou égal à 0.",
        "women": "nombre entier attendu.",
        "minors": "nombre entier attendu.",
    }
    assert problems["colour"].startswith("entrée inconnue")
    assert _problems(
        c.execute(OPERATOR, "record-action-indicators", {"action": action, "measured_at": TOMORROW})
    ) == {
        "measured_at": "la date est dans le futur.",
        "people": "donnez au moins un indicateur.",
    }
    # The rules of the model (the CHECK constraints of action_indicators), each by its input.
    broken = {
        "people": 10,
        "households": 11,
        "women": 11,
        "minors": 11,
        "people_health_care": 11,
        "people_work_contract": 11,
        "people_shelter": 5,
        "households_shelter": 6,
        "people_housing": 5,
        "households_housing": 6,
        "minors_identified": 3,
        "minors_mediation": 4,
        "minors_school_start": 4,
        "minors_nursery": 1,
        "minors_primary": 1,
        "minors_middle": 1,
        "minors_high": 1,
    }
    problems = _problems(
        c.execute(
            OPERATOR, "record-action-indicators", {"action": action, "measured_at": "2024-01-01", **broken}
        )
    )
    assert problems == {
        "households": "11 dépasse le nombre de personnes accompagnées (10).",
        "women": "11 dépasse le nombre de personnes accompagnées (10).",
        "minors": "11 dépasse le nombre de personnes accompagnées (10).",
        "people_health_care": "11 dépasse le nombre de personnes accompagnées (10).",
        "people_work_contract": "11 dépasse le nombre de personnes accompagnées (10).",
        "households_shelter": "6 dépasse le nombre de personnes hébergées (5).",
        "households_housing": "6 dépasse le nombre de personnes logées (5).",
        "minors_mediation": "4 dépasse le nombre de mineurs identifiés (3).",
        "minors_school_start": "4 dépasse le nombre de mineurs identifiés (3).",
        "minors_identified": (
            "les mineurs scolarisés (maternelle, élémentaire, collège, lycée : 4) dépassent les "
            "mineurs identifiés (3)."
        ),
    }
    # Checked against the action once it is locked: not before the action started.
    problems = _problems(
        c.execute(
            OPERATOR, "record-action-indicators", {"action": action, "measured_at": "2022-12-31", "people": 1}
        )
    )
    assert problems == {"measured_at": "la date du relevé précède le début de l'action (2023-01-01)."}
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM resorption.action_indicators_history WHERE action_id = %s", (action,)
        ).fetchone() == (0,)


def test_a_snapshot_needs_the_right_to_write_the_action_there(c: Client, database_url: str) -> None:
    here = c.action()
    elsewhere = c.action(SAINT_DENIS_SQUARE)
    inputs = {"measured_at": "2024-06-30", "people": 5}
    _french_error(c.execute(None, "record-action-indicators", {"action": here, **inputs}), 401)
    # A reader who may write no action; a writer of Gironde on an action of Seine-Saint-Denis.
    body = _french_error(c.execute(OBSERVER, "record-action-indicators", {"action": here, **inputs}), 403)
    assert "actions" in body["description"]
    body = _french_error(
        c.execute(LOCAL_ADMIN, "record-action-indicators", {"action": elsewhere, **inputs}), 403
    )
    assert "93" in body["description"]
    # Every département of the action counts, not only the main one.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO resorption.action_departements (action_id, departement_code) VALUES (%s, '93')",
            (here,),
        )
    body = _french_error(
        c.execute(CORRESPONDENT, "record-action-indicators", {"action": here, **inputs}), 403
    )
    assert "93" in body["description"]
    # An action the caller cannot read does not exist for them.
    _french_error(c.execute(NEIGHBOUR, "record-action-indicators", {"action": c.action(), **inputs}), 404)
    _french_error(c.execute(OPERATOR, "record-action-indicators", {"action": 999_999_999, **inputs}), 404)
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM resorption.action_indicators WHERE action_id = ANY(%s)", (c.created,)
        ).fetchone() == (0,)


def test_a_stale_version_writes_nothing(c: Client) -> None:
    action = c.action()
    seen = c.get_action(OPERATOR, action).headers["ETag"]
    r = c.execute(
        OPERATOR,
        "record-action-indicators",
        {"action": action, "measured_at": "2024-01-31", "people": 3, "version": seen},
    )
    assert r.status_code == 200, r.text
    body = _french_error(
        c.execute(
            OPERATOR,
            "record-action-indicators",
            {"action": action, "measured_at": "2024-02-29", "people": 4, "version": seen},
        ),
        412,
    )
    assert body["description"]
    assert c.get_action(OPERATOR, action).json()["properties"]["people_followed"] == 3


# -- record-action-finances -----------------------------------------------------------

LINES = [
    {"funding_type": "dedicated_resorption", "budget": 80000, "spent": 62500.5},
    {"funding_type": "local_authority", "budget": 15000, "details": "Conseil départemental"},
]


def test_finances_are_recorded_versioned_and_audited(c: Client, database_url: str) -> None:
    action = c.action()
    r = c.execute(CORRESPONDENT, "record-action-finances", {"action": action, "year": 2024, "lines": LINES})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0] == {
        "funding_type": "dedicated_resorption",
        "budget": 80000.0,
        "spent": 62500.5,
        "details": None,
    }
    props = c.get_action(CORRESPONDENT, action).json()["properties"]
    assert props["budget_total"] == 95000 and props["spent_total"] == 62500.5
    # The year's lines become the new ones: a funder left out is removed, a changed one updated.
    r = c.execute(
        CORRESPONDENT,
        "record-action-finances",
        {
            "action": action,
            "year": 2024,
            "lines": [{"funding_type": "dedicated_resorption", "budget": 90000}],
        },
    )
    assert r.status_code == 200, r.text
    assert c.get_action(CORRESPONDENT, action).json()["properties"]["budget_total"] == 90000
    versions = [
        f["properties"]
        for f in c.changes(CORRESPONDENT, action_id=action, subject="funding", sortby="id").json()["features"]
    ]
    assert [(v["funder"], v["operation"]) for v in versions] == [
        ("dedicated_resorption", "insert"),
        ("local_authority", "insert"),
        ("local_authority", "delete"),
        ("dedicated_resorption", "update"),
    ]
    assert all(v["finance_year"] == 2024 for v in versions)
    assert {"field": "budget", "old": 80000.0, "new": 90000.0} in versions[3]["changes"]
    assert {"field": "spent", "old": 62500.5, "new": None} in versions[3]["changes"]
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT action, groups, detail FROM resorption.audit_log "
            "WHERE username = %s AND collection = 'actions' AND item_id = %s AND action <> 'read' ORDER BY id",
            (CORRESPONDENT, str(action)),
        ).fetchall()
    assert audited == [("update", ["finances"], {"year": 2024, "process": "record-action-finances"})] * 2


def test_finances_need_the_finances_group(c: Client, database_url: str) -> None:
    action = c.action()
    inputs = {"action": action, "year": 2024, "lines": LINES}
    for who in (OPERATOR, "intervener-departement-33", "national-actor-departement-33"):
        body = _french_error(c.execute(who, "record-action-finances", inputs), 403)
        assert "financements" in body["description"], who
    # …even with invalid inputs: nothing about them is said.
    _french_error(c.execute(OPERATOR, "record-action-finances", {"action": "x"}), 403)
    # A national actor with the option writes them where it may write actions (the nation).
    r = c.execute("national-actor-opts-departement-33", "record-action-finances", inputs)
    assert r.status_code == 200, r.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM resorption.action_finances WHERE action_id = %s", (action,)
        ).fetchone() == (2,)


def test_every_problem_of_finances_is_said_in_french_by_input(c: Client) -> None:
    action = c.action()
    problems = _problems(c.execute(CORRESPONDENT, "record-action-finances", {"year": 2014}))
    assert problems == {
        "action": "valeur obligatoire.",
        "year": "doit être supérieur ou égal à 2015.",
        "lines": "valeur obligatoire (une liste, vide pour retirer les financements de l'année).",
    }
    problems = _problems(
        c.execute(CORRESPONDENT, "record-action-finances", {"action": action, "year": 2101, "lines": {}})
    )
    assert problems == {
        "year": "doit être inférieur ou égal à 2100.",
        "lines": "liste de lignes de financement attendue.",
    }
    lines = [
        {"funding_type": "state", "budget": -1},
        {"funding_type": "lottery", "budget": 10},
        {"budget": 1.234, "spent": "beaucoup"},
        {"funding_type": "european", "budget": 1e12, "details": "  ", "colour": 1},
        {"funding_type": "private"},
        {"funding_type": "private", "budget": 3},
        "ligne",
    ]
    problems = _problems(
        c.execute(CORRESPONDENT, "record-action-finances", {"action": action, "year": 2024, "lines": lines})
    )
    assert problems == {"lines": "6 lignes au plus (une par type de financement)."}
    problems = _problems(
        c.execute(
            CORRESPONDENT, "record-action-finances", {"action": action, "year": 2024, "lines": lines[:6]}
        )
    )
    assert problems == {
        "lines[0].budget": "le montant doit être positif ou nul.",
        "lines[1].funding_type": (
            "valeur « lottery » inconnue ; valeurs permises : state, dedicated_resorption, "
            "local_authority, european, private, other."
        ),
        "lines[2].funding_type": (
            "valeur obligatoire (state, dedicated_resorption, local_authority, european, private, other)."
        ),
        "lines[2].budget": "deux décimales au plus (les centimes).",
        "lines[2].spent": "montant attendu (un nombre, en euros).",
        "lines[3].colour": "clé inconnue ; clés permises : funding_type, budget, spent, details.",
        "lines[3].budget": "le montant dépasse 9999999999.99 €.",
        "lines[3].details": "texte non vide attendu.",
        "lines[4].budget": "valeur obligatoire.",
        "lines[5].funding_type": "le type « private » est déjà donné par une autre ligne.",
    }
    problems = _problems(
        c.execute(
            CORRESPONDENT, "record-action-finances", {"action": action, "year": 2024, "lines": ["ligne"]}
        )
    )
    assert problems == {"lines[0]": "objet attendu (funding_type, budget, spent, details)."}
    # Out of scope, as for indicators.
    elsewhere = c.action(SAINT_DENIS_SQUARE)
    body = _french_error(
        c.execute(LOCAL_ADMIN, "record-action-finances", {"action": elsewhere, "year": 2024, "lines": LINES}),
        403,
    )
    assert "93" in body["description"]


# -- action_changes: who reads what ----------------------------------------------------


@pytest.fixture
def recorded(c: Client) -> int:
    """An action of Gironde with a snapshot and finances."""
    action = c.action()
    r = c.execute(
        OPERATOR, "record-action-indicators", {"action": action, "measured_at": "2024-06-30", **SNAPSHOT}
    )
    assert r.status_code == 200, r.text
    r = c.execute(CORRESPONDENT, "record-action-finances", {"action": action, "year": 2024, "lines": LINES})
    assert r.status_code == 200, r.text
    return action


def _hits(c: Client, who: str, **params: Any) -> int:
    r = c.changes(who, resulttype="hits", **params)
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


def test_action_changes_hide_the_finances_from_those_without_the_group(c: Client, recorded: int) -> None:
    with_group = c.changes(CORRESPONDENT, action_id=recorded, limit=50).json()["features"]
    without = c.changes(OPERATOR, action_id=recorded, limit=50).json()["features"]
    assert sorted(f["properties"]["subject"] for f in with_group) == [
        "action",
        "funding",
        "funding",
        "indicators",
    ]
    # Without the group: no finance version, no finance field, not even empty.
    assert sorted(f["properties"]["subject"] for f in without) == ["action", "indicators"]
    for f in without:
        assert "finance_year" not in f["properties"] and "funder" not in f["properties"]
    assert _hits(c, CORRESPONDENT, action_id=recorded) == 4
    assert _hits(c, OPERATOR, action_id=recorded) == 2
    assert _hits(c, OPERATOR, action_id=recorded, subject="funding") == 0
    # One item: a finance version does not exist for them.
    finance_version = next(f["id"] for f in with_group if f["properties"]["subject"] == "funding")
    assert (
        c.request(
            CORRESPONDENT, "GET", f"/collections/action_changes/items/{finance_version}", params={"f": "json"}
        ).status_code
        == 200
    )
    _french_error(
        c.request(
            OPERATOR, "GET", f"/collections/action_changes/items/{finance_version}", params={"f": "json"}
        ),
        404,
    )
    # Filtering or sorting on a finance field is refused as an unknown property.
    for params in (
        {"properties": "finance_year"},
        {"filter": "finance_year = 2024"},
        {"filter": "funder = 'state'"},
        {"sortby": "finance_year"},
    ):
        body = _french_error(c.changes(OPERATOR, **params), 400)
        assert "finance_year" in body["description"] or "funder" in body["description"], params
        assert c.changes(CORRESPONDENT, action_id=recorded, **params).status_code == 200, params
    # A query parameter of a field one may not read is refused like any unknown parameter (OGC
    # API Features Part 1, /req/core/query-param-unknown), with the same words.
    hidden = c.changes(OPERATOR, finance_year="2024")
    unknown = c.changes(OPERATOR, nexistepas="2024")
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json()["description"].replace("finance_year", "X") == unknown.json()[
        "description"
    ].replace("nexistepas", "X")
    # …and the queryables and the schema do not name them.
    for path in ("queryables", "schema"):
        without_fields = c.request(
            OPERATOR, "GET", f"/collections/action_changes/{path}", params={"f": "json"}
        ).json()
        with_fields = c.request(
            CORRESPONDENT, "GET", f"/collections/action_changes/{path}", params={"f": "json"}
        ).json()
        assert (
            "finance_year" in with_fields["properties"] and "finance_year" not in without_fields["properties"]
        )


def test_action_changes_stay_in_the_readers_scope(
    c: Client, recorded: int, anonymous: requests.Session
) -> None:
    version = c.changes(OPERATOR, action_id=recorded).json()["features"][0]["id"]
    assert c.changes(NEIGHBOUR, action_id=recorded).json()["features"] == []
    assert _hits(c, NEIGHBOUR, action_id=recorded) == 0
    _french_error(
        c.request(NEIGHBOUR, "GET", f"/collections/action_changes/items/{version}", params={"f": "json"}), 404
    )
    assert anonymous.get("/collections/action_changes/items").status_code in (401, 404)
    assert anonymous.get(f"/collections/action_changes/items/{version}").status_code in (401, 404)
    # An error on the rows (a failing filter) says nothing of a hidden département either.
    hidden = c.changes(NEIGHBOUR, filter="departement_code = '33' AND action_id * 1e308 * 1e308 > 0")
    empty = c.changes(NEIGHBOUR, filter="departement_code = '971' AND action_id * 1e308 * 1e308 > 0")
    assert (hidden.status_code, hidden.json().get("features")) == (
        empty.status_code,
        empty.json().get("features"),
    )
    # The action links to its history.
    links = c.get_action(OPERATOR, recorded).json()["links"]
    history = next(link["href"] for link in links if link["rel"] == "version-history")
    assert "/collections/action_changes/items?action_id=" in history


# -- the action dashboard ---------------------------------------------------------------


def _expected(db: psycopg.Connection, reads_finances: bool) -> dict[str, Any]:
    """The figures of Gironde's actions today, computed here as the owner."""
    in_33 = "EXISTS (SELECT 1 FROM resorption.action_departements ad WHERE ad.action_id = a.id AND ad.departement_code = '33')"
    actions = db.execute(f"SELECT count(*) FROM resorption.actions a WHERE {in_33}").fetchone()[0]
    people, school = db.execute(
        f"""SELECT coalesce(sum(people), 0), coalesce(sum(minors_school_start), 0) FROM (
              SELECT DISTINCT ON (i.action_id) i.* FROM resorption.action_indicators i
              JOIN resorption.actions a ON a.id = i.action_id
              WHERE {in_33} AND i.measured_at <= current_date ORDER BY i.action_id, i.measured_at DESC) l"""
    ).fetchone()
    topics = dict(
        db.execute(
            f"SELECT t::text, count(*) FROM resorption.actions a, unnest(a.topics) t WHERE {in_33} GROUP BY t"
        ).fetchall()
    )
    finances = {
        (year, kind): float(budget)
        for year, kind, budget in db.execute(
            f"""SELECT f.year, f.funding_type::text, sum(f.budget) FROM resorption.action_finances f
                JOIN resorption.actions a ON a.id = f.action_id WHERE {in_33} GROUP BY 1, 2"""
        ).fetchall()
    }
    return {
        "actions": actions,
        "people": people,
        "school": school,
        "topics": topics,
        "finances": finances if reads_finances else None,
    }


def _csv(c: Client, who: str) -> list[dict[str, str]]:
    r = c.request(who, "GET", "/tableau-de-bord/departement-33/actions.csv")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))


def _number(text: str) -> float:
    return float(text.replace("\u202f", "").replace(",", ".")) if text else 0.0


def test_the_dashboard_csv_gives_the_figures_of_sql(c: Client, recorded: int, db: psycopg.Connection) -> None:
    for who, reads_finances in ((CORRESPONDENT, True), (OPERATOR, False)):
        expected = _expected(db, reads_finances)
        rows = _csv(c, who)
        by = {(r["Rubrique"], r["Libellé"], r["Année"], r["Financeur"]): r for r in rows}
        assert _number(by["Actions", "Actions du territoire", "", ""]["Valeur"]) == expected["actions"]
        assert (
            _number(by["Personnes atteintes", "Personnes accompagnées", "", ""]["Valeur"])
            == expected["people"]
        )
        assert (
            _number(by["Personnes atteintes", "Mineurs ayant commencé l'école", "", ""]["Valeur"])
            == expected["school"]
        )
        topics = {
            r["Libellé"]: int(_number(r["Actions"]))
            for r in rows
            if r["Rubrique"] == "Actions par thématique"
        }
        assert topics["Scolarisation et éducation"] == expected["topics"]["schooling"]
        assert sum(topics.values()) == sum(expected["topics"].values())
        finances = {
            (int(r["Année"]), r["Financeur"]): _number(r["Valeur"])
            for r in rows
            if r["Rubrique"] == "Financements"
        }
        if reads_finances:
            assert finances == expected["finances"] and (2024, "dedicated_resorption") in finances
        else:
            assert finances == {}, "sans le groupe des financements, aucun financement"


def test_the_dashboard_is_only_for_the_territories_read(c: Client, anonymous: requests.Session) -> None:
    assert c.request(NEIGHBOUR, "GET", "/tableau-de-bord/departement-33/actions").status_code == 404
    assert c.request(NEIGHBOUR, "GET", "/tableau-de-bord/departement-33/actions.csv").status_code == 404
    assert c.request(OPERATOR, "GET", "/tableau-de-bord/nation/actions.csv").status_code == 404
    assert c.request(OPERATOR, "GET", "/tableau-de-bord/departement-33/autre").status_code == 404
    assert anonymous.get("/tableau-de-bord/departement-33/actions.csv").status_code == 401
    body = _french_error(
        c.request(OPERATOR, "GET", "/tableau-de-bord/departement-33/actions.csv", params={"date": "hier"}),
        400,
    )
    assert "AAAA-MM-JJ" in body["description"]
    r = c.request(OPERATOR, "GET", "/tableau-de-bord/actions", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/tableau-de-bord/departement-33/actions")


def test_the_action_dashboard_in_the_browser(
    pages, screenshot, c: Client, recorded: int, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    correspondent = users[CORRESPONDENT]
    page = pages.open(correspondent.username, correspondent.token)
    response = page.goto("/tableau-de-bord/departement-33/actions")
    assert response is not None and response.status == 200
    assert page.title() == "Actions — Gironde (33) · Résorption"
    expected = _expected(db, True)
    shown = {
        key: page.locator(f".dashboard-figure[data-key='{key}']").inner_text()
        for key in ("actions", "people")
    }
    assert int(re.sub(r"\D", "", shown["actions"])) == expected["actions"]
    assert int(re.sub(r"\D", "", shown["people"])) == expected["people"]
    assert page.locator("#topics-table tbody tr[data-topic='schooling'] td[data-key='actions']").inner_text()
    budget = page.locator(
        "#finances-table tr[data-year='2024'][data-funding='dedicated_resorption'] td[data-key='budget']"
    )
    assert float(budget.get_attribute("data-value")) == expected["finances"][(2024, "dedicated_resorption")]
    path = screenshot(page, "gironde-actions")
    assert path.stat().st_size > 10_000
    assert not pages.console_errors

    # Without the finances group: no finance table at all.
    operator = users[OPERATOR]
    page = pages.open(operator.username, operator.token)
    assert page.goto("/tableau-de-bord/departement-33/actions").status == 200
    assert page.locator("#finances-table").count() == 0
    assert "Financements" not in page.locator("#action-dashboard").inner_text()
    screenshot(page, "gironde-actions-sans-financements")


# -- the results form of an action's sheet ---------------------------------------------------


def test_the_results_form_records_through_the_processes(
    pages, screenshot, c: Client, users: dict[str, TestUser], database_url: str
) -> None:
    action = c.action()
    correspondent = users[CORRESPONDENT]
    page = pages.open(correspondent.username, correspondent.token)
    assert page.goto(f"/actions/{action}/resultats").status == 200
    assert page.title() == "Résultats — Action des tests de résultats · Résorption"
    # A rule of the model broken: nothing written, the problem said by its field.
    page.fill("#measured_at", "2024-06-30")
    page.fill("#people", "10")
    page.fill("#households", "12")
    with page.expect_navigation():
        page.click("#indicators-form button[type=submit]")
    assert (
        page.locator("#households-error").inner_text()
        == "12 dépasse le nombre de personnes accompagnées (10)."
    )
    assert page.input_value("#households") == "12"
    assert "Ménages accompagnés : 12 dépasse" in page.inner_text("#form-errors")
    screenshot(page, "erreur")
    # The refused form answers 400, which the browser notes: nothing else went wrong.
    assert [e for e in pages.console_errors if "status of 400" not in e] == []
    pages.console_errors.clear()
    page.fill("#households", "4")
    with page.expect_navigation():
        page.click("#indicators-form button[type=submit]")
    assert page.url.endswith("?enregistre=indicateurs")
    assert "Le relevé d'indicateurs est enregistré." in page.inner_text("#action-results")
    # Finances: a decimal comma is fine.
    page.fill("#year", "2025")
    page.fill("input[name=budget_state]", "12 000,50")
    page.fill("input[name=details_state]", "Préfecture")
    with page.expect_navigation():
        page.click("#finances-form button[type=submit]")
    assert "Les financements sont enregistrés." in page.inner_text("#action-results")
    screenshot(page, "enregistre")
    assert not pages.console_errors
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT people, households FROM resorption.action_indicators WHERE action_id = %s", (action,)
        ).fetchall() == [(10, 4)]
        assert conn.execute(
            "SELECT year, funding_type::text, budget::float, details FROM resorption.action_finances "
            "WHERE action_id = %s",
            (action,),
        ).fetchall() == [(2025, "state", 12000.5, "Préfecture")]

    # A refused finance line is named by its funder, in French.
    r = c.request(
        CORRESPONDENT,
        "POST",
        f"/actions/{action}/resultats",
        data={"formulaire": "financements", "year": "2025", "budget_european": "beaucoup"},
    )
    assert (
        r.status_code == 400 and "Fonds européens : budget : montant attendu (un nombre, en euros)." in r.text
    )

    # Without the finances group, no finance form; out of the reader's scope, no page.
    operator = users[OPERATOR]
    page = pages.open(operator.username, operator.token)
    assert page.goto(f"/actions/{action}/resultats").status == 200
    assert page.locator("#finances-form").count() == 0
    neighbour = users[NEIGHBOUR]
    assert pages.open(neighbour.username, neighbour.token).goto(f"/actions/{action}/resultats").status == 404
    # A finance form posted anyway by someone without the group: refused.
    r = c.request(
        OPERATOR, "POST", f"/actions/{action}/resultats", data={"formulaire": "financements", "year": "2025"}
    )
    assert r.status_code == 403
