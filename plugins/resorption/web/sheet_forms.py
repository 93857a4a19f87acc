"""The site sheet's action forms: « Recenser », « Faire avancer », « Toujours d'actualité ».

Rendered by `carte/_fiche_formulaires.html` inside the sheet (`webmap.sheet`) and sent by
`static/js/fiche-formulaires.js` with the page's CSRF token: a census to the process
`record-census`, phases to `advance-resorption`, a confirmation to
`PATCH /carte/sites/<id>/confirmation` (`site_forms.confirm`). Each is shown only where the
policy lets the user write (the caller's write scope contains the site's département) and,
for census and phases, on an open site; the server checks everything again and answers
per field, in French.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resorption.catalog import Collection
from resorption.clock import today
from resorption.processes.advance_resorption import PHASES, PRELIMINARY
from resorption.processes.advance_resorption import column as phase_column
from resorption.processes.record_census import FIGURES


@dataclass(frozen=True, slots=True)
class Phase:
    """One resorption phase on the sheet: its input name, label, and date when done."""

    name: str
    label: str
    done: str | None
    preliminary: bool


@dataclass(frozen=True, slots=True)
class SheetForms:
    """What the sheet's action forms show, for one user and one site."""

    census: tuple[tuple[str, str, Any], ...]  # (input, label, current value)
    phases: tuple[Phase, ...]
    may_census: bool
    may_advance: bool
    may_confirm: bool
    today: str

    @property
    def shown(self) -> bool:
        return self.may_census or self.may_advance or self.may_confirm


def _label(collection: Collection, name: str, default: str) -> str:
    f = collection.fields.get(name)
    return f.label.fr if f is not None else default


def sheet_forms(collection: Collection, properties: Mapping[str, Any], may_write: bool) -> SheetForms:
    """The sheet's forms: only where the user may write (`may_write`: the policy's scope contains
    the site's département); census and phases only for an open site."""
    is_open = properties.get("status") == "open"
    census = tuple(
        (name, collection.fields[name].label.fr, properties.get(name))
        for name in FIGURES
        if name in collection.fields
    )
    phases = tuple(
        Phase(
            name,
            _label(collection, phase_column(name), label),
            properties.get(phase_column(name)),
            name in PRELIMINARY,
        )
        for name, label in PHASES.items()
    )
    return SheetForms(
        census=census,
        phases=phases,
        may_census=may_write and is_open,
        may_advance=may_write and is_open and any(p.done is None for p in phases),
        may_confirm=may_write,
        today=today().isoformat(),
    )
