"""The results of an action as the model defines them: its indicators and its finances.

The names, French labels and rules of `action_indicators` and `action_finances`
(sql/040_actions.sql), for the processes and forms that record them: each CHECK constraint
of the model is here as a rule with its French message, so that a client learns every problem
of its input at once, by field; the database refuses the same things on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

# The indicators of a snapshot, in table order, with what they count.
INDICATORS: dict[str, str] = {
    "people": "Personnes accompagnées.",
    "households": "Ménages accompagnés (≤ personnes).",
    "women": "Femmes accompagnées (≤ personnes).",
    "minors": "Mineurs accompagnés (≤ personnes).",
    "people_health_care": "Personnes orientées vers le soin (≤ personnes).",
    "people_work_contract": "Personnes ayant un contrat de travail (≤ personnes).",
    "people_shelter": "Personnes ayant accédé à un hébergement (≤ personnes).",
    "households_shelter": "Ménages ayant accédé à un hébergement (≤ personnes hébergées).",
    "people_housing": "Personnes ayant accédé au logement (≤ personnes).",
    "households_housing": "Ménages ayant accédé au logement (≤ personnes logées).",
    "minors_identified": "Mineurs identifiés.",
    "minors_mediation": "Mineurs en médiation scolaire (≤ mineurs identifiés).",
    "minors_school_start": "Mineurs ayant commencé l'école (≤ mineurs identifiés).",
    "minors_nursery": "Mineurs en maternelle.",
    "minors_primary": "Mineurs en élémentaire.",
    "minors_middle": "Mineurs au collège.",
    "minors_high": "Mineurs au lycée (maternelle + élémentaire + collège + lycée ≤ mineurs identifiés).",
}

# The CHECK constraints `a <= b` of action_indicators: (a, b, the French problem of a).
AT_MOST: tuple[tuple[str, str, str], ...] = (
    ("households", "people", "dépasse le nombre de personnes accompagnées"),
    ("women", "people", "dépasse le nombre de personnes accompagnées"),
    ("minors", "people", "dépasse le nombre de personnes accompagnées"),
    ("people_health_care", "people", "dépasse le nombre de personnes accompagnées"),
    ("people_shelter", "people", "dépasse le nombre de personnes accompagnées"),
    ("people_housing", "people", "dépasse le nombre de personnes accompagnées"),
    ("people_work_contract", "people", "dépasse le nombre de personnes accompagnées"),
    ("households_shelter", "people_shelter", "dépasse le nombre de personnes hébergées"),
    ("households_housing", "people_housing", "dépasse le nombre de personnes logées"),
    ("minors_mediation", "minors_identified", "dépasse le nombre de mineurs identifiés"),
    ("minors_school_start", "minors_identified", "dépasse le nombre de mineurs identifiés"),
)
SCHOOL_LEVELS = ("minors_nursery", "minors_primary", "minors_middle", "minors_high")

# The funders of action_finances (the type funding_type), with their French names.
FUNDING_TYPES: dict[str, str] = {
    "state": "État",
    "dedicated_resorption": "Crédits dédiés à la résorption",
    "local_authority": "Collectivité territoriale",
    "european": "Fonds européens",
    "private": "Financement privé",
    "other": "Autre",
}
FIRST_YEAR, LAST_YEAR = 2015, 2100
# numeric(12, 2): at most ten digits before the decimal point, two after.
LARGEST_AMOUNT = Decimal("9999999999.99")
DETAILS_LENGTH = 2000


def indicator_problems(values: Mapping[str, int | None]) -> list[tuple[str, str]]:
    """The (field, French message) of every rule of the model a snapshot breaks.

    A comparison with an unknown figure holds, as in SQL (a CHECK on NULL passes).
    """
    problems = []
    for small, big, message in AT_MOST:
        a, b = values.get(small), values.get(big)
        if a is not None and b is not None and a > b:
            problems.append((small, f"{a} {message} ({b})."))
    levels = sum(values.get(name) or 0 for name in SCHOOL_LEVELS)
    identified = values.get("minors_identified")
    if identified is not None and levels > identified:
        problems.append(
            (
                "minors_identified",
                f"les mineurs scolarisés (maternelle, élémentaire, collège, lycée : {levels}) "
                f"dépassent les mineurs identifiés ({identified}).",
            )
        )
    return problems
