"""What every process of ours shares: the caller and its inputs.

`ResorptionProcessor.execute` refuses anonymous callers (401), parses the inputs with
`Inputs` (every problem, by input, in one 400) and runs `run()`. Our errors
(`ResorptionError`, French messages) are turned into HTTP answers or job failures by
`processes.jobs.JobManager`; nothing of the internals reaches the client.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pygeoapi.process.base import BaseProcessor

from resorption.caller import Caller
from resorption.clock import today
from resorption.errors import InvalidParameter, Unauthorized, ValidationFailed

JSON = "application/json"


SITE_INPUT: dict[str, Any] = {
    "title": "Site",
    "description": "Identifiant du site (propriété `id` de la collection « sites »).",
    "schema": {"type": "integer", "minimum": 1},
    "minOccurs": 1,
    "maxOccurs": 1,
}
# A site process writes only the version its caller read, when told (as `If-Match` does for
# the API): 8 editors of one site through the API, the map and the processes lose no update.
SITE_VERSION_INPUT: dict[str, Any] = {
    "title": "Version lue",
    "description": (
        "La version du site telle que vous l'avez lue (son ETag) : si elle a changé depuis, "
        "rien n'est écrit (412)."
    ),
    "schema": {"type": "string", "maxLength": 100},
    "minOccurs": 0,
    "maxOccurs": 1,
}
# Every write process answers with the site it changed and its new version (ETag).
SITE_OUTPUT: dict[str, Any] = {
    "result": {
        "title": "Résultat",
        "description": "Le site modifié et sa nouvelle version (ETag).",
        "schema": {"type": "object", "contentMediaType": JSON},
    }
}


def date_input(title: str, description: str, required: bool = True) -> dict[str, Any]:
    """The description of a date input."""
    return {
        "title": title,
        "description": description,
        "schema": {"type": "string", "format": "date"},
        "minOccurs": 1 if required else 0,
        "maxOccurs": 1,
    }


def count_input(title: str, description: str, required: bool = False, minimum: int = 0) -> dict[str, Any]:
    """The description of a count (an integer ≥ `minimum`)."""
    return {
        "title": title,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum},
        "minOccurs": 1 if required else 0,
        "maxOccurs": 1,
    }


@dataclass(slots=True)
class Inputs:
    """The inputs of one execution, and every problem found in them."""

    data: Mapping[str, Any]
    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, data: Any, allowed: Sequence[str]) -> Inputs:
        """Wrap `data`; an input not in `allowed` is a problem."""
        if not isinstance(data, Mapping):
            raise InvalidParameter("Les entrées (« inputs ») doivent être un objet JSON (nom → valeur).")
        inputs = cls(data)
        for name in data:
            if name not in allowed:
                inputs.error(name, f"entrée inconnue ; entrées permises : {', '.join(allowed)}.")
        return inputs

    def error(self, name: str, message: str) -> None:
        """Note one problem with input `name`."""
        self.errors.append({"property": name, "message": message})

    def given(self, name: str) -> bool:
        """Whether the input is present (and not null)."""
        return self.data.get(name) is not None

    def integer(self, name: str, required: bool = False, minimum: int = 0) -> int | None:
        """An integer ≥ `minimum`."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.error(name, "valeur obligatoire.")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31 - 1:
            self.error(name, "nombre entier attendu.")
            return None
        if value < minimum:
            self.error(name, f"doit être supérieur ou égal à {minimum}.")
            return None
        return value

    def date(self, name: str, required: bool = False, value: Any = None) -> dt.date | None:
        """A date (AAAA-MM-JJ), not in the future."""
        value = self.data.get(name) if value is None else value
        if value is None:
            if required:
                self.error(name, "valeur obligatoire.")
            return None
        try:
            if not isinstance(value, str) or len(value) != 10:
                raise ValueError
            day = dt.date.fromisoformat(value)
        except ValueError:
            self.error(name, f"date attendue au format AAAA-MM-JJ, reçu « {str(value)[:20]} ».")
            return None
        if day > today():
            self.error(name, "la date est dans le futur.")
            return None
        return day

    def choice(self, name: str, values: Sequence[str], required: bool = False) -> str | None:
        """One of `values`."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.error(name, f"valeur obligatoire ({', '.join(values)}).")
            return None
        if value not in values:
            self.error(
                name, f"valeur « {str(value)[:40]} » inconnue ; valeurs permises : {', '.join(values)}."
            )
            return None
        return str(value)

    def text(self, name: str, max_length: int = 2000) -> str | None:
        """A non-empty text of at most `max_length` characters."""
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            self.error(name, "texte non vide attendu.")
            return None
        if len(value) > max_length:
            self.error(name, f"{max_length} caractères au plus.")
            return None
        return value.strip()

    def fail_if_invalid(self) -> None:
        """Raise every problem noted so far, as one 400."""
        if self.errors:
            listed = " ; ".join(f"{e['property']} : {e['message']}" for e in self.errors)
            raise ValidationFailed(self.errors, f"Les entrées du processus ne sont pas valides : {listed}")


class ResorptionProcessor(BaseProcessor):
    """A process of ours: authenticated callers only, inputs checked, French errors."""

    inputs_allowed: tuple[str, ...] = ()

    def __init__(self, processor_def: dict, metadata: dict) -> None:
        """Keep pygeoapi's definition and our metadata."""
        super().__init__(processor_def, metadata)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        """Run the process for the caller of the request (or of the job)."""
        caller = authenticated_caller()
        inputs = Inputs.of(data, tuple(self.metadata["inputs"]))
        return JSON, self.run(caller, inputs)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """The work of the process; returns its JSON output."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}> {self.name}"


def authenticated_caller() -> Caller:
    """The caller of the running execution; 401 for anonymous callers."""
    caller = Caller.of_request()
    if caller.principal.is_anonymous:
        raise Unauthorized("Authentification requise pour exécuter ce processus.")
    return caller
