"""`record-action-finances`: an action's finances for a year, by funder.

Only for callers who read the finances (the sensitive group `finances`: 403 otherwise, and
PostgreSQL grants the table to their roles alone). The lines are checked against the rules of
the model (`action_results`: year, funding types, amounts ≥ 0 with two decimals at most), then
written through the one write path (`writing.Writer.recording_results`): the action is locked
and its version compared (`version`, as `If-Match`), refused outside the caller's write scope,
and the lines of that year become these (a funder not named is removed); each line changed
makes a version in its history (collection `action_changes`, for those who read finances), the
action's version moves, and the write is audited with the group `finances`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from resorption.action_results import DETAILS_LENGTH, FIRST_YEAR, FUNDING_TYPES, LARGEST_AMOUNT, LAST_YEAR
from resorption.processes.base import Caller, Inputs, ResorptionProcessor
from resorption.processes.record_action_indicators import ACTION_INPUT, ACTION_OUTPUT, VERSION_INPUT
from resorption.writing import FinanceLine, Writer, require_finances

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "record-action-finances",
    "title": "Enregistrer les financements d'une action",
    "description": (
        "Enregistre les financements d'une action pour une année, par financeur (État, crédits "
        "dédiés à la résorption, collectivité territoriale, fonds européens, privé, autre) : "
        "budget, dépenses et précisions. Les lignes données remplacent celles de l'année ; un "
        "financeur absent est retiré. Réservé à qui peut lire les financements ; chaque ligne "
        "modifiée entre dans l'historique de l'action."
    ),
    "jobControlOptions": ["sync-execute"],
    "keywords": ["action", "financements", "résultats"],
    "links": [],
    "inputs": {
        "action": ACTION_INPUT,
        "year": {
            "title": "Année",
            "description": f"Année des financements ({FIRST_YEAR} à {LAST_YEAR}).",
            "schema": {"type": "integer", "minimum": FIRST_YEAR, "maximum": LAST_YEAR},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "lines": {
            "title": "Financements par financeur",
            "description": (
                "Une ligne par type de financement : `funding_type` ("
                + ", ".join(FUNDING_TYPES)
                + "), `budget` (€, obligatoire), `spent` (€, dépenses) et `details` (texte). "
                "Une liste vide retire les financements de l'année."
            ),
            "schema": {
                "type": "array",
                "maxItems": len(FUNDING_TYPES),
                "items": {
                    "type": "object",
                    "required": ["funding_type", "budget"],
                    "properties": {
                        "funding_type": {"type": "string", "enum": list(FUNDING_TYPES)},
                        "budget": {"type": "number", "minimum": 0},
                        "spent": {"type": "number", "minimum": 0},
                        "details": {"type": "string", "maxLength": DETAILS_LENGTH},
                    },
                    "additionalProperties": False,
                },
            },
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "version": VERSION_INPUT,
    },
    "outputs": ACTION_OUTPUT,
    "example": {
        "inputs": {
            "action": 1,
            "year": 2024,
            "lines": [
                {"funding_type": "dedicated_resorption", "budget": 80000, "spent": 62500.5},
                {"funding_type": "local_authority", "budget": 15000},
            ],
        }
    },
}
LINE_KEYS = ("funding_type", "budget", "spent", "details")


def _amount(inputs: Inputs, name: str, value: Any, required: bool) -> Decimal | None:
    """An amount in euros: a number ≥ 0, with two decimals at most."""
    if value is None:
        if required:
            inputs.error(name, "valeur obligatoire.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        inputs.error(name, "montant attendu (un nombre, en euros).")
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        inputs.error(name, "montant attendu (un nombre, en euros).")
        return None
    if not amount.is_finite() or amount < 0:
        inputs.error(name, "le montant doit être positif ou nul.")
        return None
    if amount > LARGEST_AMOUNT:
        inputs.error(name, f"le montant dépasse {LARGEST_AMOUNT} €.")
        return None
    if amount != amount.quantize(Decimal("0.01")):
        inputs.error(name, "deux décimales au plus (les centimes).")
        return None
    return amount


def _lines(inputs: Inputs) -> list[FinanceLine]:
    """The lines of the input `lines`, every problem noted by `lines[i].<key>`."""
    value = inputs.data.get("lines")
    if value is None:
        inputs.error(
            "lines", "valeur obligatoire (une liste, vide pour retirer les financements de l'année)."
        )
        return []
    if not isinstance(value, list):
        inputs.error("lines", "liste de lignes de financement attendue.")
        return []
    if len(value) > len(FUNDING_TYPES):
        inputs.error("lines", f"{len(FUNDING_TYPES)} lignes au plus (une par type de financement).")
        return []
    lines, seen = [], set()
    for n, raw in enumerate(value):
        where = f"lines[{n}]"
        if not isinstance(raw, dict):
            inputs.error(where, "objet attendu (funding_type, budget, spent, details).")
            continue
        for key in raw:
            if key not in LINE_KEYS:
                inputs.error(f"{where}.{key}", f"clé inconnue ; clés permises : {', '.join(LINE_KEYS)}.")
        kind = raw.get("funding_type")
        if kind is None:
            inputs.error(f"{where}.funding_type", f"valeur obligatoire ({', '.join(FUNDING_TYPES)}).")
        elif kind not in FUNDING_TYPES:
            inputs.error(
                f"{where}.funding_type",
                f"valeur « {str(kind)[:40]} » inconnue ; valeurs permises : {', '.join(FUNDING_TYPES)}.",
            )
            kind = None
        elif kind in seen:
            inputs.error(f"{where}.funding_type", f"le type « {kind} » est déjà donné par une autre ligne.")
            kind = None
        else:
            seen.add(kind)
        budget = _amount(inputs, f"{where}.budget", raw.get("budget"), required=True)
        spent = _amount(inputs, f"{where}.spent", raw.get("spent"), required=False)
        details = raw.get("details")
        if details is not None and (not isinstance(details, str) or not details.strip() or "\x00" in details):
            inputs.error(f"{where}.details", "texte non vide attendu.")
            details = None
        elif details is not None and len(details) > DETAILS_LENGTH:
            inputs.error(f"{where}.details", f"{DETAILS_LENGTH} caractères au plus.")
            details = None
        if kind is not None and budget is not None:
            lines.append(FinanceLine(kind, budget, spent, details.strip() if details else None))
    return lines


class Processor(ResorptionProcessor):
    """Record an action's finances for a year."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the lines, then record them through the write path."""
        caller.require("write", "actions")
        require_finances(caller)  # before anything is read of the input
        action_id = inputs.integer("action", required=True, minimum=1)
        year = inputs.integer("year", required=True, minimum=FIRST_YEAR)
        if year is not None and year > LAST_YEAR:
            inputs.error("year", f"doit être inférieur ou égal à {LAST_YEAR}.")
        version = inputs.text("version", max_length=100)
        lines = _lines(inputs)
        inputs.fail_if_invalid()
        assert action_id is not None and year is not None  # checked above

        writer = Writer(caller, caller.catalog["actions"])
        with writer.recording_results(action_id, finances=True, if_match=version) as action:
            action.record_finances(year, lines)
            action.detail = {"process": "record-action-finances", "year": year}
        return {
            "action": action_id,
            "year": year,
            "lines": [
                {
                    "funding_type": x.funding_type,
                    "budget": float(x.budget),
                    "spent": None if x.spent is None else float(x.spent),
                    "details": x.details,
                }
                for x in lines
            ],
            "version": action.version,
        }
