"""A fictional site as the later steps see it: life cycle, kind, size and reinstallations."""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from resorption.demo import draws
from resorption.demo.dates import FIRST_CLOSING
from resorption.demo.territory import Commune, Departement
from resorption.demo.words import PREFIX

# How closed sites ended, with weights.
CLOSED_STATUSES = (
    ("resorbed", 14),
    ("closed_by_justice", 34),
    ("closed_by_pref_admin", 20),
    ("closed_by_city_admin", 10),
    ("other", 10),
    ("unknown", 12),
)

# Size of a settlement: log-normal (median, sigma) and bounds, per kind of département.
SIZES: dict[str, tuple[float, float, int, int]] = {
    "976": (450.0, 0.6, 120, 2500),  # Mayotte: shanty neighbourhoods of hundreds
    "973": (130.0, 0.7, 25, 900),  # French Guiana: large informal settlements
    "overseas": (40.0, 0.8, 5, 400),
    "metropole": (25.0, 1.0, 2, 400),
}


@dataclass(slots=True)
class Site:
    """What later steps (actions, solutions, reinstallations) need to know of a site."""

    id: int
    ref: str
    departement: Departement
    commune: Commune
    x: float
    y: float
    status: str
    declared_at: date
    closed_at: date | None
    field_type: str
    total: int | None
    households: int | None
    women: int | None
    minors: int | None
    name: str | None = None
    closed_with_solutions: str | None = None
    origins: list[int] = field(default_factory=list)


def draw_site(
    rng: random.Random,
    site_id: int,
    number: int,
    is_open: bool,
    departement: Departement,
    commune: Commune,
    x: float,
    y: float,
    as_of: date,
) -> Site:
    """The life cycle, kind and population of one site: what the rest depends on."""
    if is_open:
        status, closed_at = "open", None
        # Most open sites appeared in the last few years; a few have lasted a decade.
        declared_at = as_of - timedelta(days=min(int(rng.expovariate(1 / 900)), 15 * 365))
    else:
        status = draws.weighted(rng, CLOSED_STATUSES)
        closed_at = draws.day(rng, FIRST_CLOSING, as_of)
        lifetime = 7 + min(int(rng.expovariate(1 / 540)), 12 * 365)
        declared_at = closed_at - timedelta(days=lifetime)
    if departement.overseas:
        field_type = draws.weighted(rng, (("land", 92), ("building", 3), ("unknown", 5)))
    else:
        field_type = draws.weighted(rng, (("land", 64), ("building", 26), ("unknown", 10)))
    site = Site(
        id=site_id,
        ref=f"{PREFIX}{number:07d}",
        departement=departement,
        commune=commune,
        x=x,
        y=y,
        status=status,
        declared_at=declared_at,
        closed_at=closed_at,
        field_type=field_type,
        total=None,
        households=None,
        women=None,
        minors=None,
    )
    if rng.random() < 0.96:  # a few sites were never counted
        median, sigma, low, high = SIZES.get(
            departement.code, SIZES["overseas" if departement.overseas else "metropole"]
        )
        total = max(low, min(high, round(median * math.exp(rng.gauss(0.0, sigma)))))
        share = rng.uniform(0.38, 0.55) if departement.overseas else rng.uniform(0.22, 0.45)
        site.total = total
        site.minors = min(total, round(total * share))
        site.women = round((total - site.minors) * rng.uniform(0.42, 0.55))
        site.households = max(1, min(total, round(total / rng.uniform(3.0, 5.0))))
    return site


def link_reinstallations(rng: random.Random, batch: list[Site]) -> None:
    """Mark a few sites as reinstallations of sites of the same département closed before."""
    closed = sorted((s for s in batch if s.closed_at), key=lambda s: (s.closed_at, s.id))
    closing_days = [s.closed_at for s in closed]
    for site in batch:
        if rng.random() >= 0.06:
            continue
        # The families came from a site closed at most a few months earlier.
        before = _bisect_right(closing_days, site.declared_at)
        recent = [
            s
            for s in closed[max(0, before - 8) : before]
            if s.id != site.id and s.declared_at <= site.declared_at
        ]
        if recent:
            count = 1 if rng.random() < 0.8 or len(recent) == 1 else 2
            site.origins = sorted(o.id for o in rng.sample(recent, count))


def _bisect_right(days: Sequence[date | None], day: date) -> int:
    """How many of the sorted `days` fall on or before `day`."""
    low, high = 0, len(days)
    while low < high:
        middle = (low + high) // 2
        current = days[middle]
        if current is not None and current <= day:
            low = middle + 1
        else:
            high = middle
    return low
