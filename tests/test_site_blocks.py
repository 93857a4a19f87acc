"""The sites of each block of 4,096 ids, counted by triggers (sql/030_sites.sql, revision 0046).

A page after `offset=` sites, with no other condition, starts in the block of its first site:
the counts of the blocks before it stand for the sites it skips. The counts must stay exact
through every way sites come and go, show a reader only the départements it reads, and the
pages must be the rows of the plain `OFFSET`, for every kind of reader, at every offset, block
boundaries included. The demo sites all lie in the first block: the tests add sites far apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from resorption.query.features import FeatureQuery, items_statement
from tests.fix_server import _Session
from tests.fix_users import AREA, CATALOG, OTHER_AREA, TestUser

BLOCK = 4096
# Far above the ids the demo and the other tests use: blocks of their own.
FIRST = 60_000 * BLOCK
SAINT_DENIS = "93066"
BLOCKS = (
    "SELECT departement_code, first_id, sum(sites) FROM resorption.site_blocks "
    "GROUP BY 1, 2 HAVING sum(sites) <> 0 ORDER BY 1, 2"
)
BLOCKS_TRUTH = (
    "SELECT departement_code, id & ~4095::bigint, count(*) FROM resorption.sites GROUP BY 1, 2 ORDER BY 1, 2"
)
NATION = "SELECT first_id, sum(sites) FROM resorption.site_blocks_nation GROUP BY 1 HAVING sum(sites) <> 0 ORDER BY 1"
NATION_TRUTH = "SELECT id & ~4095::bigint, count(*) FROM resorption.sites GROUP BY 1 ORDER BY 1"


def _exact(db: psycopg.Connection) -> None:
    assert db.execute(BLOCKS).fetchall() == db.execute(BLOCKS_TRUTH).fetchall()
    assert db.execute(NATION).fetchall() == db.execute(NATION_TRUTH).fetchall()


def _spread_ids() -> list[tuple[int, str]]:
    """(id, département): both départements in some blocks, one of them in others, an empty
    block between, and the first and last id of a block."""
    rows = []
    for block in (0, 1, 3, 4):
        for offset in (0, 1, 2, BLOCK - 1):
            rows.append((FIRST + block * BLOCK + offset, AREA if block != 3 else OTHER_AREA))
        if block in (1, 4):
            rows += [(FIRST + block * BLOCK + 7 + k, OTHER_AREA) for k in range(3)]
    return rows


@pytest.fixture(scope="module")
def spread(database_url: str) -> Iterator[list[tuple[int, str]]]:
    """Sites of Gironde and Seine-Saint-Denis in blocks far apart (removed as the owner afterwards)."""
    rows = _spread_ids()
    with psycopg.connect(database_url, autocommit=True) as conn:
        communes = dict(
            conn.execute(
                "SELECT DISTINCT ON (departement_code) departement_code, commune_code FROM resorption.sites "
                "WHERE departement_code = ANY(%s) ORDER BY departement_code, id",
                ([AREA, OTHER_AREA],),
            ).fetchall()
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO resorption.sites (id, name, commune_code, location, declared_at) "
                "VALUES (%s, 'Site éloigné ' || %s, %s, ST_SetSRID(ST_MakePoint(2.35, 48.9), 4326), '2024-01-01')",
                [(site, site, communes[code]) for site, code in rows],
            )
    yield rows
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id >= %s", (FIRST,))


def _truth(db: psycopg.Connection, departements: list[str] | None) -> list[int]:
    if departements is None:
        return [r[0] for r in db.execute("SELECT id FROM resorption.sites ORDER BY id")]
    return [
        r[0]
        for r in db.execute(
            "SELECT id FROM resorption.sites WHERE departement_code = ANY(%s) ORDER BY id", (departements,)
        )
    ]


def _offsets(truth: list[int]) -> list[int]:
    """Every position where a block begins or ends in the reader's order, and around it."""
    edges = {0, len(truth) - 1, len(truth), len(truth) + 3}
    for i in range(1, len(truth)):
        if truth[i] // BLOCK != truth[i - 1] // BLOCK:
            edges |= {i - 2, i - 1, i, i + 1}
    return sorted(o for o in edges if o >= 0)


def test_the_blocks_follow_every_change(
    spread: list[tuple[int, str]], http: requests.Session, db: psycopg.Connection
) -> None:
    _exact(db)
    moved = spread[0][0]
    db.execute("UPDATE resorption.sites SET commune_code = %s WHERE id = %s", (SAINT_DENIS, moved))
    _exact(db)
    # a change that moves nothing appends nothing
    before = db.execute("SELECT count(*) FROM resorption.site_blocks").fetchone()[0]
    db.execute("UPDATE resorption.sites SET population_total = 12 WHERE id >= %s", (FIRST,))
    assert db.execute("SELECT count(*) FROM resorption.site_blocks").fetchone()[0] == before
    # several rows in one statement, in several blocks: copies, then their deletion
    db.execute(
        "INSERT INTO resorption.sites (id, name, commune_code, location, declared_at) "
        "SELECT id + 8 * %s, 'Copie', commune_code, location, declared_at FROM resorption.sites "
        "WHERE id >= %s",
        (BLOCK, FIRST),
    )
    _exact(db)
    db.execute("DELETE FROM resorption.sites WHERE name = 'Copie'")
    _exact(db)
    db.execute(
        "UPDATE resorption.sites SET commune_code = (SELECT commune_code FROM resorption.sites "
        "WHERE departement_code = %s LIMIT 1) WHERE id = %s",
        (AREA, moved),
    )
    # through the API: one deleted by the national administrator
    url = f"/collections/sites/items/{spread[-1][0]}"
    assert http.delete(url, headers={"If-Match": http.get(url).headers["ETag"]}).status_code == 204
    _exact(db)
    # folded by the purger into one row per block: the same counts
    assert db.execute("SELECT resorption.fold_site_counts()").fetchone()[0] > 0
    _exact(db)
    assert db.execute("SELECT count(*) FROM resorption.site_blocks_nation").fetchone()[0] == len(
        db.execute(NATION_TRUTH).fetchall()
    )


@pytest.mark.parametrize(
    ("user", "departements"),
    [
        ("national-admin-nation", None),
        (f"operator-departement-{AREA}", [AREA]),
        (f"operator-departement-{OTHER_AREA}", [OTHER_AREA]),
        ("operator-commune-33063", [AREA]),
    ],
    ids=["nation", "gironde", "seine-saint-denis", "bordeaux"],
)
def test_offset_pages_across_blocks_are_the_rows_of_a_plain_offset(
    spread: list[tuple[int, str]],
    base_url: str,
    users: dict[str, TestUser],
    db: psycopg.Connection,
    user: str,
    departements: list[str] | None,
) -> None:
    truth = _truth(db, departements)
    assert len({i // BLOCK for i in truth}) >= 4, "the reader's sites span several blocks"
    with _Session(base_url, users[user].token) as session:
        for offset in _offsets(truth):
            r = session.get("/collections/sites/items", params={"offset": offset, "limit": 3})
            assert r.status_code == 200, r.text
            assert [f["id"] for f in r.json()["features"]] == truth[offset : offset + 3], offset


def _page(app: psycopg.Connection, departements: tuple[str, ...] | None, offset: int, **kw: Any) -> list[int]:
    sites = CATALOG["sites"]
    fq = FeatureQuery(
        collection=sites,
        readable=(sites.fields["id"],),
        limit=4,
        offset=offset,
        departements=departements,
        **kw,
    )
    statement, params = items_statement(fq)
    features = json.loads(app.execute(statement, params).fetchone()[0])
    return [f["id"] for f in features]


@pytest.mark.parametrize(
    ("scope", "departements", "readable"),
    [
        (f"{AREA},{OTHER_AREA}", (AREA, OTHER_AREA), [AREA, OTHER_AREA]),
        (OTHER_AREA, (AREA, OTHER_AREA), [OTHER_AREA]),
        (AREA, None, [AREA]),
        ("", None, []),
    ],
    ids=["two-departements", "scope-narrower-than-asked", "departement-asking-the-nation", "no-scope"],
)
def test_a_page_starts_only_from_the_blocks_its_reader_reads(
    spread: list[tuple[int, str]],
    app_connection: psycopg.Connection,
    db: psycopg.Connection,
    scope: str,
    departements: tuple[str, ...] | None,
    readable: list[str],
) -> None:
    """Under row-level security, the blocks a reader sums are those of the rows it reads: a
    reader of two départements pages through both; one whose scope is narrower than the
    départements asked pages through its own rows only; one who is not national and asks for
    the nation's blocks reads none of them, and skips its offset through its own rows from the
    start. The blocks of others never shift a reader's pages."""
    app_connection.execute("SET ROLE resorption_read")
    app_connection.execute("SELECT set_config('resorption.sites_scope', %s, false)", (scope,))
    truth = _truth(db, readable)
    for offset in _offsets(truth) if truth else [0, 5, 40]:
        assert _page(app_connection, departements, offset) == truth[offset : offset + 4], offset


def test_only_a_plain_page_in_id_order_starts_from_the_blocks() -> None:
    """A filter, a sort, a search, a box or an instant puts rows between the blocks' counts
    and the page: those pages skip their offset as PostgreSQL counts it."""
    sites = CATALOG["sites"]
    readable = (sites.fields["id"], sites.fields["population_total"])

    def uses_blocks(**kw: Any) -> bool:
        fq = FeatureQuery(collection=sites, readable=readable, offset=kw.pop("offset", 100), **kw)
        return "site_blocks" in items_statement(fq)[0].as_string(None)

    assert uses_blocks() and uses_blocks(departements=(AREA,))
    assert not uses_blocks(offset=0)
    assert not uses_blocks(sortby=((sites.fields["population_total"], True),))
    assert not uses_blocks(terms=("terrain",))
    assert not uses_blocks(equals=((sites.fields["population_total"], 12),))
    assert not uses_blocks(after=10)


def test_revision_0046_counts_the_blocks_of_a_database_without_them(scratch_url: str) -> None:
    """A database of 0045 (no blocks) gets them, filled from its sites, and its triggers keep them."""
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0045")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("DROP TABLE resorption.site_blocks, resorption.site_blocks_nation CASCADE")
        conn.execute("INSERT INTO resorption.regions (code, name) VALUES ('75', 'Nouvelle-Aquitaine')")
        conn.execute(
            "INSERT INTO resorption.departements (code, name, region_code) VALUES ('33', 'Gironde', '75')"
        )
        conn.execute(
            "INSERT INTO resorption.communes (code, name, departement_code) VALUES ('33063', 'Bordeaux', '33')"
        )
        # the triggers of 0045 count the départements only
        conn.execute(
            "CREATE OR REPLACE FUNCTION resorption.count_sites() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RETURN NULL; END $$"
        )
        for site in (1, 2, 5000):
            conn.execute(
                "INSERT INTO resorption.sites (id, name, commune_code, location, declared_at) "
                "VALUES (%s, 'Site', '33063', ST_SetSRID(ST_MakePoint(-0.57, 44.84), 4326), '2024-01-01')",
                (site,),
            )
    upgrade(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert conn.execute(BLOCKS).fetchall() == [("33", 0, 2), ("33", 4096, 1)]
        conn.execute("DELETE FROM resorption.sites WHERE id = 5000")
        _exact(conn)
        assert conn.execute(NATION).fetchall() == [(0, 2)]


@pytest.mark.parametrize("scope", [None, "", AREA, f"{AREA},{OTHER_AREA}", "*"])
def test_the_blocks_follow_the_read_scope(
    spread: list[tuple[int, str]],
    app_connection: psycopg.Connection,
    db: psycopg.Connection,
    scope: str | None,
) -> None:
    """A scoped reader sums the blocks of the départements it reads, the nation's blocks only
    under a national scope, nothing without a scope."""
    app_connection.execute("SET ROLE resorption_read")
    if scope is not None:
        app_connection.execute("SELECT set_config('resorption.sites_scope', %s, false)", (scope,))
    readable = {None: [], "": [], "*": None}.get(scope, (scope or "").split(","))
    rule = "" if readable is None else " WHERE departement_code = ANY(%s)"
    args = () if readable is None else (readable,)
    truth = db.execute(f"SELECT count(*) FROM resorption.sites{rule}", args).fetchone()[0]
    by_departement = app_connection.execute("SELECT coalesce(sum(sites), 0) FROM resorption.site_blocks")
    assert by_departement.fetchone()[0] == truth
    nation = app_connection.execute("SELECT coalesce(sum(sites), 0) FROM resorption.site_blocks_nation")
    assert nation.fetchone()[0] == (truth if scope == "*" else 0)
