"""`advance-resorption`: mark resorption phases of a site done, in their order.

The preliminary phases (sociological and technical diagnosis, social assessment,
political validation) come before the resorption itself (contract preparation, land
development, family information, contractualisation, official opening): a phase of
the resorption may be marked done only when every preliminary phase is, and not before
the last of them. A phase already done keeps its date. Written as an update of the
site through `writing.Writer.changing_site`, so its history keeps each step; audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from resorption.errors import Conflict
from resorption.processes.base import (
    SITE_INPUT,
    SITE_OUTPUT,
    SITE_VERSION_INPUT,
    Caller,
    Inputs,
    ResorptionProcessor,
)
from resorption.writing import Writer

PRELIMINARY: dict[str, str] = {
    "sociological_diagnosis": "diagnostic sociologique",
    "technical_diagnosis": "diagnostic technique",
    "social_assessment": "évaluation sociale",
    "political_validation": "validation politique",
}
RESORPTION: dict[str, str] = {
    "contract_preparation": "préparation du contrat",
    "land_development": "aménagement du terrain",
    "family_information": "information des familles",
    "contractualisation": "contractualisation",
    "official_opening": "ouverture officielle",
}
PHASES = {**PRELIMINARY, **RESORPTION}


def column(phase: str) -> str:
    """The column of `sites` holding the completion date of `phase`."""
    return f"phase_{phase}_at"


PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "advance-resorption",
    "title": "Faire avancer la résorption d'un site",
    "description": (
        "Marque des phases de la résorption d'un site comme achevées (phase → date). Les phases "
        "préalables (diagnostic sociologique, diagnostic technique, évaluation sociale, validation "
        "politique) doivent être achevées avant toute phase de résorption (préparation du contrat, "
        "aménagement du terrain, information des familles, contractualisation, ouverture officielle), "
        "qui ne peut être datée avant elles. Une phase déjà achevée garde sa date."
    ),
    "jobControlOptions": ["sync-execute"],
    "keywords": ["résorption", "phases", "site"],
    "links": [],
    "inputs": {
        "site": SITE_INPUT,
        "version": SITE_VERSION_INPUT,
        "phases": {
            "title": "Phases achevées",
            "description": "Objet : nom de phase → date d'achèvement (AAAA-MM-JJ). Phases : "
            + ", ".join(f"{k} ({v})" for k, v in PHASES.items())
            + ".",
            "schema": {
                "type": "object",
                "properties": {name: {"type": "string", "format": "date"} for name in PHASES},
                "additionalProperties": False,
                "minProperties": 1,
            },
            "minOccurs": 1,
            "maxOccurs": 1,
        },
    },
    "outputs": SITE_OUTPUT,
    "example": {"inputs": {"site": 1, "phases": {"sociological_diagnosis": "2024-01-10"}}},
}


def check_order(done: dict[str, dt.date], inputs: Inputs) -> None:
    """Note every phase of the resorption marked before the preliminary phases are all done."""
    missing = [label for name, label in PRELIMINARY.items() if name not in done]
    last_preliminary = max((done[n] for n in PRELIMINARY if n in done), default=None)
    for name, label in RESORPTION.items():
        if name not in done:
            continue
        if missing:
            inputs.error(
                f"phases.{name}",
                f"la phase « {label} » ne peut être achevée avant les phases préalables ; "
                f"restent à achever : {', '.join(missing)}.",
            )
        elif last_preliminary is not None and done[name] < last_preliminary:
            inputs.error(
                f"phases.{name}",
                f"la phase « {label} » ({done[name]}) ne peut précéder la fin des phases préalables "
                f"({last_preliminary}).",
            )


class Processor(ResorptionProcessor):
    """Advance the resorption of a site."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the phases against those already done and their order; write them."""
        caller.require("write")
        site_id = inputs.integer("site", required=True, minimum=1)
        raw = inputs.data.get("phases")
        given: dict[str, dt.date] = {}
        if not isinstance(raw, dict) or not raw:
            inputs.error("phases", "un objet non vide (phase → date) est attendu.")
        else:
            for name, value in raw.items():
                if name not in PHASES:
                    inputs.error(f"phases.{name}", f"phase inconnue ; phases : {', '.join(PHASES)}.")
                    continue
                day = inputs.date(f"phases.{name}", required=True, value=value)
                if day is not None:
                    given[name] = day
        version = inputs.text("version", max_length=100)  # the ETag read, as If-Match
        inputs.fail_if_invalid()
        assert site_id is not None  # checked above

        columns = [column(p) for p in PHASES]
        writer = Writer(caller, caller.sites)
        with writer.changing_site(site_id, "write", ["declared_at", *columns], if_match=version) as site:
            if site.head.status != "open":
                raise Conflict(
                    f"Le site « {site_id} » est fermé (statut « {site.head.status} ») : "
                    "sa résorption n'avance plus."
                )
            values = site.head.values
            done = {p: values[column(p)] for p in PHASES if values[column(p)] is not None}
            for name, day in given.items():
                if name in done and done[name] != day:
                    inputs.error(
                        f"phases.{name}", f"la phase « {PHASES[name]} » est déjà achevée ({done[name]})."
                    )
            check_order({**done, **given}, inputs)
            declared = values["declared_at"]
            for name, day in given.items():
                if declared is not None and day < declared:
                    inputs.error(
                        f"phases.{name}", f"la date précède la date de signalement du site ({declared})."
                    )
            if inputs.errors:
                inputs.fail_if_invalid()
            site.set(**{column(name): day for name, day in given.items()})
            site.detail = {"process": "advance-resorption", "phases": sorted(given)}
        all_done = {**done, **given}
        return {
            "site": site_id,
            "phases": {name: all_done[name].isoformat() if name in all_done else None for name in PHASES},
            "version": site.version,
        }
