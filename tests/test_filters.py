"""CQL2 filters (text and JSON), each checked against the same condition run in PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest
import requests

# (CQL2 text, equivalent SQL over resorption.sites)
TEXT_CASES = [
    ("status = 'open'", "status = 'open'"),
    ("status <> 'open'", "status <> 'open'"),
    ("population_total > 100", "population_total > 100"),
    (
        "population_total >= 20 AND population_minors < 10",
        "population_total >= 20 AND population_minors < 10",
    ),
    ("status = 'open' OR population_total <= 10", "status = 'open' OR population_total <= 10"),
    ("NOT (status = 'open')", "NOT (status = 'open')"),
    ("status IN ('closed_by_justice', 'resorbed')", "status IN ('closed_by_justice', 'resorbed')"),
    ("status NOT IN ('open')", "status NOT IN ('open')"),
    ("name LIKE 'Camp%'", "name LIKE 'Camp%'"),
    ("CASEI(name) LIKE CASEI('%CHEMIN%')", "lower(name) LIKE lower('%CHEMIN%')"),
    (
        "ACCENTI(CASEI(commune_name)) = ACCENTI(CASEI('Bègles'))",
        "commune_code IN (SELECT code FROM resorption.communes WHERE unaccent(lower(name)) = 'begles')",
    ),
    ("population_total BETWEEN 10 AND 50", "population_total BETWEEN 10 AND 50"),
    ("population_total NOT BETWEEN 10 AND 50", "NOT (population_total BETWEEN 10 AND 50)"),
    ("closed_at IS NULL", "closed_at IS NULL"),
    ("closed_at IS NOT NULL", "closed_at IS NOT NULL"),
    ("declared_at > DATE('2021-06-01')", "declared_at > DATE '2021-06-01'"),
    ("declared_at >= '2021-06-01'", "declared_at >= DATE '2021-06-01'"),
    ("T_BEFORE(declared_at, DATE('2020-01-01'))", "declared_at < DATE '2020-01-01'"),
    (
        "T_AFTER(declared_at, TIMESTAMP('2023-01-01T00:00:00Z'))",
        "declared_at > TIMESTAMPTZ '2023-01-01T00:00:00Z'",
    ),
    (
        "T_DURING(declared_at, INTERVAL('2020-01-01', '2021-01-01'))",
        "declared_at > DATE '2020-01-01' AND declared_at < DATE '2021-01-01'",
    ),
    ("T_INTERSECTS(closed_at, INTERVAL('2022-01-01', '..'))", "closed_at >= DATE '2022-01-01'"),
    ("water_is_on_site = TRUE", "water_is_on_site"),
    ("electricity_access = false", "NOT electricity_access"),
    ("A_CONTAINS(social_origins, ('european'))", "'european' = ANY(social_origins)"),
    ("A_OVERLAPS(social_origins, ('french', 'other'))", "social_origins && '{french,other}'"),
    ("A_CONTAINEDBY(social_origins, ('european'))", "social_origins <@ '{european}'"),
    ("population_minors * 2 > population_total", "population_minors * 2 > population_total"),
    (
        "S_INTERSECTS(geometry, BBOX(-1.3, 44.2, 0.35, 45.6))",
        "ST_Intersects(location, ST_MakeEnvelope(-1.3, 44.2, 0.35, 45.6, 4326))",
    ),
    (
        "S_WITHIN(location, POLYGON((2.2 48.8, 2.5 48.8, 2.5 49.0, 2.2 49.0, 2.2 48.8)))",
        "ST_Within(location, ST_GeomFromText('POLYGON((2.2 48.8, 2.5 48.8, 2.5 49.0, 2.2 49.0, 2.2 48.8))', 4326))",
    ),
    (
        "S_DISJOINT(geometry, BBOX(-5, 41, 10, 52))",
        "ST_Disjoint(location, ST_MakeEnvelope(-5, 41, 10, 52, 4326))",
    ),
    (
        "departement_code = '976' AND population_total > 50",
        "departement_code = '976' AND population_total > 50",
    ),
]


def matched(http: requests.Session, **params: str) -> requests.Response:
    return http.get("/collections/sites/items", params={"resulttype": "hits", **params})


def expected(db: psycopg.Connection, condition: str) -> int:
    return db.execute(f"SELECT count(*) FROM resorption.sites WHERE {condition}").fetchone()[0]


@pytest.mark.parametrize(("cql", "condition"), TEXT_CASES)
def test_cql2_text(http: requests.Session, db: psycopg.Connection, cql: str, condition: str) -> None:
    r = matched(http, filter=cql)
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == expected(db, condition)


def test_every_text_case_selects_something_and_not_everything(db: psycopg.Connection) -> None:
    """The cases above would prove little if a condition matched all rows or none."""
    total = expected(db, "TRUE")
    for _, condition in TEXT_CASES:
        n = expected(db, condition)
        assert 0 < n < total, condition


@pytest.mark.parametrize(
    ("tree", "condition"),
    [
        ({"op": "=", "args": [{"property": "status"}, "open"]}, "status = 'open'"),
        (
            {
                "op": "and",
                "args": [
                    {"op": ">", "args": [{"property": "population_total"}, 30]},
                    {"op": "not", "args": [{"op": "isNull", "args": [{"property": "name"}]}]},
                ],
            },
            "population_total > 30 AND name IS NOT NULL",
        ),
        (
            {"op": "between", "args": [{"property": "population_total"}, 10, 50]},
            "population_total BETWEEN 10 AND 50",
        ),
        (
            {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [-1.3, 44.2, 0.35, 45.6]}]},
            "ST_Intersects(location, ST_MakeEnvelope(-1.3, 44.2, 0.35, 45.6, 4326))",
        ),
        (
            {"op": "t_after", "args": [{"property": "declared_at"}, {"date": "2022-03-01"}]},
            "declared_at > DATE '2022-03-01'",
        ),
        (
            {"op": "in", "args": [{"property": "field_type"}, ["land", "building"]]},
            "field_type IN ('land', 'building')",
        ),
        (
            {"op": "a_contains", "args": [{"property": "social_origins"}, ["european"]]},
            "'european' = ANY(social_origins)",
        ),
    ],
)
def test_cql2_json(http: requests.Session, db: psycopg.Connection, tree: dict, condition: str) -> None:
    r = matched(http, filter=json.dumps(tree), **{"filter-lang": "cql2-json"})
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == expected(db, condition)


def test_filter_crs_lambert93(http: requests.Session, db: psycopg.Connection) -> None:
    box = "BBOX(350000, 6400000, 480000, 6500000)"
    r = matched(
        http,
        filter=f"S_INTERSECTS(geometry, {box})",
        **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/2154"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == expected(
        db,
        "ST_Intersects(ST_Transform(location, 2154), ST_MakeEnvelope(350000, 6400000, 480000, 6500000, 2154))",
    )


def test_filter_combines_with_bbox_q_and_paging(http: requests.Session, db: psycopg.Connection) -> None:
    params = {"filter": "population_total > 15", "bbox": "-5,41,10,52", "limit": 7}
    first = http.get("/collections/sites/items", params=params).json()
    n = expected(
        db, "population_total > 15 AND ST_Intersects(location, ST_MakeEnvelope(-5, 41, 10, 52, 4326))"
    )
    assert first["numberMatched"] == n
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert "filter=population_total" in nxt and "bbox=" in nxt
    second = http.get(nxt).json()
    assert not {f["id"] for f in first["features"]} & {f["id"] for f in second["features"]}


def test_filter_values_are_parameters_not_sql(http: requests.Session, db: psycopg.Connection) -> None:
    """Injection attempts are plain values: no error, no rows, tables intact."""
    for value in ["' OR 1=1 --", "x'); DROP TABLE resorption.sites; --", "%' OR ''='"]:
        quoted = value.replace("'", "''")
        r = matched(http, filter=f"name = '{quoted}'")
        assert r.status_code == 200, r.text
        assert r.json()["numberMatched"] == 0
    assert expected(db, "TRUE") > 0


def test_array_of_ids_filters_actions_by_linked_site(http: requests.Session, db: psycopg.Connection) -> None:
    """site_ids is a bigint[]: A_CONTAINS with a site id finds the actions of that site."""
    site_id, expected = db.execute(
        "SELECT site_id, array_agg(action_id ORDER BY action_id) FROM resorption.action_sites"
        " GROUP BY site_id ORDER BY count(*) DESC, site_id LIMIT 1"
    ).fetchone()
    r = http.get("/collections/actions/items", params={"filter": f"A_CONTAINS(site_ids, ({site_id}))"})
    assert r.status_code == 200, r.text
    assert sorted(f["id"] for f in r.json()["features"]) == expected
    r = http.get("/collections/actions/items", params={"filter": "A_CONTAINS(site_ids, (1.5))"})
    assert r.status_code == 400
    assert "entiers" in r.json()["description"]


# -- S_DWITHIN: a distance on the ellipsoid, in metres ------------------------------------


def _a_site(db: psycopg.Connection, departement: str = "33") -> tuple[float, float]:
    return db.execute(
        "SELECT ST_X(location), ST_Y(location) FROM resorption.sites WHERE departement_code = %s"
        " ORDER BY id LIMIT 1",
        (departement,),
    ).fetchone()


def _within(db: psycopg.Connection, lon: float, lat: float, metres: float) -> str:
    return (
        f"ST_DWithin(location::geography, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)::geography, {metres})"
    )


@pytest.mark.parametrize(
    ("template", "metres"),
    [
        ("S_DWITHIN(geometry, POINT({lon} {lat}), 200, 'meters')", 200),
        ("S_DWITHIN(location, POINT({lon} {lat}), 5000, meters)", 5000),
        ("DWITHIN(geometry, POINT({lon} {lat}), 3, 'km')", 3000),
        ("S_DWITHIN(POINT({lon} {lat}), geometry, 12.5, 'kilometres')", 12500),
        ("S_DWITHIN(geometry, POINT({lon} {lat}), 800)", 800),
    ],
)
def test_s_dwithin_text(http: requests.Session, db: psycopg.Connection, template: str, metres: float) -> None:
    lon, lat = _a_site(db)
    r = matched(http, filter=template.format(lon=lon, lat=lat))
    assert r.status_code == 200, r.text
    n = r.json()["numberMatched"]
    assert n == expected(db, _within(db, lon, lat, metres))
    assert n >= 1  # the site itself


def test_s_dwithin_json_and_lambert93(http: requests.Session, db: psycopg.Connection) -> None:
    lon, lat = _a_site(db)
    tree = {
        "op": "s_dwithin",
        "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [lon, lat]}, 2000, "meters"],
    }
    r = matched(http, filter=json.dumps(tree), **{"filter-lang": "cql2-json"})
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == expected(db, _within(db, lon, lat, 2000))
    x, y = db.execute(
        "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 2154) p",
        (lon, lat),
    ).fetchone()
    r = matched(
        http,
        filter=f"S_DWITHIN(geometry, POINT({x} {y}), 2, 'km')",
        **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/2154"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == expected(db, _within(db, lon, lat, 2000))


def test_s_dwithin_is_exact_beyond_the_index_box(http: requests.Session, db: psycopg.Connection) -> None:
    """The box that lets the index choose never drops a site the exact distance keeps: far north
    (Dunkerque) a degree of longitude is short, and distances of 0 m find the site itself."""
    for lon, lat in ((2.377, 51.034), (-0.5792, 44.8378), (55.45, -20.88)):
        for metres in (1000, 50_000):
            r = matched(http, filter=f"S_DWITHIN(geometry, POINT({lon} {lat}), {metres}, 'm')")
            assert r.status_code == 200, r.text
            assert r.json()["numberMatched"] == expected(db, _within(db, lon, lat, metres))
    lon, lat = _a_site(db)
    r = matched(http, filter=f"S_DWITHIN(geometry, POINT({lon} {lat}), 0, 'meters')")
    assert r.json()["numberMatched"] >= 1


@pytest.mark.parametrize(
    ("cql", "words"),
    [
        ("S_DWITHIN(geometry, POINT(-0.57 44.84), 200, 'furlongs')", ["furlongs", "meters"]),
        ("S_DWITHIN(geometry, POINT(-0.57 44.84), 'loin', 'meters')", ["distance numérique"]),
        ("S_DWITHIN(geometry, POINT(-0.57 44.84), -5, 'meters')", ["entre 0 et"]),
        ("S_DWITHIN(geometry, POINT(-0.57 44.84), 5000, 'km')", ["entre 0 et 1000 km"]),
        ("S_DWITHIN(geometry, POINT(-0.57 44.84))", ["3 ou 4 arguments"]),
        ("S_DWITHIN(population_total, POINT(-0.57 44.84), 200, 'meters')", ["géométries"]),
        ("S_DWITHIN(owner_name, POINT(-0.57 44.84), 200, 'meters')", ["n'existe pas"]),
    ],
)
def test_s_dwithin_refusals_are_french(base_url: str, users: dict, cql: str, words: list[str]) -> None:
    operator = users["operator-departement-33"]
    r = requests.get(
        f"{base_url}/collections/sites/items",
        params={"filter": cql, "resulttype": "hits"},
        headers=operator.headers,
        timeout=60,
    )
    assert r.status_code == 400, r.text
    for word in words:
        assert word in r.json()["description"], r.json()["description"]


def test_s_dwithin_sees_only_the_callers_sites(base_url: str, users: dict, db: psycopg.Connection) -> None:
    """Around a site of Seine-Saint-Denis, a Gironde operator finds nothing (hits and items
    alike), an operator of the 93 finds what the database holds; anonymous is refused."""
    lon, lat = _a_site(db, "93")
    cql = f"S_DWITHIN(geometry, POINT({lon} {lat}), 3, 'km')"
    total = expected(db, _within(db, lon, lat, 3000) + " AND departement_code = '93'")
    assert 1 <= total < expected(db, _within(db, lon, lat, 3000)), "Paris is within 3 km too"
    for username, count in (("operator-departement-33", 0), ("operator-departement-93", total)):
        headers = users[username].headers
        hits = requests.get(
            f"{base_url}/collections/sites/items",
            params={"filter": cql, "resulttype": "hits"},
            headers=headers,
            timeout=60,
        ).json()
        items = requests.get(
            f"{base_url}/collections/sites/items",
            params={"filter": cql, "limit": 1000},
            headers=headers,
            timeout=60,
        ).json()
        assert hits["numberMatched"] == count == len(items["features"])
    assert requests.get(
        f"{base_url}/collections/sites/items", params={"filter": cql}, timeout=60
    ).status_code in (401, 403)


def test_functions_lists_s_dwithin(anonymous: requests.Session) -> None:
    """OGC API Features Part 3: the functions a filter may call beyond the standard ones."""
    r = anonymous.get("/functions")
    assert r.status_code == 200
    (dwithin,) = [f for f in r.json()["functions"] if f["name"] == "S_DWITHIN"]
    assert dwithin["returns"] == ["boolean"]
    assert [a["type"] for a in dwithin["arguments"]] == [["geometry"], ["geometry"], ["number"], ["string"]]
    assert "ellipsoïde" in dwithin["description"]
