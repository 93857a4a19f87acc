"""`record-census`: a dated population update of an open site, with its breakdown.

The figures are checked like an edit of the site (`editing.validate` against the
catalog, then the database's check constraints: households, women and minors ≤ total,
age brackets and minors in school ≤ minors), and written as an update of the site
(`writing.Writer.changing_site`), so that its history keeps the census as a version. The
breakdown replaces the previous one: a figure not given is unknown after the census.
"""

from __future__ import annotations

from typing import Any

from resorption import editing
from resorption.errors import Conflict
from resorption.processes.base import (
    SITE_INPUT,
    SITE_OUTPUT,
    SITE_VERSION_INPUT,
    Caller,
    Inputs,
    ResorptionProcessor,
    count_input,
    date_input,
)
from resorption.writing import Writer

FIGURES: dict[str, str] = {
    "population_total": "Nombre de personnes (au moins 1).",
    "population_households": "Nombre de ménages (≤ personnes).",
    "population_women": "Nombre de femmes (≤ personnes).",
    "population_minors": "Nombre de mineurs (≤ personnes).",
    "population_girls": "Nombre de filles (≤ mineurs).",
    "minors_0_3": "Mineurs de 0 à 3 ans.",
    "minors_3_6": "Mineurs de 3 à 6 ans.",
    "minors_6_12": "Mineurs de 6 à 12 ans.",
    "minors_12_16": "Mineurs de 12 à 16 ans.",
    "minors_16_18": "Mineurs de 16 à 18 ans (somme des tranches ≤ mineurs).",
    "minors_in_school": "Mineurs scolarisés (≤ mineurs).",
}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "record-census",
    "title": "Enregistrer un recensement",
    "description": (
        "Met à jour la population d'un site ouvert à une date donnée, avec sa répartition "
        "(ménages, femmes, mineurs, filles, tranches d'âge, mineurs scolarisés). Les chiffres sont "
        "contrôlés comme une modification du site ; la mise à jour entre dans son historique. "
        "Un chiffre non donné devient inconnu."
    ),
    "jobControlOptions": ["sync-execute"],
    "keywords": ["recensement", "population", "site"],
    "links": [],
    "inputs": {
        "site": SITE_INPUT,
        "version": SITE_VERSION_INPUT,
        "census_at": date_input(
            "Date du recensement", "Date du recensement (AAAA-MM-JJ), pas dans le futur."
        ),
        "census_by": {
            "title": "Recensement réalisé par",
            "description": "Qui a réalisé le recensement (structure, service).",
            "schema": {"type": "string", "maxLength": 200},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        **{
            name: count_input(
                name, text, required=name == "population_total", minimum=int(name == "population_total")
            )
            for name, text in FIGURES.items()
        },
    },
    "outputs": SITE_OUTPUT,
    "example": {
        "inputs": {
            "site": 1,
            "census_at": "2024-05-15",
            "census_by": "DDETS",
            "population_total": 42,
            "population_households": 11,
            "population_minors": 15,
        }
    },
}


class Processor(ResorptionProcessor):
    """Record a census."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the figures as an edit, then update the site."""
        caller.require("write")
        site_id = inputs.integer("site", required=True, minimum=1)
        census_at = inputs.date("census_at", required=True)
        census_by = inputs.text("census_by", max_length=200)
        if not inputs.given("population_total"):
            inputs.error("population_total", "valeur obligatoire.")
        properties = {name: inputs.data[name] for name in FIGURES if inputs.given(name)}
        version = inputs.text("version", max_length=100)  # the ETag read, as If-Match
        inputs.fail_if_invalid()
        assert site_id is not None and census_at is not None  # checked above

        writer = Writer(caller, caller.sites)
        with writer.changing_site(site_id, "write", ["declared_at"], if_match=version) as site:
            if site.head.status != "open":
                raise Conflict(
                    f"Le site « {site_id} » est fermé (statut « {site.head.status} ») : plus de recensement."
                )
            site.change = writer.patch_of(site, {"properties": properties})
            for e in site.change.errors:
                inputs.error(e["property"], e["message"])
            declared = site.head.values["declared_at"]
            if declared is not None and census_at < declared:
                inputs.error(
                    "census_at", f"la date du recensement précède la date de signalement ({declared})."
                )
            inputs.fail_if_invalid()
            # The new breakdown replaces the old one: a figure not given becomes unknown.
            site.set(**{name: editing.REMOVED for name in FIGURES if name not in site.change.values})
            site.set(
                census_status="done",
                census_at=census_at,
                census_by=census_by if census_by is not None else editing.REMOVED,
                population_updated_at=census_at,
            )
            site.detail = {"process": "record-census", "census_at": census_at.isoformat()}
        return {
            "site": site_id,
            "census_at": census_at.isoformat(),
            "population": {name: properties.get(name) for name in FIGURES},
            "version": site.version,
        }
