"""One run of the generator: every step in order, in one transaction, from one seeded draw."""

import random
from datetime import date

import psycopg
from rich.console import Console

from resorption.demo.actions import write_actions
from resorption.demo.dates import AS_OF
from resorption.demo.history import pause_history, resume_history, write_history
from resorption.demo.organisations import write_organisations
from resorption.demo.placement import allocate, draw_points
from resorption.demo.previous import delete_previous
from resorption.demo.report import count_rows, print_summary
from resorption.demo.site_tables import write_site_children, write_sites
from resorption.demo.territory import load_departements
from resorption.progress import progress_bars


def generate_demo(
    database_url: str,
    sites: int = 800,
    seed: int = 2019,
    console: Console | None = None,
    as_of: date = AS_OF,
) -> dict[str, int]:
    """Replace the demonstration data with `sites` fictional sites and their actions.

    Needs the territories (`load_territories`). Everything happens in one
    transaction. Returns the counts of demonstration rows now in the database:
    sites, open_sites, people_in_open_sites, minors_in_open_sites, actions and
    organisations.
    """
    if sites < 0:
        raise ValueError("sites must be zero or more")
    as_of = min(as_of, date.today())
    rng = random.Random(seed)
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        progress_bars(console) as progress,
    ):
        with conn.transaction():
            departements = load_departements(conn)
            pause_history(conn)
            delete_previous(conn)
            allocation = allocate(rng, departements, sites)
            points = draw_points(conn, rng, allocation, progress)
            generated = write_sites(conn, rng, departements, allocation, points, as_of, progress)
            organisations = write_organisations(conn, rng, generated)
            write_site_children(conn, rng, generated)
            write_actions(conn, rng, generated, organisations, departements, as_of, progress)
            write_history(conn, seed)
            resume_history(conn)
        counts = count_rows(conn)
    if console:
        print_summary(console, counts, seed, as_of)
    return counts
