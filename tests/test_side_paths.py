"""Side paths: every way to reach data reads with the caller's rights, and leaks nothing.

- The catalog test lists every relation and SECURITY DEFINER function the application's
  database roles can reach, and fails when a new one reads with other rights than the
  caller's without being justified here.
- The error-oracle family: for each protected collection, each reader whose scope hides
  something, each past state and each expression that fails on the rows it meets, a hidden
  département answers exactly like a département with no rows at all.
- Tile versions (ETags), counts and uniqueness refusals depend only on what the caller may read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from resorption.privileges import APP_FUNCTIONS
from resorption.settings import APP_DB_USER
from tests.api import body_text
from tests.fix_users import AREA, OTHER_AREA, POLICY, TestUser, _username, user_cases
from tests.test_access_matrix import expected_scope

# Tables every role may read: reference data, no row-level security by design.
PUBLIC_TABLES = {
    "resorption.regions": "territoires (données publiques de l'INSEE)",
    "resorption.departements": "territoires",
    "resorption.epci": "territoires",
    "resorption.communes": "territoires",
    "resorption.organisations": "noms des organisations, publics",
    "public.spatial_ref_sys": "systèmes de coordonnées de PostGIS",
    "public.alembic_version": "la révision du schéma, lue par /pret (aucune donnée)",
}
# Views that read with their owner's rights, each with why it is safe. Every other view reads
# as the caller (security_invoker).
OWNER_RIGHTS_VIEWS = {
    "resorption.opendata_departements": (
        "agrégats sous secret statistique, lus dans leur dernier calcul (opendata_snapshot, que seul "
        "le propriétaire lit et écrit), barrière (sql/070_opendata.sql)"
    ),
    "resorption.opendata_regions": "agrégats sous secret statistique, dernier calcul, barrière",
    "resorption.actions_in_scope": (
        "lu par les politiques RLS des actions seulement : identifiants des actions du périmètre "
        "de l'appelant, barrière (sql/040_actions.sql)"
    ),
    "public.geometry_columns": "catalogue de PostGIS (noms de colonnes, filtrés par privilège)",
    "public.geography_columns": "catalogue de PostGIS",
}

REACHABLE = """
WITH roles AS (SELECT rolname FROM pg_roles WHERE rolname = %(app)s OR rolname LIKE 'resorption\\_%%')
SELECT n.nspname || '.' || c.relname, c.relkind::text, c.relrowsecurity,
       coalesce(c.reloptions, '{}') @> '{security_invoker=true}',
       coalesce(c.reloptions, '{}') @> '{security_barrier=true}'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND EXISTS (SELECT 1 FROM roles r WHERE has_table_privilege(r.rolname, c.oid, 'SELECT')
                                       OR has_any_column_privilege(r.rolname, c.oid, 'SELECT'))
ORDER BY 1
"""


def test_every_reachable_relation_reads_as_the_caller(db: psycopg.Connection) -> None:
    """Tables under row-level security, views as the caller: anything else is listed and justified."""
    unjustified = []
    for name, kind, rls, invoker, barrier in db.execute(REACHABLE, {"app": APP_DB_USER}):
        if kind in ("r", "p", "f", "m") and not rls and name not in PUBLIC_TABLES:
            unjustified.append(f"{name}: table sans sécurité des lignes")
        if kind == "v" and not invoker:
            if name not in OWNER_RIGHTS_VIEWS:
                unjustified.append(f"{name}: vue lue avec les droits de son propriétaire")
            elif name.startswith("resorption.") and not barrier:
                unjustified.append(f"{name}: vue aux droits du propriétaire sans security_barrier")
    assert unjustified == []


def test_the_listed_exceptions_still_exist(db: psycopg.Connection) -> None:
    """The lists above do not rot: each name is a relation a role can still reach."""
    reachable = {row[0] for row in db.execute(REACHABLE, {"app": APP_DB_USER})}
    assert set(PUBLIC_TABLES) | set(OWNER_RIGHTS_VIEWS) <= reachable


def test_security_definer_functions_are_the_listed_ones(db: psycopg.Connection) -> None:
    """Only the application's login role may run a SECURITY DEFINER function, and only those it calls.

    The roles a request's SQL runs as (readers, writers, anonymous) run none: a function that
    reads with its owner's rights is never reachable from a query a caller shapes.
    """
    rows = db.execute(
        """
        SELECT p.oid::regprocedure::text, r.rolname
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        CROSS JOIN pg_roles r
        WHERE p.prosecdef AND n.nspname = 'resorption'
          AND (r.rolname = %s OR r.rolname LIKE 'resorption\\_%%' OR r.rolname = 'public')
          AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
        """,
        (APP_DB_USER,),
    ).fetchall()
    callers = {(fn.removeprefix("resorption."), role) for fn, role in rows}
    assert {role for _, role in callers} <= {APP_DB_USER}
    assert {fn.replace(" ", "") for fn, _ in callers} == {f.replace(" ", "") for f in APP_FUNCTIONS}
    public = db.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.prosecdef AND n.nspname = 'resorption' AND p.proacl IS NULL"
    ).fetchall()
    assert public == [], "une fonction SECURITY DEFINER garde les droits par défaut (EXECUTE à PUBLIC)"


def test_jobs_are_under_row_level_security(database_url: str) -> None:
    """The login role reads no job without saying whose (the job manager sets it per transaction)."""
    from resorption.settings import app_url

    with psycopg.connect(database_url) as owner:
        owner.execute(
            "INSERT INTO resorption_jobs.jobs (identifier, process_id, owner, status, progress) "
            "VALUES ('rls-test-job', 'close-site', 'someone-else', 'successful', 100) "
            "ON CONFLICT DO NOTHING"
        )
    try:
        with psycopg.connect(app_url(database_url, None)) as conn:
            assert conn.execute("SELECT count(*) FROM resorption_jobs.jobs").fetchone()[0] == 0
            conn.execute("SELECT set_config('resorption.jobs_owner', 'intruder', true)")
            assert conn.execute("SELECT count(*) FROM resorption_jobs.jobs").fetchone()[0] == 0
            conn.execute("SELECT set_config('resorption.jobs_owner', 'someone-else', true)")
            assert conn.execute("SELECT count(*) FROM resorption_jobs.jobs").fetchone()[0] == 1
            conn.rollback()
    finally:
        with psycopg.connect(database_url) as owner:
            owner.execute("DELETE FROM resorption_jobs.jobs WHERE identifier = 'rls-test-job'")


# -- error oracles ------------------------------------------------------------------------

# Expressions that fail on any row they are evaluated on (each is ANDed after a condition on
# the département): a float overflow, another on a different column, a LIKE pattern ending
# with its escape character.
FAILING = {
    "sites": ["id * 1e308 * 1e308 > 0", "population_total * 1e308 * 1e308 > 0", "name LIKE '%\\'"],
    "actions": ["id * 1e308 * 1e308 > 0", "name LIKE '%\\'"],
    "site_changes": ["site_id * 1e308 * 1e308 > 0", "site_name LIKE '%\\'"],
    "site_comments": ["id * 1e308 * 1e308 > 0", "message LIKE '%\\'"],
    "action_comments": ["id * 1e308 * 1e308 > 0", "message LIKE '%\\'"],
    "action_changes": ["action_id * 1e308 * 1e308 > 0", "action_name LIKE '%\\'"],
    "activity": ["site_id * 1e308 * 1e308 > 0", "site_name LIKE '%\\'"],
}
# Each collection now and in the past (a `datetime` instant reads the history).
STATES = [
    ("sites", None),
    ("sites", "2022-01-01"),
    ("actions", None),
    ("actions", "2023-06-30"),
    ("site_changes", None),
    ("site_comments", None),
    ("site_comments", "2030-01-01"),
    ("action_comments", None),
    ("action_changes", None),
    ("activity", None),
    ("activity", "2020-01-01/.."),
]
# Readers in AREA whose scope hides OTHER_AREA, per collection.
READERS = {
    collection: [
        _username(*case)
        for case in user_cases(POLICY)
        if case[2] == "departement" and expected_scope(case[0], case[1], case[2], rules) == "area"
    ]
    for collection, rules in (
        ("sites", "sites"),
        ("actions", "actions"),
        ("site_changes", "sites"),
        ("site_comments", "sites"),
        ("action_comments", "actions"),
        ("action_changes", "actions"),
        ("activity", "sites"),
    )
}
# The collection whose rows a changelog's versions are (the oracle needs some hidden).
RULES = {"site_changes": "sites", "action_changes": "actions", "activity": "sites"}
CASES = [
    pytest.param(collection, when, expression, reader, id=f"{collection}-{when or 'now'}-{n}-{reader}")
    for collection, when in STATES
    for n, expression in enumerate(FAILING[collection])
    for reader in READERS[collection]
]


@pytest.fixture(scope="module")
def empty_departement(db: psycopg.Connection) -> str:
    """A département without any site, version or action: nothing there to hide."""
    row = db.execute(
        """
        SELECT d.code FROM resorption.departements d
        WHERE NOT EXISTS (SELECT 1 FROM resorption.sites_history s WHERE s.departement_code = d.code)
          AND NOT EXISTS (SELECT 1 FROM resorption.actions_history a WHERE a.departement_code = d.code)
          AND NOT EXISTS (SELECT 1 FROM resorption.action_departements a WHERE a.departement_code = d.code)
        ORDER BY d.code LIMIT 1
        """
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def hidden_rows(db: psycopg.Connection) -> dict[str, int]:
    """How many rows each collection has in OTHER_AREA (the oracle needs some to exist); the
    journals get messages there and in AREA first, of every visibility (written as the owner)."""
    for journal, parent, geometry in (
        ("site_comments", "sites", "location"),
        ("action_comments", "actions", "footprint"),
    ):
        db.execute(
            f"""
            INSERT INTO resorption.{journal} ({parent[:-1]}_id, departement_code, location, message, visibility,
                                              audience_users)
            SELECT p.id, p.departement_code, p.{geometry}, 'Message caché ' || v, v::resorption.journal_visibility,
                   CASE WHEN v = 'chosen' THEN '{{quelqu-un}}'::text[] ELSE '{{}}' END
            FROM (SELECT * FROM (SELECT id, departement_code, {geometry},
                                        row_number() OVER (PARTITION BY departement_code ORDER BY id) AS n
                                 FROM resorption.{parent} WHERE departement_code = ANY(%s)) q
                  WHERE n <= 3) p,
                 unnest(ARRAY['everyone', 'state_services', 'chosen']) v
            """,
            ([AREA, OTHER_AREA],),
        )
    return {
        "site_comments": db.execute(
            "SELECT count(*) FROM resorption.site_comments WHERE departement_code = %s", (OTHER_AREA,)
        ).fetchone()[0],
        "action_comments": db.execute(
            "SELECT count(*) FROM resorption.action_comments WHERE departement_code = %s", (OTHER_AREA,)
        ).fetchone()[0],
        "sites": db.execute(
            "SELECT count(*) FROM resorption.sites_history WHERE departement_code = %s", (OTHER_AREA,)
        ).fetchone()[0],
        "actions": db.execute(
            "SELECT count(*) FROM resorption.actions WHERE departement_code = %s", (OTHER_AREA,)
        ).fetchone()[0],
    }


def _answer(base_url: str, user: TestUser, collection: str, when: str | None, condition: str) -> Any:
    params = {"filter": condition, "limit": "100"}
    if when:
        params["datetime"] = when
    r = requests.get(
        f"{base_url}/collections/{collection}/items", params=params, headers=user.headers, timeout=60
    )
    body = r.json()
    if r.status_code == 200:
        body = {"features": body["features"], "numberMatched": body.get("numberMatched")}
    else:
        body.pop("requestId", None)  # each answer names its own request
    hits = requests.get(
        f"{base_url}/collections/{collection}/items",
        params={**params, "resulttype": "hits"},
        headers=user.headers,
        timeout=60,
    )
    return r.status_code, body, hits.status_code, hits.json().get("numberMatched")


@pytest.mark.parametrize(("collection", "when", "expression", "reader"), CASES)
def test_a_failing_filter_cannot_tell_hidden_rows_from_none(
    base_url: str,
    users: dict[str, TestUser],
    empty_departement: str,
    hidden_rows: dict[str, int],
    collection: str,
    when: str | None,
    expression: str,
    reader: str,
) -> None:
    assert hidden_rows[RULES.get(collection, collection)] > 0
    user = users[reader]
    hidden = _answer(base_url, user, collection, when, f"departement_code = '{OTHER_AREA}' AND {expression}")
    empty = _answer(
        base_url, user, collection, when, f"departement_code = '{empty_departement}' AND {expression}"
    )
    assert hidden == empty


def test_the_oracle_expressions_fail_on_rows_only(
    base_url: str, users: dict[str, TestUser], empty_departement: str, hidden_rows: dict[str, int]
) -> None:
    """The family above means something: each expression is an error on the rows the caller
    reads, and only there (it parses, and an empty département answers 200)."""
    user = users[_username("operator", frozenset(), "departement", AREA)]
    for collection, expressions in FAILING.items():
        for expression in expressions:
            on_rows = _answer(
                base_url, user, collection, None, f"departement_code = '{AREA}' AND {expression}"
            )
            assert on_rows[0] == 400, (collection, expression, on_rows)
            on_none = _answer(
                base_url, user, collection, None, f"departement_code = '{empty_departement}' AND {expression}"
            )
            if collection in ("activity", "action_changes") and on_none == on_rows:
                # The feed is no barrier (190_activity.sql), and the actions' changelog looks the
                # département of a result up by its action (170_action_results.sql): among the
                # caller's own conditions the planner may try the expression before the
                # département, on rows the caller reads (row-level security comes first); the
                # answer is then the one on rows, whatever the département (no oracle).
                continue
            assert on_none[0] == 200, (collection, expression, on_none)


# -- tile versions ------------------------------------------------------------------------


def _tile_etag(base_url: str, user: TestUser, collection: str) -> str:
    r = requests.get(
        f"{base_url}/collections/{collection}/tiles/WebMercatorQuad/0/0/0", headers=user.headers, timeout=60
    )
    assert r.status_code in (200, 204), r.text
    return r.headers["ETag"]


@pytest.fixture
def touch(database_url: str) -> Iterator[Any]:
    """Write one site or action of a département as the owner (the triggers record it)."""

    def write(collection: str, departement: str) -> None:
        column = "confirmed_at" if collection == "sites" else "updated_at"
        with psycopg.connect(database_url) as conn:
            conn.execute(
                f"UPDATE resorption.{collection} SET {column} = now() "
                f"WHERE id = (SELECT min(id) FROM resorption.{collection} WHERE departement_code = %s)",
                (departement,),
            )

    yield write


@pytest.mark.parametrize("collection", ["sites", "actions"])
def test_a_tile_version_changes_only_with_what_the_caller_reads(
    base_url: str, users: dict[str, TestUser], touch: Any, collection: str
) -> None:
    local = users[_username("operator", frozenset(), "departement", AREA)]
    national = users["national-admin-nation"]
    before_local, before_national = (
        _tile_etag(base_url, local, collection),
        _tile_etag(base_url, national, collection),
    )
    touch(collection, OTHER_AREA)
    # Someone else's département changed: the national ETag moves, the Gironde one does not.
    assert _tile_etag(base_url, local, collection) == before_local
    assert _tile_etag(base_url, national, collection) != before_national
    touch(collection, AREA)
    assert _tile_etag(base_url, local, collection) != before_local


# -- uniqueness ---------------------------------------------------------------------------


@pytest.fixture
def created(database_url: str) -> Iterator[list[tuple[str, int]]]:
    items: list[tuple[str, int]] = []
    yield items
    with psycopg.connect(database_url) as conn:
        for collection, identifier in items:
            conn.execute(f"DELETE FROM resorption.{collection} WHERE id = %s", (identifier,))


def _post(
    base_url: str, user: TestUser, collection: str, feature: dict[str, Any], created: list
) -> requests.Response:
    r = requests.post(
        f"{base_url}/collections/{collection}/items", json=feature, headers=user.headers, timeout=60
    )
    if r.status_code == 201:
        created.append((collection, int(r.headers["Location"].rsplit("/", 1)[1])))
    return r


BORDEAUX = [-0.5792, 44.8378]
SQUARE = [[[-0.58, 44.83], [-0.57, 44.83], [-0.57, 44.84], [-0.58, 44.84], [-0.58, 44.83]]]


def _site(ref: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": BORDEAUX},
        "properties": {"name": "Site des tests d'unicité", "declared_at": "2024-03-01", "external_ref": ref},
    }


def _action(ref: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [SQUARE]},
        "properties": {
            "name": "Action des tests d'unicité",
            "started_at": "2024-01-01",
            "topics": ["health"],
            "reference": ref,
        },
    }


@pytest.mark.parametrize(
    ("collection", "column", "feature"),
    [
        ("sites", "external_ref", _site),
        ("actions", "reference", _action),
    ],
)
def test_a_reference_used_out_of_sight_is_no_refusal(
    base_url: str,
    users: dict[str, TestUser],
    database_url: str,
    created: list,
    collection: str,
    column: str,
    feature: Any,
) -> None:
    """A reference held by a row the writer cannot read neither refuses nor reveals it."""
    writer = users["correspondent-departement-33"]
    reader = users[_username("operator", frozenset(), "departement", AREA)]
    ref = f"UNIQ-{collection}-93"
    with psycopg.connect(database_url) as owner:
        owner.execute(
            f"UPDATE resorption.{collection} SET {column} = %s "
            f"WHERE id = (SELECT min(id) FROM resorption.{collection} WHERE departement_code = %s)",
            (ref, OTHER_AREA),
        )
    try:
        first = _post(base_url, writer, collection, feature(ref), created)
        assert first.status_code == 201, first.text
        # Within the writer's own département, the reference is taken: said plainly.
        again = _post(base_url, writer, collection, feature(ref), created)
        assert again.status_code == 400
        assert again.json()["errors"] == [
            {"property": column, "message": "valeur déjà utilisée par un autre élément."}
        ]
        # …and the row holding it is one the writer (and its département's readers) can read.
        holder = requests.get(
            f"{base_url}/collections/{collection}/items",
            params={column: ref},
            headers=reader.headers,
            timeout=60,
        ).json()
        assert [f["id"] for f in holder["features"]] == [created[0][1]]
    finally:
        with psycopg.connect(database_url) as owner:
            owner.execute(
                f"UPDATE resorption.{collection} SET {column} = NULL WHERE {column} = %s "
                "AND departement_code = %s",
                (ref, OTHER_AREA),
            )


# -- attachments --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hidden_attachments(
    db: psycopg.Connection, hidden_rows: dict[str, int]
) -> dict[str, tuple[str, int, int]]:
    """Files written as the owner where the area readers may not read them: on a site and on
    messages of every visibility in OTHER_AREA, on State-only and chosen messages in AREA.
    Label → (parent collection, parent id, file id)."""
    parents = {
        "site 93": (
            "sites",
            "SELECT id FROM resorption.sites WHERE departement_code = %(o)s ORDER BY id LIMIT 1",
        ),
        **{
            f"{v} 93": (
                "site_comments",
                f"SELECT id FROM resorption.site_comments WHERE departement_code = %(o)s AND visibility = '{v}' LIMIT 1",
            )
            for v in ("everyone", "state_services", "chosen")
        },
        **{
            f"{v} 33": (
                "site_comments",
                f"SELECT id FROM resorption.site_comments WHERE departement_code = %(a)s AND visibility = '{v}' LIMIT 1",
            )
            for v in ("state_services", "chosen")
        },
        "action everyone 93": (
            "action_comments",
            "SELECT id FROM resorption.action_comments WHERE departement_code = %(o)s AND visibility = 'everyone' LIMIT 1",
        ),
    }
    column = {"sites": "site_id", "site_comments": "site_comment_id", "action_comments": "action_comment_id"}
    found = {}
    for label, (collection, query) in parents.items():
        parent_id, departement = db.execute(
            f"SELECT id, departement_code FROM resorption.{collection} WHERE id = ({query})",
            {"o": OTHER_AREA, "a": AREA},
        ).fetchone()
        content = f"Fichier caché {label}\n".encode()
        (file_id,) = db.execute(
            f"INSERT INTO resorption.attachments ({column[collection]}, departement_code, filename, media_type, "
            "size, sha256, content) VALUES (%s, %s, 'cache.txt', 'text/plain', %s, sha256(%s), %s) RETURNING id",
            (parent_id, departement, len(content), content, content),
        ).fetchone()
        found[label] = (collection, parent_id, file_id)
    return found


def _bare(r: requests.Response, *ids: int) -> tuple[int, str]:
    text = body_text(r)
    for n in ids:
        text = text.replace(str(n), "N")
    return r.status_code, text


@pytest.mark.parametrize("reader", READERS["sites"])
def test_a_file_out_of_sight_answers_like_a_missing_one(
    base_url: str,
    users: dict[str, TestUser],
    hidden_attachments: dict[str, tuple[str, int, int]],
    reader: str,
) -> None:
    """A file whose parent the reader may not read (another département, a State-only or
    chosen message) is absent from every answer, as a missing id is: its download, its
    parent's list, and a deletion."""
    headers = users[reader].headers
    missing_file, missing_parent = 999_999_981, 999_999_982
    for label, (collection, parent_id, file_id) in hidden_attachments.items():
        got = requests.get(f"{base_url}/attachments/{file_id}", headers=headers, timeout=60)
        absent = requests.get(f"{base_url}/attachments/{missing_file}", headers=headers, timeout=60)
        assert got.status_code == 404, (label, got.status_code)
        assert _bare(got, file_id) == _bare(absent, missing_file), label
        listed = requests.get(
            f"{base_url}/collections/{collection}/items/{parent_id}/attachments", headers=headers, timeout=60
        )
        nothing = requests.get(
            f"{base_url}/collections/{collection}/items/{missing_parent}/attachments",
            headers=headers,
            timeout=60,
        )
        assert _bare(listed, parent_id) == _bare(nothing, missing_parent), label
        deleted = requests.delete(f"{base_url}/attachments/{file_id}", headers=headers, timeout=60)
        assert _bare(deleted, file_id) == _bare(
            requests.delete(f"{base_url}/attachments/{missing_file}", headers=headers, timeout=60),
            missing_file,
        ), label


def test_the_hidden_files_exist_for_those_who_read_their_parent(
    base_url: str, users: dict[str, TestUser], hidden_attachments: dict[str, tuple[str, int, int]]
) -> None:
    """The family above means something: a national administrator reads each of these files."""
    headers = users["national-admin-nation"].headers
    for label, (_, _, file_id) in hidden_attachments.items():
        got = requests.get(f"{base_url}/attachments/{file_id}", headers=headers, timeout=60)
        assert got.status_code == 200, label
        assert got.content == f"Fichier caché {label}\n".encode()
