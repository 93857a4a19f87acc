"""`record-action-indicators`: an action's indicator snapshot for a date.

The figures are checked against the rules of the model (`action_results`: each CHECK
constraint of `action_indicators`, with its French message, by input), then written through
the one write path (`writing.Writer.recording_results`): the action is locked and its
version compared (`version`, as `If-Match`), refused outside the caller's write scope (every
département of the action), and the snapshot of that date is created or replaced whole; its
history keeps it as a version (collection `action_changes`), the action's version moves, and
the write is audited.
"""

from __future__ import annotations

from typing import Any

from resorption.action_results import INDICATORS, indicator_problems
from resorption.processes.base import Caller, Inputs, ResorptionProcessor, count_input, date_input
from resorption.writing import Writer

ACTION_INPUT: dict[str, Any] = {
    "title": "Action",
    "description": "Identifiant de l'action (propriété `id` de la collection « actions »).",
    "schema": {"type": "integer", "minimum": 1},
    "minOccurs": 1,
    "maxOccurs": 1,
}
VERSION_INPUT: dict[str, Any] = {
    "title": "Version lue",
    "description": (
        "La version de l'action telle que vous l'avez lue (son ETag) : si elle a changé depuis, "
        "rien n'est écrit (412)."
    ),
    "schema": {"type": "string", "maxLength": 100},
    "minOccurs": 0,
    "maxOccurs": 1,
}
ACTION_OUTPUT: dict[str, Any] = {
    "result": {
        "title": "Résultat",
        "description": "L'action, ce qui a été enregistré et la nouvelle version de l'action (ETag).",
        "schema": {"type": "object", "contentMediaType": "application/json"},
    }
}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "record-action-indicators",
    "title": "Enregistrer les indicateurs d'une action",
    "description": (
        "Enregistre le relevé des indicateurs d'une action à une date (personnes, ménages, "
        "femmes et mineurs accompagnés ; accès au soin, à l'emploi, à l'hébergement, au logement ; "
        "mineurs identifiés, en médiation, scolarisés). Un relevé de la même date est remplacé en "
        "entier : un chiffre non donné devient inconnu. Les chiffres sont contrôlés par les règles "
        "du modèle ; le relevé entre dans l'historique de l'action."
    ),
    "jobControlOptions": ["sync-execute"],
    "keywords": ["action", "indicateurs", "résultats"],
    "links": [],
    "inputs": {
        "action": ACTION_INPUT,
        "measured_at": date_input("Date du relevé", "Date du relevé (AAAA-MM-JJ), pas dans le futur."),
        "version": VERSION_INPUT,
        **{name: count_input(name, text) for name, text in INDICATORS.items()},
    },
    "outputs": ACTION_OUTPUT,
    "example": {
        "inputs": {
            "action": 1,
            "measured_at": "2024-06-30",
            "people": 120,
            "households": 30,
            "minors": 50,
            "minors_identified": 45,
            "minors_school_start": 20,
        }
    },
}


class Processor(ResorptionProcessor):
    """Record an action's indicator snapshot."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the figures, then record the snapshot through the write path."""
        caller.require("write", "actions")
        action_id = inputs.integer("action", required=True, minimum=1)
        measured_at = inputs.date("measured_at", required=True)
        version = inputs.text("version", max_length=100)
        values = {name: inputs.integer(name) for name in INDICATORS}
        if not any(inputs.given(name) for name in INDICATORS):
            inputs.error("people", "donnez au moins un indicateur.")
        for name, message in indicator_problems(values):
            inputs.error(name, message)
        inputs.fail_if_invalid()
        assert action_id is not None and measured_at is not None  # checked above

        writer = Writer(caller, caller.catalog["actions"])
        with writer.recording_results(action_id, if_match=version, columns=["started_at"]) as action:
            started = action.head.values["started_at"]
            if measured_at < started:
                inputs.error("measured_at", f"la date du relevé précède le début de l'action ({started}).")
            inputs.fail_if_invalid()
            new = action.record_indicators(measured_at, values)
            action.detail = {
                "process": "record-action-indicators",
                "measured_at": measured_at.isoformat(),
                "new": new,
            }
        return {
            "action": action_id,
            "measured_at": measured_at.isoformat(),
            "new": new,
            "indicators": values,
            "version": action.version,
        }
