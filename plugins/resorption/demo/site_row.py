"""Every column of a site's row, drawn consistent with the site and with the table's checks."""

import random
from datetime import date, timedelta
from typing import Any

from resorption.demo import draws
from resorption.demo.dates import DAYS_30, PLATFORM_LAUNCH
from resorption.demo.geometry import outline_ewkb, point_ewkb
from resorption.demo.sites import Site
from resorption.demo.words import (
    ACCESS_DETAILS,
    AUTHOR,
    BUILDING_KINDS,
    BUILDING_PLACES,
    CLOSING_CONTEXTS,
    LAND_KINDS,
    OVERSEAS_KINDS,
    OVERSEAS_STREET_NAMES,
    PRIVATE_OWNERS,
    PUBLIC_OWNERS,
    STREET_NAMES,
    STREET_TYPES,
    SURNAMES,
    de,
)

PHASES = (
    "phase_sociological_diagnosis_at",
    "phase_technical_diagnosis_at",
    "phase_social_assessment_at",
    "phase_political_validation_at",
    "phase_contract_preparation_at",
    "phase_land_development_at",
    "phase_family_information_at",
    "phase_contractualisation_at",
    "phase_official_opening_at",
)

# Every column of the sites table the generator fills, in COPY order.
SITE_COLUMNS = (
    "id",
    "name",
    "address",
    "access_details",
    "location",
    "outline",
    "commune_code",
    "external_ref",
    "field_type",
    "owner_type",
    "owner_name",
    "built_at",
    "declared_at",
    "status",
    "closed_at",
    "closed_with_solutions",
    "closing_context",
    "is_reinstallation",
    "reinstallation_details",
    "resorption_target",
    *PHASES,
    "population_total",
    "population_women",
    "population_households",
    "population_minors",
    "population_girls",
    "minors_0_3",
    "minors_3_6",
    "minors_6_12",
    "minors_12_16",
    "minors_16_18",
    "minors_in_school",
    "population_updated_at",
    "social_origins",
    "dwellings_caravans",
    "dwellings_huts",
    "dwellings_tents",
    "dwellings_cars",
    "dwellings_mattresses",
    "census_status",
    "census_at",
    "census_by",
    "water_access_type",
    "water_is_public",
    "water_is_continuous",
    "water_is_on_site",
    "water_is_close",
    "water_is_unequal",
    "sanitation_open_defecation",
    "sanitation_working_toilets",
    "sanitation_toilet_types",
    "sanitation_toilets_lit_lockable",
    "sanitation_hand_washing",
    "electricity_access",
    "electricity_types",
    "waste_piling",
    "waste_collection_point_close",
    "waste_regular_collection",
    "waste_bulky",
    "pests_present",
    "fire_prevention_diagnostic",
    "heatwave_alert",
    "owner_complaint",
    "justice_procedure",
    "justice_decision",
    "justice_decision_at",
    "justice_court",
    "justice_appeal",
    "police_assistance",
    "police_requested_at",
    "police_granted_at",
    "bailiff",
    "evacuation_order",
    "evacuation_order_at",
    "evacuation_order_notified_at",
    "evacuation_order_author",
    "insalubrity_order",
    "insalubrity_order_type",
    "insalubrity_order_at",
    "insalubrity_parcels",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "confirmed_at",
)
# Columns the database refuses as NULL: each generated row sets them.


def site_row(rng: random.Random, site: Site, as_of: date) -> dict[str, Any]:
    """Every column of one site, consistent with all the checks of the table."""
    end = site.closed_at or as_of
    row: dict[str, Any] = {
        "id": site.id,
        "external_ref": site.ref,
        "commune_code": site.commune.code,
        "location": point_ewkb(site.x, site.y),
        "field_type": site.field_type,
        "status": site.status,
        "declared_at": site.declared_at,
        "closed_at": site.closed_at,
    }
    _place(rng, site, row)
    _owner(rng, site, row, as_of)
    _life_cycle(rng, site, row, as_of)
    _population(rng, site, row, end)
    _census(rng, site, row, as_of)
    _living_conditions(rng, site, row)
    _justice(rng, site, row, end)
    _audit(rng, site, row, as_of)
    return row


def _place(rng: random.Random, site: Site, row: dict[str, Any]) -> None:
    """Name, address, access details and, for some sites, an outline."""
    street, street_in_name = rng.choice(STREET_TYPES)
    overseas = site.departement.overseas
    place = rng.choice(OVERSEAS_STREET_NAMES if overseas else STREET_NAMES)
    if overseas:
        kind = rng.choice(OVERSEAS_KINDS)
    elif site.field_type == "building":
        kind = rng.choice(BUILDING_KINDS)
    else:
        kind = rng.choice(LAND_KINDS)
    if site.field_type == "building" and rng.random() < 0.4:
        long_name = f"{rng.choice(BUILDING_PLACES)} {place}"
    else:
        long_name = f"{kind} {street_in_name} {place}"
    if rng.random() < 0.75:
        name = long_name if len(long_name) <= 35 else f"{kind} {place}"
        site.name = name if len(name) <= 35 else None
    row["name"] = site.name
    if rng.random() < 0.9:
        number = f"{rng.randint(1, 180)} " if rng.random() < 0.55 else ""
        address = f"{number}{street} {place}"
        row["address"] = address[0].upper() + address[1:]
    if rng.random() < 0.5:
        row["access_details"] = rng.choice(ACCESS_DETAILS)
    if rng.random() < 0.3:
        radius = rng.uniform(10, 25) if site.field_type == "building" else rng.uniform(20, 80)
        row["outline"] = outline_ewkb(rng, site.x, site.y, radius)


def _owner(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Owner type and name; private owners of sites closed over a year ago are anonymised."""
    owner_type = draws.weighted(rng, (("public", 45), ("private", 40), ("unknown", 15)))
    row["owner_type"] = owner_type
    if owner_type == "public" and rng.random() < 0.8:
        row["owner_name"] = rng.choice(PUBLIC_OWNERS).format(de=de(site.commune.name))
    elif owner_type == "private" and rng.random() < 0.7:
        name = rng.choice(PRIVATE_OWNERS).format(surname=rng.choice(SURNAMES))
        anonymised = site.closed_at is not None and (as_of - site.closed_at).days > 365
        row["owner_name"] = None if anonymised else name


def _life_cycle(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Building date, closing details, reinstallation and resorption phases."""
    if rng.random() < 0.55:
        row["built_at"] = site.declared_at - timedelta(days=rng.randrange(400))
    status = site.status
    if status == "other":
        row["closing_context"] = rng.choice(CLOSING_CONTEXTS)
    if status == "resorbed":
        site.closed_with_solutions = draws.weighted(rng, (("yes", 85), ("unknown", 15)))
    elif status == "unknown":
        site.closed_with_solutions = rng.choice(("unknown", None))
    elif status != "open":
        site.closed_with_solutions = draws.weighted(rng, (("yes", 35), ("no", 40), ("unknown", 25)))
    row["closed_with_solutions"] = site.closed_with_solutions
    if site.origins:
        row["is_reinstallation"] = True
        row["reinstallation_details"] = "Familles venues d'un site fermé peu avant dans le même département"
    elif rng.random() < 0.7:
        row["is_reinstallation"] = False
    # The 2018 instruction set the resorption goal; phases follow in their natural order.
    phases = 0
    if status == "open" and rng.random() < 0.3:
        row["resorption_target"] = as_of.year + rng.randint(0, 3)
        phases = rng.randint(0, len(PHASES))
    elif status == "resorbed":
        assert site.closed_at is not None
        row["resorption_target"] = site.closed_at.year
        phases = len(PHASES) if rng.random() < 0.7 else rng.randint(4, len(PHASES))
    if phases:
        start = max(site.declared_at, date(2018, 1, 25))
        end = site.closed_at or as_of
        days = sorted(draws.day(rng, start, end) for _ in range(phases))
        row.update(zip(PHASES, days, strict=False))


def _population(rng: random.Random, site: Site, row: dict[str, Any], end: date) -> None:
    """Counts of people, households, women and minors, origins and dwellings."""
    overseas = site.departement.overseas
    if overseas:
        origins = draws.weighted(
            rng, ((("other",), 45), (("french", "other"), 40), (("french",), 10), ((), 5))
        )
    else:
        origins = draws.weighted(
            rng,
            (
                (("european",), 72),
                (("french", "european"), 8),
                (("french",), 5),
                (("other",), 6),
                (("european", "other"), 5),
                ((), 4),
            ),
        )
    row["social_origins"] = list(origins)
    total, minors, households = site.total, site.minors, site.households
    if total is None or minors is None or households is None:
        return
    row.update(
        population_total=total,
        population_women=site.women,
        population_households=households,
        population_minors=minors,
        population_girls=round(minors * rng.uniform(0.4, 0.6)),
        population_updated_at=draws.day(rng, site.declared_at, end),
    )
    if rng.random() < 0.55:
        brackets = ("minors_0_3", "minors_3_6", "minors_6_12", "minors_12_16", "minors_16_18")
        row.update(zip(brackets, draws.split(rng, minors, (3, 3, 6, 4, 2)), strict=True))
    if rng.random() < 0.6:
        row["minors_in_school"] = round(minors * rng.uniform(0.55, 0.75) * rng.uniform(0.2, 0.9))
    if rng.random() < 0.35:
        return
    dwellings = dict.fromkeys(("caravans", "huts", "tents", "cars", "mattresses"), 0)
    if site.field_type == "building":
        dwellings["mattresses"] = round(total * rng.uniform(0.4, 0.9))
    elif overseas:
        dwellings["huts"] = max(1, round(households * rng.uniform(0.8, 1.2)))
    else:
        dwellings["huts"] = round(households * rng.uniform(0.3, 1.0))
        dwellings["caravans"] = round(households * rng.uniform(0.0, 0.6))
        dwellings["tents"] = round(households * rng.uniform(0.0, 0.2))
        dwellings["cars"] = round(households * rng.uniform(0.0, 0.3))
    row.update({f"dwellings_{k}": v for k, v in dwellings.items()})


def _census(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Census status, date and author."""
    if site.status == "open":
        status = draws.weighted(rng, (("none", 50), ("scheduled", 15), ("done", 35)))
    else:
        status = draws.weighted(rng, (("none", 60), ("done", 40)))
    row["census_status"] = status
    if status == "done":
        row["census_at"] = draws.day(rng, site.declared_at, site.closed_at or as_of)
    elif status == "scheduled":
        row["census_at"] = as_of + timedelta(days=rng.randint(7, 90))
    if status != "none":
        service = "DEETS" if site.departement.overseas else "DDETS"
        row["census_by"] = rng.choice(
            (
                f"{service} {site.departement.de}",
                "Association opératrice",
                "Centre communal d'action sociale",
                "Équipe de médiation sanitaire",
            )
        )


def _living_conditions(rng: random.Random, site: Site, row: dict[str, Any]) -> None:
    """Water, sanitation, electricity, waste, pests, fire and heat: the answers of a visit."""
    building = site.field_type == "building"
    water = draws.weighted(
        rng,
        (
            ("public_fountain", 14),
            ("fire_hydrant", 14),
            ("bought_bottles", 10),
            ("tank", 8),
            ("network_tap", 30 if building else 16),
            ("other", 5),
            ("unknown", 25),
        ),
    )
    row["water_access_type"] = water
    if water != "unknown":
        row.update(
            water_is_public=water in ("public_fountain", "fire_hydrant"),
            water_is_continuous=draws.maybe(rng, 0.9, 0.5),
            water_is_on_site=water in ("network_tap", "tank") or rng.random() < 0.1,
            water_is_close=draws.maybe(rng, 0.9, 0.6),
            water_is_unequal=draws.maybe(rng, 0.8, 0.4),
        )
    row["sanitation_toilet_types"] = []
    if rng.random() < 0.7:
        working = rng.random() < 0.45
        row.update(
            sanitation_open_defecation=rng.random() < (0.25 if working else 0.75),
            sanitation_working_toilets=working,
            sanitation_toilets_lit_lockable=draws.maybe(rng, 0.7, 0.3) if working else None,
            sanitation_hand_washing=draws.maybe(rng, 0.8, 0.35),
        )
        if working:
            kinds = ("flush", "chemical") if building else ("chemical", "dry", "latrines")
            row["sanitation_toilet_types"] = sorted(
                rng.sample(kinds, rng.randint(1, 2)), key=TOILET_ORDER.index
            )
    row["electricity_types"] = []
    if rng.random() < 0.75:
        access = rng.random() < (0.8 if building else 0.5)
        row["electricity_access"] = access
        if access:
            row["electricity_types"] = (
                ["building_installation"] if building else [rng.choice(("generator", "grid"))]
            )
    if rng.random() < 0.75:
        row.update(
            waste_piling=rng.random() < 0.6,
            waste_collection_point_close=rng.random() < 0.5,
            waste_regular_collection=rng.random() < 0.4,
            waste_bulky=rng.random() < 0.55,
        )
    row["pests_present"] = draws.maybe(rng, 0.7, 0.6)
    row["fire_prevention_diagnostic"] = draws.maybe(rng, 0.6, 0.3)
    row["heatwave_alert"] = draws.maybe(rng, 0.5, 0.3)


TOILET_ORDER = ("latrines", "chemical", "dry", "flush")


def _justice(rng: random.Random, site: Site, row: dict[str, Any], end: date) -> None:
    """Complaint, court decision, police assistance and administrative orders, in date order."""
    status = site.status
    evicted = status in ("closed_by_pref_admin", "closed_by_city_admin")
    if status == "closed_by_justice" or rng.random() < (0.35 if status == "open" else 0.2):
        private = row["owner_type"] == "private"
        row["owner_complaint"] = rng.random() < (0.8 if private else 0.5)
        procedure = status == "closed_by_justice" or rng.random() < 0.6
        row["justice_procedure"] = procedure
        if procedure:
            decided = status == "closed_by_justice" or rng.random() < 0.5
            row["justice_decision"] = decided
            if decided:
                _decision(rng, site, row, end, private)
    if evicted or (status == "open" and rng.random() < 0.05):
        order_at = draws.day(rng, site.declared_at, end)
        row.update(
            evacuation_order=True,
            evacuation_order_at=order_at,
            evacuation_order_notified_at=draws.day(rng, order_at, min(end, order_at + DAYS_30)),
            evacuation_order_author=(
                f"Maire {de(site.commune.name)}"
                if status == "closed_by_city_admin"
                else f"Préfet {site.departement.de}"
            ),
        )
    elif rng.random() < 0.3:
        row["evacuation_order"] = False
    if rng.random() < (0.12 if site.field_type == "building" else 0.04):
        row.update(
            insalubrity_order=True,
            insalubrity_order_type=draws.weighted(
                rng,
                (("arrete_insalubrite", 40), ("arrete_peril", 30), ("mise_en_demeure", 20), ("other", 10)),
            ),
            insalubrity_order_at=draws.day(rng, site.declared_at, end),
            insalubrity_parcels=", ".join(
                f"{rng.choice('ABCDEHKL')}{rng.choice('ABCDEHKL')} {rng.randint(1, 999)}"
                for _ in range(rng.randint(1, 3))
            ),
        )


def _decision(rng: random.Random, site: Site, row: dict[str, Any], end: date, private: bool) -> None:
    """A court decision, then perhaps police assistance requested and granted after it."""
    decided_at = draws.day(rng, min(site.declared_at + DAYS_30, end), end)
    court = (
        "Tribunal judiciaire" if private else rng.choice(("Tribunal judiciaire", "Tribunal administratif"))
    )
    row.update(
        justice_decision_at=decided_at,
        justice_court=f"{court} {de(site.departement.seat)}",
        justice_appeal=rng.random() < 0.15,
    )
    if site.status == "closed_by_justice":
        police = draws.weighted(rng, (("granted", 70), ("requested", 30)))
    else:
        police = draws.weighted(rng, (("none", 50), ("requested", 35), ("granted", 15)))
    row["police_assistance"] = police
    if police != "none":
        requested = draws.day(rng, decided_at, end)
        row["police_requested_at"] = requested
        if police == "granted":
            row["police_granted_at"] = draws.day(rng, requested, end)
    if rng.random() < 0.6:
        row["bailiff"] = f"Maître {rng.choice(SURNAMES)}, commissaire de justice"


def _audit(rng: random.Random, site: Site, row: dict[str, Any], as_of: date) -> None:
    """Who created and last changed the record, and when."""
    # Sites older than the platform were entered during its first months.
    if site.declared_at >= PLATFORM_LAUNCH:
        created_day = min(as_of, site.declared_at + timedelta(days=rng.randint(0, 10)))
    else:
        created_day = draws.day(rng, PLATFORM_LAUNCH, min(as_of, PLATFORM_LAUNCH + timedelta(180)))
    created_at = draws.stamp(rng, created_day)
    events = [row.get(k) for k in ("population_updated_at", "closed_at", "census_at")]
    last = max([d for d in events if d is not None and d <= as_of], default=created_day)
    updated_at = max(created_at, draws.stamp(rng, max(last, created_day)))
    row.update(created_at=created_at, created_by=AUTHOR, updated_at=updated_at, updated_by=AUTHOR)
    if site.status == "open" and rng.random() < 0.4:
        confirmed = draws.day(rng, max(updated_at.date(), as_of - timedelta(days=180)), as_of)
        row["confirmed_at"] = max(updated_at, draws.stamp(rng, confirmed))
