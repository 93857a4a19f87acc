"""The results form of an action's sheet: `/actions/<id>/resultats`.

Two forms for the people who report an action's results: its indicator snapshot for a date,
and (only for those who read the finances) its finances of a year by funder. They post to
this page, which runs the processes `record-action-indicators` and `record-action-finances`
as the signed-in caller (the same code, checks and write path as the API): a refusal is shown
field by field in French, a success comes back to the page (303) saying what was recorded.
A browser session sends the page's anti-CSRF token with the form (web/sessions.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, redirect, request

from resorption import statements
from resorption.action_results import FUNDING_TYPES
from resorption.caller import Caller
from resorption.errors import NotFound, ValidationFailed
from resorption.processes import record_action_finances, record_action_indicators
from resorption.processes.base import Inputs
from resorption.web.action_dashboard import PEOPLE_LABELS
from resorption.web.dashboard import base_url, render, signed_in
from resorption.web.sessions import CSRF_FIELD, current_session

SQL = statements.load("web_action_results")
PATH = "/actions/<int:action_id>/resultats"
FINANCES = "finances"
SAVED = {
    "indicateurs": "Le relevé d'indicateurs est enregistré.",
    "financements": "Les financements sont enregistrés.",
}


def _number(text: str | None, decimal: bool = False) -> Any:
    """A number typed in a form (a decimal comma allowed); the text itself when it is none, so
    that the process says what is wrong with it; None when empty."""
    text = (text or "").strip().replace("\u202f", "").replace(" ", "")
    if not text:
        return None
    try:
        return float(text.replace(",", ".")) if decimal else int(text)
    except ValueError:
        return text


def _indicator_inputs(action_id: int, form: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"action": action_id, "measured_at": form.get("measured_at") or None}
    data.update({name: _number(form.get(name)) for name in PEOPLE_LABELS})
    if form.get("version"):
        data["version"] = form["version"]
    return {k: v for k, v in data.items() if v is not None}


def _finance_inputs(action_id: int, form: Mapping[str, str]) -> dict[str, Any]:
    lines = []
    for kind in FUNDING_TYPES:
        budget, spent = _number(form.get(f"budget_{kind}"), True), _number(form.get(f"spent_{kind}"), True)
        details = (form.get(f"details_{kind}") or "").strip() or None
        if budget is None and spent is None and details is None:
            continue
        line = {"funding_type": kind, "budget": budget, "spent": spent, "details": details}
        lines.append({k: v for k, v in line.items() if v is not None})
    return {"action": action_id, "year": _number(form.get("year")), "lines": lines}


FIELD_LABELS = {
    **PEOPLE_LABELS,
    "action": "Action",
    "measured_at": "Date du relevé",
    "version": "Version",
    "year": "Année",
    "lines": "Financements",
}
LINE_KEYS = {"budget": "budget", "spent": "dépenses", "details": "précisions", "funding_type": "financeur"}


def _label(name: str, inputs: Mapping[str, Any]) -> str:
    """The French name of an input of the forms: `lines[0].budget` → « État : budget »."""
    line = re.fullmatch(r"lines\[(\d+)\](?:\.(\w+))?", name)
    if line is None:
        return FIELD_LABELS.get(name, name)
    lines = inputs.get("lines") or []
    n = int(line.group(1))
    funder = FUNDING_TYPES.get(lines[n].get("funding_type", ""), "") if n < len(lines) else ""
    return f"{funder or 'Financement'} : {LINE_KEYS.get(line.group(2) or '', line.group(2) or 'ligne')}"


def _run(processor: Any, caller: Caller, data: dict[str, Any]) -> None:
    meta = processor.PROCESS_METADATA
    processor.Processor({"name": meta["id"]}).run(caller, Inputs.of(data, tuple(meta["inputs"])))


def blueprint(api: Any) -> Blueprint:
    """The results form's route, rendering with pygeoapi's templates of `api`."""
    bp = Blueprint("action_results", __name__)

    @bp.route(PATH, methods=["GET", "POST"])
    def form(action_id: int) -> Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        with caller.reading() as conn:
            row = conn.execute(SQL.action_of_form, (action_id,)).fetchone()
        if row is None:
            raise NotFound(f"L'action « {action_id} » n'existe pas parmi celles que vous pouvez consulter.")
        name, departement, latest = row
        reads_finances = FINANCES in caller.policy.readable_groups(caller.principal)
        page = f"{base_url(api)}/actions/{action_id}/resultats"
        errors: dict[str, str] = {}
        status = HTTPStatus.OK
        sent = request.form.get("formulaire") if request.method == "POST" else None
        problems: list[tuple[str, str]] = []
        if sent in ("indicateurs", "financements"):
            inputs = (
                _indicator_inputs(action_id, request.form)
                if sent == "indicateurs"
                else _finance_inputs(action_id, request.form)
            )
            try:
                _run(
                    record_action_indicators if sent == "indicateurs" else record_action_finances,
                    caller,
                    inputs,
                )
            except ValidationFailed as exc:
                errors = {e["property"]: e["message"] for e in exc.errors}
                problems = [(_label(e["property"], inputs), e["message"]) for e in exc.errors]
                status = HTTPStatus.BAD_REQUEST
            else:
                return redirect(f"{page}?enregistre={sent}", HTTPStatus.SEE_OTHER)
        session = current_session()
        data = {
            "action_id": action_id,
            "name": name,
            "departement": departement,
            "latest": latest,
            "sheet_url": f"{base_url(api)}/collections/actions/items/{action_id}",
            "changes_url": f"{base_url(api)}/collections/action_changes/items?action_id={action_id}",
            "page_url": page,
            "indicators": PEOPLE_LABELS,
            "funding_types": FUNDING_TYPES if reads_finances else None,
            "sent": sent,
            "form": request.form if request.method == "POST" else {},
            "errors": errors,
            "problems": problems,
            "saved": SAVED.get(request.args.get("enregistre", "")),
            "csrf_field": CSRF_FIELD,
            "csrf_token": session.csrf_token if session else "",
            "links": [],
        }
        return Response(
            render(api, "actions/resultats.html", data),
            status=status,
            content_type="text/html; charset=utf-8",
        )

    return bp
