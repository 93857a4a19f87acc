"""The sites of each département, counted by triggers (sql/030_sites.sql, revision 0043).

A count with no condition (`resulttype=hits`, QGIS's feature count) sums `site_counts` under
the sites' own read rule. It must stay exact through every way sites come and go (the API,
the owner's statements, several rows at once, a move to another département), show a reader
only the départements it reads, and take nobody's count of rows they do not read.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import requests

from tests.api import created_site, number_matched
from tests.fix_users import AREA, OTHER_AREA, TestUser

SAINT_DENIS = "93066"
COUNTS = "SELECT departement_code, sum(sites) FROM resorption.site_counts GROUP BY 1 HAVING sum(sites) <> 0 ORDER BY 1"
TRUTH = "SELECT departement_code, count(*) FROM resorption.sites GROUP BY 1 ORDER BY 1"


def _exact(db: psycopg.Connection) -> None:
    assert db.execute(COUNTS).fetchall() == db.execute(TRUTH).fetchall()


@pytest.fixture
def created(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[int]:
    """A site created in Gironde through the API (removed as the owner afterwards)."""
    properties = {"name": "Site des tests de décompte", "declared_at": "2024-03-01"}
    with created_site(base_url, users["correspondent-departement-33"].headers, database_url, properties) as site:
        yield site


def test_a_national_count_sums_the_counts_and_follows_every_change(
    http: requests.Session, db: psycopg.Connection, created: int
) -> None:
    total = db.execute("SELECT count(*) FROM resorption.sites").fetchone()[0]
    assert number_matched(http, "sites") == total
    _exact(db)
    # moved to another département by its commune, by the owner
    db.execute("UPDATE resorption.sites SET commune_code = %s WHERE id = %s", (SAINT_DENIS, created))
    _exact(db)
    # several rows in one statement: a copy of three sites, then their deletion
    db.execute(
        "INSERT INTO resorption.sites (name, commune_code, location, declared_at) "
        "SELECT 'Copie ' || id, commune_code, location, declared_at FROM resorption.sites "
        "WHERE departement_code = %s ORDER BY id LIMIT 3",
        (OTHER_AREA,),
    )
    assert number_matched(http, "sites") == total + 3
    _exact(db)
    db.execute("DELETE FROM resorption.sites WHERE name LIKE 'Copie %'")
    assert number_matched(http, "sites") == total
    _exact(db)
    # through the API: deleted by the national administrator
    url = f"/collections/sites/items/{created}"
    etag = http.get(url).headers["ETag"]
    assert http.delete(url, headers={"If-Match": etag}).status_code == 204
    assert number_matched(http, "sites") == total - 1
    _exact(db)


def test_a_count_with_a_condition_still_counts_the_rows(
    http: requests.Session, db: psycopg.Connection
) -> None:
    expected = db.execute(
        "SELECT count(*) FROM resorption.sites WHERE departement_code = %s", (AREA,)
    ).fetchone()[0]
    assert number_matched(http, "sites", {"departement_code": AREA}) == expected
    assert number_matched(http, "sites", {"bbox": "-0.7,44.7,-0.4,44.95"}) < expected


@pytest.mark.parametrize("scope", [None, "", AREA, f"{AREA},{OTHER_AREA}", "*"])
def test_the_counts_follow_the_read_scope(
    app_connection: psycopg.Connection, db: psycopg.Connection, scope: str | None
) -> None:
    """A reader sees the counts of the départements it reads, nothing without a scope."""
    app_connection.execute("SET ROLE resorption_read")
    if scope is not None:
        app_connection.execute("SELECT set_config('resorption.sites_scope', %s, false)", (scope,))
    seen = app_connection.execute("SELECT coalesce(sum(sites), 0) FROM resorption.site_counts").fetchone()[0]
    readable = {None: [], "": [], "*": None}.get(scope, (scope or "").split(","))
    rule = "" if readable is None else " WHERE departement_code = ANY(%s)"
    args = () if readable is None else (readable,)
    assert seen == db.execute(f"SELECT count(*) FROM resorption.sites{rule}", args).fetchone()[0]


def test_a_departement_user_never_gets_the_national_count(
    base_url: str, users: dict[str, TestUser], db: psycopg.Connection
) -> None:
    r = requests.get(
        f"{base_url}/collections/sites/items",
        params={"resulttype": "hits", "f": "json"},
        headers=users[f"operator-departement-{OTHER_AREA}"].headers,
        timeout=60,
    )
    expected = db.execute(
        "SELECT count(*) FROM resorption.sites WHERE departement_code = %s", (OTHER_AREA,)
    ).fetchone()[0]
    assert r.json()["numberMatched"] == expected


def test_the_application_roles_cannot_write_the_counts(app_connection: psycopg.Connection) -> None:
    app_connection.execute("SET ROLE resorption_write_finances_justice_owner")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_connection.execute("UPDATE resorption.site_counts SET sites = 0")


def test_two_writers_in_one_departement_never_wait_on_the_counts(database_url: str) -> None:
    """A creation in a département while another transaction (an import) has created sites
    there and not committed: the counts are appended, so nobody waits on them."""
    insert = (
        "INSERT INTO resorption.sites (name, commune_code, location, declared_at) "
        "SELECT 'Attente ' || %s, commune_code, location, declared_at FROM resorption.sites "
        "WHERE departement_code = %s ORDER BY id LIMIT 1"
    )
    with psycopg.connect(database_url) as importing, psycopg.connect(database_url) as creating:
        importing.execute(insert, ("import", AREA))  # left open
        creating.execute("SET lock_timeout = '1s'")
        creating.execute(insert, ("création", AREA))
        creating.commit()
        importing.rollback()
        creating.execute("DELETE FROM resorption.sites WHERE name LIKE 'Attente %'")
        creating.commit()
        _exact(creating)


def test_revision_0043_counts_the_sites_of_a_database_without_counts(scratch_url: str) -> None:
    """A database of 0042 (no site_counts, no triggers) gets them, filled from its sites."""
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0042")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for trigger in ("insert", "update", "delete"):
            conn.execute(f"DROP TRIGGER sites_count_{trigger} ON resorption.sites")
        conn.execute("DROP FUNCTION resorption.count_sites(), resorption.fold_site_counts()")
        conn.execute("DROP TABLE resorption.site_counts")
        # territories of its own: a scratch database has none loaded
        conn.execute("INSERT INTO resorption.regions (code, name) VALUES ('75', 'Nouvelle-Aquitaine')")
        conn.execute("INSERT INTO resorption.regions (code, name) VALUES ('11', 'Île-de-France')")
        conn.execute(
            "INSERT INTO resorption.departements (code, name, region_code) "
            "VALUES ('33', 'Gironde', '75'), ('93', 'Seine-Saint-Denis', '11')"
        )
        conn.execute(
            "INSERT INTO resorption.communes (code, name, departement_code) "
            "VALUES ('33063', 'Bordeaux', '33'), ('93066', 'Saint-Denis', '93')"
        )
        for commune in ("33063", "33063", "93066"):
            conn.execute(
                "INSERT INTO resorption.sites (name, commune_code, location, declared_at) "
                "VALUES ('Site', %s, ST_SetSRID(ST_MakePoint(2.35, 48.9), 4326), '2024-01-01')",
                (commune,),
            )
    upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute(COUNTS).fetchall() == conn.execute(TRUTH).fetchall() != []
        conn.execute("DELETE FROM resorption.sites")
        assert conn.execute(COUNTS).fetchall() == []
