"""How sites look on every map we make: colour by status, size by population.

Defined once here, used by the web map (`/carte/styles.json`) and by the QGIS projects we
generate, so that a site has the same look everywhere. Status codes are those of the
catalog (`collections/sites.yml`, field `status`); labels come from the catalog too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resorption.catalog import Collection

# Colour per status code (accessible on white: open sites stand out, closed ones recede).
STATUS_COLOURS: Mapping[str, str] = {
    "open": "#d62728",
    "resorbed": "#2ca02c",
    "closed_by_justice": "#6a3d9a",
    "closed_by_pref_admin": "#1f78b4",
    "closed_by_city_admin": "#17becf",
    "other": "#8c564b",
    "unknown": "#7f7f7f",
}
# Outline of every marker, so that close colours stay apart.
OUTLINE_COLOUR = "#202020"


@dataclass(frozen=True, slots=True)
class PopulationClass:
    """Sites with `minimum` ≤ population_total ≤ `maximum` (None: no upper bound), drawn `radius` px wide."""

    code: str
    label: str
    minimum: int
    maximum: int | None
    radius: int

    def cql2(self) -> str:
        """This class as a CQL2 text condition on population_total."""
        if self.maximum is None:
            return f"population_total >= {self.minimum}"
        return f"population_total BETWEEN {self.minimum} AND {self.maximum}"


POPULATION_CLASSES: tuple[PopulationClass, ...] = (
    PopulationClass("1-9", "Moins de 10 personnes", 1, 9, 5),
    PopulationClass("10-49", "De 10 à 49 personnes", 10, 49, 8),
    PopulationClass("50-99", "De 50 à 99 personnes", 50, 99, 11),
    PopulationClass("100-199", "De 100 à 199 personnes", 100, 199, 14),
    PopulationClass("200+", "200 personnes et plus", 200, None, 18),
)
# A site whose population is unknown.
UNKNOWN_POPULATION_RADIUS = 5


def radius(population: int | None) -> int:
    """The marker radius of a site of `population` people."""
    if population is None:
        return UNKNOWN_POPULATION_RADIUS
    for cls in POPULATION_CLASSES:
        if population >= cls.minimum and (cls.maximum is None or population <= cls.maximum):
            return cls.radius
    return UNKNOWN_POPULATION_RADIUS


def as_json(sites: Collection) -> dict[str, Any]:
    """What a map page needs: statuses (code, French label, colour) and population classes."""
    labels = sites.fields["status"].enum or {}
    return {
        "statuses": [
            {"code": code, "label": labels.get(code, code), "colour": colour}
            for code, colour in STATUS_COLOURS.items()
        ],
        "outline": OUTLINE_COLOUR,
        "populationClasses": [
            {
                "code": c.code,
                "label": c.label,
                "minimum": c.minimum,
                "maximum": c.maximum,
                "radius": c.radius,
                "cql2": c.cql2(),
            }
            for c in POPULATION_CLASSES
        ],
        "unknownPopulationRadius": UNKNOWN_POPULATION_RADIUS,
    }
