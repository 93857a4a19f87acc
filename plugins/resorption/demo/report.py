"""What a run tells its console: progress while it works, then counts and a plain warning."""

from datetime import date

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from resorption.demo.words import ORG_SUFFIX, PREFIX

COUNTS = sql.SQL("""
    SELECT
        (SELECT count(*) FROM resorption.sites WHERE external_ref LIKE %(site)s),
        (SELECT count(*) FROM resorption.sites
         WHERE external_ref LIKE %(site)s AND status = 'open'),
        (SELECT coalesce(sum(population_total), 0) FROM resorption.sites
         WHERE external_ref LIKE %(site)s AND status = 'open'),
        (SELECT coalesce(sum(population_minors), 0) FROM resorption.sites
         WHERE external_ref LIKE %(site)s AND status = 'open'),
        (SELECT count(*) FROM resorption.actions WHERE reference LIKE %(site)s),
        (SELECT count(*) FROM resorption.organisations WHERE name LIKE %(org)s)
""")


def count_rows(conn: psycopg.Connection) -> dict[str, int]:
    """What the demonstration data now holds."""
    row = conn.execute(COUNTS, {"site": PREFIX + "%", "org": "%" + ORG_SUFFIX}).fetchone()
    assert row is not None
    keys = ("sites", "open_sites", "people_in_open_sites", "minors_in_open_sites", "actions", "organisations")
    return dict(zip(keys, map(int, row), strict=True))


def print_summary(console: Console, counts: dict[str, int], seed: int, as_of: date) -> None:
    """The counts in French, with a plain warning that the data is fictional."""
    table = Table(title=f"Données de démonstration au {as_of:%d/%m/%Y} (graine {seed})")
    table.add_column("Contenu")
    table.add_column("Nombre", justify="right")
    labels = {
        "sites": "Sites",
        "open_sites": "dont sites ouverts",
        "people_in_open_sites": "Personnes dans les sites ouverts",
        "minors_in_open_sites": "dont mineurs",
        "actions": "Actions",
        "organisations": "Organisations",
    }
    for key, label in labels.items():
        table.add_row(label, f"{counts[key]:,}".replace(",", "\u202f"))
    console.print(table)
    console.print(
        "[bold red]Ces données sont FICTIVES[/] : sites, personnes, propriétaires, procédures, "
        "actions et organisations sont inventés ; seuls les territoires sont réels. "
        f"Références « {PREFIX}… », organisations « …{ORG_SUFFIX} »."
    )
