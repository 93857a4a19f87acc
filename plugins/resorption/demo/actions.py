"""Resorption actions on the fictional sites: their sites, organisations, finances and indicators."""

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import sql
from rich.progress import Progress

from resorption import statements
from resorption.demo import bulk, draws
from resorption.demo.dates import DAYS_30, PLATFORM_LAUNCH
from resorption.demo.organisations import Organisations
from resorption.demo.sites import Site
from resorption.demo.territory import Departement
from resorption.demo.words import AUTHOR, FUNDING_DETAILS, PREFIX, THEMES, de

SQL = statements.load("demo_actions")

ACTION_COLUMNS = (
    "id",
    "name",
    "reference",
    "started_at",
    "ended_at",
    "goals",
    "topics",
    "place_type",
    "departement_code",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
)
INDICATOR_COLUMNS = (
    "action_id",
    "measured_at",
    "people",
    "households",
    "women",
    "minors",
    "people_health_care",
    "people_work_contract",
    "people_shelter",
    "households_shelter",
    "people_housing",
    "households_housing",
    "minors_identified",
    "minors_mediation",
    "minors_school_start",
    "minors_nursery",
    "minors_primary",
    "minors_middle",
    "minors_high",
)


@dataclass(slots=True)
class ActionRows:
    """Rows of the action tables, gathered before they are streamed."""

    actions: list[tuple[Any, ...]] = field(default_factory=list)
    sites: list[tuple[int, int]] = field(default_factory=list)
    organisations: list[tuple[int, int, str]] = field(default_factory=list)
    departements: list[tuple[int, str]] = field(default_factory=list)
    finances: list[tuple[Any, ...]] = field(default_factory=list)
    indicators: list[tuple[Any, ...]] = field(default_factory=list)


def write_actions(
    conn: psycopg.Connection,
    rng: random.Random,
    generated: list[Site],
    orgs: Organisations,
    departements: dict[str, Departement],
    as_of: date,
    progress: Progress,
) -> None:
    """About one action per four open sites, each on 1 to 5 sites of one département."""
    by_departement: dict[str, list[Site]] = defaultdict(list)
    for site in generated:
        by_departement[site.departement.code].append(site)
    planned = {
        code: int(sum(s.status == "open" for s in members) / 4 + rng.random())
        for code, members in sorted(by_departement.items())
    }
    ids = iter(bulk.reserve_ids(conn, "actions", sum(planned.values())))
    task = progress.add_task("Actions", total=sum(planned.values()))
    rows = ActionRows()
    region_members: dict[str, list[str]] = defaultdict(list)
    for code, departement in departements.items():
        region_members[departement.region_code].append(code)
    number = 0
    for code, count in planned.items():
        members = by_departement[code]
        open_sites = [s for s in members if s.status == "open"]
        nearby: dict[str | tuple[int, int], list[Site]] = defaultdict(list)
        for site in members:
            nearby[site.commune.code].append(site)
            nearby[_cell(site)].append(site)
        for _ in range(count):
            number += 1
            action_id = next(ids)
            linked = _pick_sites(rng, open_sites or members, nearby)
            _action(rng, rows, action_id, number, linked, orgs, as_of)
            neighbours = [c for c in region_members[departements[code].region_code] if c != code]
            if neighbours and rng.random() < 0.05:
                rows.departements.append((action_id, rng.choice(sorted(neighbours))))
            progress.advance(task)
    conn.execute(SQL.stage_actions)
    conn.execute(SQL.stage_action_sites)
    bulk.copy_rows(conn, "demo_actions", ACTION_COLUMNS, rows.actions, schema=None)
    bulk.copy_rows(conn, "demo_action_sites", ("action_id", "site_id"), rows.sites, schema=None)
    conn.execute(
        SQL.insert_actions.format(
            columns=sql.SQL(", ").join(map(sql.Identifier, ACTION_COLUMNS)),
            staged=sql.SQL(", ").join(sql.Identifier("a", c) for c in ACTION_COLUMNS),
        )
    )
    conn.execute(SQL.insert_action_sites)
    bulk.copy_rows(conn, "action_departements", ("action_id", "departement_code"), rows.departements)
    bulk.copy_rows(conn, "action_organisations", ("action_id", "organisation_id", "role"), rows.organisations)
    bulk.copy_rows(
        conn,
        "action_finances",
        ("action_id", "year", "funding_type", "budget", "spent", "details"),
        rows.finances,
    )
    bulk.copy_rows(conn, "action_indicators", INDICATOR_COLUMNS, rows.indicators)


def _pick_sites(
    rng: random.Random,
    anchors: list[Site],
    nearby: dict[str | tuple[int, int], list[Site]],
) -> list[Site]:
    """One site and up to four more nearby: from its commune first, then its grid cell."""
    anchor = rng.choice(anchors)
    wanted = draws.weighted(rng, ((1, 40), (2, 25), (3, 15), (4, 10), (5, 10)))
    chosen = {anchor.id: anchor}
    for pool in (nearby[anchor.commune.code], nearby[_cell(anchor)]):
        # Sampling indices keeps this cheap in communes of thousands of sites.
        for index in rng.sample(range(len(pool)), min(len(pool), wanted + 1)):
            if len(chosen) >= wanted:
                break
            chosen.setdefault(pool[index].id, pool[index])
    return sorted(chosen.values(), key=lambda s: s.id)


def _cell(site: Site) -> tuple[int, int]:
    """A grid cell of about 8 by 11 km: an action does not span a whole département."""
    return math.floor(site.x * 10), math.floor(site.y * 10)


def _action(
    rng: random.Random,
    rows: ActionRows,
    action_id: int,
    number: int,
    linked: list[Site],
    orgs: Organisations,
    as_of: date,
) -> None:
    """One action with its sites, pilots and operators, yearly finances and indicators."""
    template, topics, places, goal = rng.choice(THEMES)
    anchor = linked[0]
    code = anchor.departement.code
    earliest = max(date(2019, 1, 1), min(s.declared_at for s in linked))
    latest = as_of - DAYS_30
    started_at = draws.day(rng, min(earliest, latest), latest)
    ended_at = None
    if rng.random() < 0.3:
        ended_at = draws.day(rng, min(started_at + timedelta(days=90), as_of), as_of)
    kept = [topics[0], *(t for t in topics[1:] if rng.random() < 0.5)]
    name = template.format(de=de(anchor.commune.name))
    goals = f"{goal} Sites suivis : {len(linked)}."
    created_day = min(as_of, max(started_at, PLATFORM_LAUNCH) + timedelta(rng.randint(0, 20)))
    created_at = draws.stamp(rng, created_day)
    updated_at = max(created_at, draws.stamp(rng, draws.day(rng, created_day, as_of)))
    rows.actions.append(
        (
            action_id,
            name,
            f"{PREFIX}A-{number:06d}",
            started_at,
            ended_at,
            goals,
            kept,
            rng.choice(places),
            code,
            created_at,
            AUTHOR,
            updated_at,
            AUTHOR,
        )
    )
    rows.sites.extend((action_id, site.id) for site in linked)
    pilots = {orgs.prefecture[code], orgs.ddets[code]}
    if rng.random() < 0.8:
        pilots = {rng.choice(sorted(pilots))}
    operators = {rng.choice(orgs.associations[code])}
    if rng.random() < 0.15:
        operators.add(rng.choice(orgs.national_associations))
    if rng.random() < 0.2:
        operators.add(rng.choice(orgs.associations[code]))
    rows.organisations.extend((action_id, o, "pilot") for o in sorted(pilots))
    rows.organisations.extend((action_id, o, "operator") for o in sorted(operators))
    end = ended_at or as_of
    _finances(rng, rows, action_id, started_at, end, as_of)
    _indicators(rng, rows, action_id, linked, started_at, end)


FUNDING_CHANCES = (
    ("dedicated_resorption", 0.75),
    ("state", 0.4),
    ("local_authority", 0.3),
    ("european", 0.1),
    ("private", 0.05),
    ("other", 0.05),
)


def _finances(
    rng: random.Random, rows: ActionRows, action_id: int, start: date, end: date, as_of: date
) -> None:
    """Budget and spending per year and funding type; the current year is not closed yet."""
    for year in range(start.year, end.year + 1):
        types = [t for t, chance in FUNDING_CHANCES if rng.random() < chance]
        for funding in types or ["dedicated_resorption"]:
            budget = rng.randrange(20, 1500) * 100
            if year < as_of.year:
                spent: int | None = round(budget * rng.uniform(0.6, 1.0))
            else:
                spent = round(budget * rng.uniform(0.1, 0.6)) if rng.random() < 0.5 else None
            rows.finances.append((action_id, year, funding, budget, spent, FUNDING_DETAILS[funding]))


def _indicators(
    rng: random.Random,
    rows: ActionRows,
    action_id: int,
    linked: list[Site],
    start: date,
    end: date,
) -> None:
    """Snapshots at each year end and at the last day, with results growing over time."""
    days = sorted(
        {d for y in range(start.year, end.year + 1) if start <= (d := date(y, 12, 31)) <= end} | {end}
    )
    people = sum(s.total or 0 for s in linked) or rng.randint(10, 60)
    minors = min(people, sum(s.minors or 0 for s in linked) or round(people * 0.35))
    women = min(people, sum(s.women or 0 for s in linked) or round(people * 0.3))
    households = max(1, min(people, sum(s.households or 0 for s in linked) or round(people / 4)))
    for step, day in enumerate(days, start=1):
        progress = step / len(days)
        shelter = round(people * progress * rng.uniform(0.0, 0.25))
        housing = round(people * progress * rng.uniform(0.0, 0.2))
        enrolled = round(minors * progress * rng.uniform(0.3, 0.8))
        nursery, primary, middle, high = draws.split(rng, enrolled, (2, 5, 3, 1))
        rows.indicators.append(
            (
                action_id,
                day,
                people,
                households,
                women,
                minors,
                round(people * progress * rng.uniform(0.3, 0.8)),
                round((people - minors) * progress * rng.uniform(0.0, 0.25)),
                shelter,
                min(households, round(shelter / 4)),
                housing,
                min(households, round(housing / 4)),
                minors,
                round(minors * rng.uniform(0.3, 0.9)),
                round(enrolled * rng.uniform(0.1, 0.4)),
                nursery,
                primary,
                middle,
                high,
            )
        )
