"""Where the sites are: how many in each département and commune, and points inside the communes."""

import math
import random
from collections import Counter, defaultdict

import psycopg
from rich.progress import Progress

from resorption import statements
from resorption.demo.territory import Commune, Departement

SQL = statements.load("demo_placement")

# Share of sites per département (per cent), after the Dihal's yearly
# inventories: Seine-Saint-Denis and the other Île-de-France départements
# first, then the Nord and the large metropolitan areas. The remaining share
# goes to the other départements in proportion to their population.
DEPARTEMENT_SHARES: dict[str, float] = {
    "93": 11.0,
    "59": 7.0,
    "13": 6.0,
    "33": 5.5,
    "44": 5.5,
    "31": 5.0,
    "69": 5.0,
    "94": 4.0,
    "91": 4.0,
    "34": 4.0,
    "95": 3.0,
    "77": 3.0,
    "38": 3.0,
    "75": 2.0,
    "06": 2.0,
    "67": 2.0,
    "35": 2.0,
    "78": 1.5,
    "92": 1.5,
    "83": 1.5,
    "30": 1.5,
    "973": 1.2,
    "976": 0.8,
}
TAIL_SHARE = 18.0


def allocate(
    rng: random.Random, departements: dict[str, Departement], sites: int
) -> dict[str, Counter[Commune]]:
    """How many sites each commune gets: départements by share, communes by population."""
    tail = [d for code, d in departements.items() if code not in DEPARTEMENT_SHARES]
    tail_population = sum(d.population for d in tail) or 1
    weights = {
        code: DEPARTEMENT_SHARES.get(code, TAIL_SHARE * d.population / tail_population)
        for code, d in departements.items()
    }
    drawn = _apportion(rng, weights, sites)
    allocation: dict[str, Counter[Commune]] = {}
    for code in departements:
        if drawn[code]:
            communes = departements[code].communes
            allocation[code] = Counter(rng.choices(communes, [c.weight for c in communes], k=drawn[code]))
    return allocation


def _apportion(rng: random.Random, weights: dict[str, float], total: int) -> Counter[str]:
    """`total` split in proportion to `weights`, the fractions rounded at random.

    Each key gets the whole part of its share; the units left go to keys drawn
    without replacement, weighted by their fractional parts (Efraimidis–Spirakis).
    Mayotte's handful of sites stays a handful, whatever the seed.
    """
    scale = total / sum(weights.values())
    shares = {key: weight * scale for key, weight in weights.items()}
    counts = Counter({key: math.floor(share) for key, share in shares.items()})
    fractions = {key: share - counts[key] for key, share in shares.items()}
    keyed = sorted(((rng.random() ** (1 / f), key) for key, f in fractions.items() if f > 0), reverse=True)
    for _, key in keyed[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def draw_points(
    conn: psycopg.Connection,
    rng: random.Random,
    allocation: dict[str, Counter[Commune]],
    progress: Progress,
) -> dict[str, list[tuple[float, float]]]:
    """Random points inside each commune, drawn by PostGIS in one query with explicit seeds."""
    task = progress.add_task("Points dans les communes", total=None)
    requests = [
        (commune.code, n, rng.randrange(1, 2**31 - 1))
        for code in sorted(allocation)
        for commune, n in sorted(allocation[code].items(), key=lambda item: item[0].code)
    ]
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with conn.cursor() as cur:
        cur.execute(SQL.stage_point_requests)
        with cur.copy(SQL.copy_point_requests) as copy:
            for request in requests:
                copy.write_row(request)
        for code, x, y in cur.execute(SQL.draw_points):
            points[code].append((x, y))
    for code, n, _ in requests:
        if len(points[code]) < n:
            raise RuntimeError(
                f"PostGIS n'a tiré que {len(points[code])} points sur {n} dans la commune {code}"
            )
        if len(points[code]) > n:
            points[code] = rng.sample(points[code], n)
    progress.update(task, total=1, completed=1)
    return points
