"""`close-site`: close an open site, with its closing solutions (people and households each).

Refuses a site already closed (409), a caller without the close scope where the site
lies (403; the database's write guard refuses it too), and inputs that break the rules
(400, every problem by input). The closing is a write of the site through
`writing.Writer.changing_site`: one update, so one new version in its history; the
solutions replace those of `site_closing_solutions` in the same transaction; audited.
"""

from __future__ import annotations

from typing import Any

from resorption.errors import Conflict
from resorption.processes.base import (
    SITE_INPUT,
    SITE_OUTPUT,
    SITE_VERSION_INPUT,
    Caller,
    Inputs,
    ResorptionProcessor,
    date_input,
)
from resorption.writing import Writer

CLOSING_STATUSES = (
    "resorbed",
    "closed_by_justice",
    "closed_by_pref_admin",
    "closed_by_city_admin",
    "other",
    "unknown",
)
SOLUTIONS = (
    "emergency_shelter",
    "integration_shelter",
    "transitional_housing",
    "social_housing",
    "private_housing",
    "voluntary_return",
    "eti",
    "other",
)

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "close-site",
    "title": "Fermer un site",
    "description": (
        "Ferme un site existant : motif (statut de fermeture), date, fermeture avec ou sans "
        "solutions, personnes et ménages par solution, contexte (obligatoire pour « Autre »). "
        "Un site déjà fermé est refusé. Demande le droit de fermer des sites là où le site se trouve."
    ),
    "jobControlOptions": ["sync-execute"],
    "keywords": ["fermeture", "site", "résorption"],
    "links": [],
    "inputs": {
        "site": SITE_INPUT,
        "version": SITE_VERSION_INPUT,
        "status": {
            "title": "Motif de fermeture",
            "description": (
                "resorbed (résorption progressive), closed_by_justice (décision de justice), "
                "closed_by_pref_admin (décision administrative préfectorale), closed_by_city_admin "
                "(décision administrative communale), other (autre, à expliquer), unknown (inconnu)."
            ),
            "schema": {"type": "string", "enum": list(CLOSING_STATUSES)},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "closed_at": date_input("Date de fermeture", "Date de la fermeture (AAAA-MM-JJ), pas dans le futur."),
        "closed_with_solutions": {
            "title": "Fermeture avec solutions",
            "description": "yes (oui), no (non) ou unknown (inconnu).",
            "schema": {"type": "string", "enum": ["yes", "no", "unknown"]},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "solutions": {
            "title": "Solutions",
            "description": (
                "Pour une fermeture avec solutions : chaque solution (une fois au plus) avec les "
                "personnes et les ménages concernés (ménages ≤ personnes)."
            ),
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["solution"],
                    "properties": {
                        "solution": {"type": "string", "enum": list(SOLUTIONS)},
                        "people": {"type": "integer", "minimum": 0},
                        "households": {"type": "integer", "minimum": 0},
                    },
                },
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "closing_context": {
            "title": "Contexte de la fermeture",
            "description": "Texte libre ; obligatoire pour le motif « other ».",
            "schema": {"type": "string", "maxLength": 2000},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": SITE_OUTPUT,
    "example": {
        "inputs": {
            "site": 1,
            "status": "resorbed",
            "closed_at": "2024-06-30",
            "closed_with_solutions": "yes",
            "solutions": [{"solution": "social_housing", "people": 12, "households": 3}],
        }
    },
}


def _solutions(inputs: Inputs, with_solutions: str | None) -> list[tuple[str, int | None, int | None]]:
    """The closing solutions, checked: known, each once, households ≤ people."""
    raw = inputs.data.get("solutions")
    if raw is None:
        return []
    if not isinstance(raw, list):
        inputs.error("solutions", "une liste d'objets {solution, people, households} est attendue.")
        return []
    if raw and with_solutions != "yes":
        inputs.error("solutions", "des solutions ne se donnent que pour une fermeture avec solutions (yes).")
        return []
    found: list[tuple[str, int | None, int | None]] = []
    for i, item in enumerate(raw):
        where = f"solutions[{i}]"
        if not isinstance(item, dict) or set(item) - {"solution", "people", "households"}:
            inputs.error(where, "un objet {solution, people, households} est attendu.")
            continue
        sub = Inputs(item)
        solution = sub.choice("solution", SOLUTIONS, required=True)
        people = sub.integer("people")
        households = sub.integer("households")
        if people is not None and households is not None and households > people:
            sub.error("households", "le nombre de ménages dépasse le nombre de personnes.")
        if solution is not None and any(s == solution for s, _, _ in found):
            sub.error("solution", f"la solution « {solution} » figure deux fois.")
        for e in sub.errors:
            inputs.error(f"{where}.{e['property']}", e["message"])
        if not sub.errors and solution is not None:
            found.append((solution, people, households))
    return found


class Processor(ResorptionProcessor):
    """Close a site."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check, close, write the solutions, audit."""
        caller.require("close")
        site_id = inputs.integer("site", required=True, minimum=1)
        status = inputs.choice("status", CLOSING_STATUSES, required=True)
        closed_at = inputs.date("closed_at", required=True)
        with_solutions = inputs.choice("closed_with_solutions", ("yes", "no", "unknown"), required=True)
        solutions = _solutions(inputs, with_solutions)
        context = inputs.text("closing_context")
        if status == "other" and context is None:
            inputs.error("closing_context", "une fermeture « Autre » doit être expliquée dans le contexte.")
        version = inputs.text("version", max_length=100)  # the ETag read, as If-Match
        inputs.fail_if_invalid()
        assert site_id is not None and status is not None  # checked above

        with Writer(caller, caller.sites).changing_site(
            site_id, "close", ["declared_at"], if_match=version
        ) as site:
            if site.head.status != "open":
                raise Conflict(f"Le site « {site_id} » est déjà fermé (statut « {site.head.status} »).")
            declared = site.head.values["declared_at"]
            if closed_at is not None and declared is not None and closed_at < declared:
                inputs.error(
                    "closed_at", f"la date de fermeture précède la date de signalement ({declared})."
                )
                inputs.fail_if_invalid()
            site.set(
                status=status,
                closed_at=closed_at,
                closed_with_solutions=with_solutions,
                closing_context=context,
            )
            site.solutions = solutions
            site.detail = {
                "process": "close-site",
                "status": status,
                "solutions": [s for s, _, _ in solutions],
            }
        return {
            "site": site_id,
            "status": status,
            "closed_at": closed_at.isoformat() if closed_at else None,
            "closed_with_solutions": with_solutions,
            "solutions": [{"solution": s, "people": p, "households": h} for s, p, h in solutions],
            "version": site.version,
        }
