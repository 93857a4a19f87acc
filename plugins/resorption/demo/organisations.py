"""The demonstration organisations: préfectures, DDETS, associations and a few national bodies."""

import random
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pg_errors

from resorption import statements
from resorption.demo.sites import Site
from resorption.demo.words import ASSOCIATION_NAMES, NATIONAL_ORGANISATIONS, ORG_SUFFIX

SQL = statements.load("demo_organisations")


@dataclass(slots=True)
class Organisations:
    """Ids of the demonstration organisations, by role."""

    prefecture: dict[str, int] = field(default_factory=dict)
    ddets: dict[str, int] = field(default_factory=dict)
    associations: dict[str, list[int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    national_associations: list[int] = field(default_factory=list)


def write_organisations(conn: psycopg.Connection, rng: random.Random, generated: list[Site]) -> Organisations:
    """Each département's préfecture, DDETS and associations, and a few national bodies.

    Organisations are upserted by name rather than deleted and recreated: their
    ids stay the same from one run to the next, and users attached to them keep
    their organisation.
    """
    orgs = Organisations()
    sites_per_departement = Counter(site.departement.code for site in generated)
    departements = {site.departement.code: site.departement for site in generated}
    for code in sorted(departements):
        departement = departements[code]
        service = "DEETS" if departement.overseas else "DDETS"
        orgs.prefecture[code] = _upsert(
            conn, orgs, f"Préfecture {departement.de}", f"Préf. {code}", "state_service", code
        )
        orgs.ddets[code] = _upsert(
            conn, orgs, f"{service} {departement.de}", f"{service} {code}", "state_service", code
        )
        count = 3 if sites_per_departement[code] >= 20 else rng.randint(1, 2)
        orgs.associations[code] = [
            _upsert(conn, orgs, f"{prefix} {core} {departement.name}", None, "association", code)
            for prefix, core in rng.sample(ASSOCIATION_NAMES, count)
        ]
    for name, abbreviation, kind in NATIONAL_ORGANISATIONS:
        org_id = _upsert(conn, orgs, name, abbreviation, kind, None)
        if kind == "association":
            orgs.national_associations.append(org_id)
    # Demonstration organisations no longer drawn go, unless something else refers to them.
    try:
        with conn.transaction():
            conn.execute(SQL.delete_undrawn_organisations, ("%" + ORG_SUFFIX, sorted(orgs.names)))
    except pg_errors.ForeignKeyViolation:
        pass
    return orgs


def _upsert(
    conn: psycopg.Connection,
    orgs: Organisations,
    name: str,
    abbreviation: str | None,
    kind: str,
    departement: str | None,
) -> int:
    """Insert or update one demonstration organisation; its name says it is fictional."""
    full_name = name + ORG_SUFFIX
    row = conn.execute(
        SQL.upsert_organisation,
        {
            "name": full_name,
            "abbreviation": abbreviation,
            "kind": kind,
            "departement": departement,
        },
    ).fetchone()
    assert row is not None
    orgs.names[row[0]] = full_name
    return row[0]
