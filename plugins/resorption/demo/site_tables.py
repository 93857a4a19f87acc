"""Writing the sites, then their closing solutions and reinstallation origins."""

import random
from collections import Counter
from datetime import date

import psycopg
from psycopg import sql
from rich.progress import Progress

from resorption import statements
from resorption.demo import bulk, draws
from resorption.demo.site_row import SITE_COLUMNS, site_row
from resorption.demo.sites import Site, draw_site, link_reinstallations
from resorption.demo.territory import Commune, Departement

SQL = statements.load("demo_site_tables")
OPEN_SHARE = 0.5625  # about 450 open sites out of 800


def write_sites(
    conn: psycopg.Connection,
    rng: random.Random,
    departements: dict[str, Departement],
    allocation: dict[str, Counter[Commune]],
    points: dict[str, list[tuple[float, float]]],
    as_of: date,
    progress: Progress,
) -> list[Site]:
    """Generate every site, département by département, and stream them through COPY."""
    total = sum(sum(c.values()) for c in allocation.values())
    ids = iter(bulk.reserve_ids(conn, "sites", total))
    # Exactly the usual share of open sites, shuffled: the head count of a
    # small demonstration then varies with the sizes drawn, not with luck.
    opened = round(total * OPEN_SHARE)
    is_open = [True] * opened + [False] * (total - opened)
    rng.shuffle(is_open)
    task = progress.add_task("Sites", total=total)
    generated: list[Site] = []
    copy_sql = SQL.copy_sites.format(sql.SQL(", ").join(map(sql.Identifier, SITE_COLUMNS)))
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for code in sorted(allocation):
            departement = departements[code]
            batch: list[Site] = []
            for commune, n in sorted(allocation[code].items(), key=lambda item: item[0].code):
                for x, y in points[commune.code][:n]:
                    number = len(generated) + len(batch) + 1
                    batch.append(
                        draw_site(
                            rng, next(ids), number, is_open[number - 1], departement, commune, x, y, as_of
                        )
                    )
            link_reinstallations(rng, batch)
            for done, site in enumerate(batch, start=1):
                row = site_row(rng, site, as_of)
                copy.write_row([row.get(column) for column in SITE_COLUMNS])
                if done % 1000 == 0:
                    progress.advance(task, 1000)
            progress.advance(task, len(batch) % 1000)
            generated.extend(batch)
    return generated


SOLUTIONS_AFTER_RESORPTION = (
    "social_housing",
    "transitional_housing",
    "integration_shelter",
    "private_housing",
    "eti",
)
SOLUTIONS_AFTER_EVICTION = ("emergency_shelter", "integration_shelter", "voluntary_return", "other")


def write_site_children(conn: psycopg.Connection, rng: random.Random, generated: list[Site]) -> None:
    """The solutions found when sites closed with solutions, and reinstallation origins."""
    solutions = []
    for site in generated:
        if site.closed_with_solutions != "yes" or site.total is None:
            continue
        kinds = SOLUTIONS_AFTER_RESORPTION if site.status == "resorbed" else SOLUTIONS_AFTER_EVICTION
        chosen = sorted(rng.sample(kinds, min(site.total, rng.randint(1, 3))))
        # At least one person per solution, never more people than lived there.
        housed = max(len(chosen), round(site.total * rng.uniform(0.3, 1.0)))
        for kind, people in zip(chosen, draws.split(rng, housed, [1] * len(chosen)), strict=True):
            households = min(people, round(people / rng.uniform(2.5, 5.0)))
            solutions.append((site.id, kind, people, households))
    bulk.copy_rows(conn, "site_closing_solutions", ("site_id", "solution", "people", "households"), solutions)
    origins = [(site.id, origin) for site in generated for origin in site.origins]
    bulk.copy_rows(conn, "site_reinstallation_origins", ("site_id", "origin_site_id"), origins)
