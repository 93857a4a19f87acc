"""What a run tells its console: progress while it works, then counts and a plain warning."""

from datetime import date

import psycopg
from rich.console import Console
from rich.table import Table

from resorption import statements
from resorption.demo.words import ORG_SUFFIX, PREFIX

SQL = statements.load("demo_report")


def count_rows(conn: psycopg.Connection) -> dict[str, int]:
    """What the demonstration data now holds."""
    row = conn.execute(SQL.count_rows, {"site": PREFIX + "%", "org": "%" + ORG_SUFFIX}).fetchone()
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
