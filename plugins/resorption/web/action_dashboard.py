"""The action dashboard of a territory: `/tableau-de-bord/<territoire>/actions`, page and CSV.

What the actions of a territory do and reach: actions by topic (those under way, and the
people they follow), the people reached (the sum of each action's latest indicator
snapshot), and, only for those who may read the finances, the funding by year and funder.
Every figure is one named statement (sql/statements/web_action_dashboard.sql) run as the
signed-in caller: row-level security counts only the actions it may read, and the finances
are neither queried nor shown without the `finances` group. The picker offers the
territories whose actions the caller may read whole; any other answers 404.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, redirect, request

from resorption import statements
from resorption.action_results import FUNDING_TYPES, INDICATORS
from resorption.caller import Caller
from resorption.clock import today
from resorption.errors import InvalidParameter, NotFound
from resorption.spreadsheets.writers import csv_bytes
from resorption.web.dashboard import (
    PATH,
    Territory,
    base_url,
    choices,
    french_date,
    french_integer,
    home_territory,
    render,
    signed_in,
)

SQL = statements.load("web_action_dashboard")
# The group that shows the finances (config/access-policy.yml).
FINANCES = "finances"
# The indicators of the page's table, with their French names (the CSV has them all).
PEOPLE_LABELS: dict[str, str] = {
    "people": "Personnes accompagnées",
    "households": "Ménages accompagnés",
    "women": "Femmes accompagnées",
    "minors": "Mineurs accompagnés",
    "people_health_care": "Personnes orientées vers le soin",
    "people_work_contract": "Personnes ayant un contrat de travail",
    "people_shelter": "Personnes hébergées",
    "households_shelter": "Ménages hébergés",
    "people_housing": "Personnes ayant accédé au logement",
    "households_housing": "Ménages ayant accédé au logement",
    "minors_identified": "Mineurs identifiés",
    "minors_mediation": "Mineurs en médiation scolaire",
    "minors_school_start": "Mineurs ayant commencé l'école",
    "minors_nursery": "Mineurs en maternelle",
    "minors_primary": "Mineurs en élémentaire",
    "minors_middle": "Mineurs au collège",
    "minors_high": "Mineurs au lycée",
}
assert tuple(PEOPLE_LABELS) == tuple(INDICATORS)  # the statement sums them in this order


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of a territory's actions on a day."""

    day: dt.date
    topics: list[dict[str, Any]]
    actions: int
    reporting: int
    people: dict[str, int]
    # None: the caller may not read the finances (nothing was queried).
    finances: list[dict[str, Any]] | None

    def rows(self) -> list[tuple[Any, ...]]:
        """The figures as CSV rows: section, label, year, funder, actions, value, spent."""
        rows: list[tuple[Any, ...]] = []
        for t in self.topics:
            rows.append(
                ("Actions par thématique", t["label"], None, None, t["actions"], t["under_way"], None)
            )
            rows.append(
                ("Personnes suivies par thématique", t["label"], None, None, t["actions"], t["people"], None)
            )
        rows.append(("Actions", "Actions du territoire", None, None, self.actions, self.actions, None))
        rows.append(
            (
                "Actions",
                "Actions ayant un relevé d'indicateurs",
                None,
                None,
                self.reporting,
                self.reporting,
                None,
            )
        )
        for key, value in self.people.items():
            rows.append(("Personnes atteintes", PEOPLE_LABELS[key], None, None, self.reporting, value, None))
        for f in self.finances or ():
            rows.append(
                (
                    "Financements",
                    f["label"],
                    f["year"],
                    f["funding_type"],
                    f["actions"],
                    f["budget"],
                    f["spent"],
                )
            )
        return rows


CSV_HEADERS = ("Rubrique", "Libellé", "Année", "Financeur", "Actions", "Valeur", "Dépenses (€)")


def figures(caller: Caller, territory: Territory, day: dt.date) -> Figures:
    """The figures of the territory's actions, read as `caller`."""
    topic_names = caller.catalog["actions"].fields["topics"].enum
    params = {"level": territory.level, "code": territory.code, "day": day}
    reads_finances = FINANCES in caller.policy.readable_groups(caller.principal)
    with caller.reading() as conn:
        topics = [
            {"topic": t, "label": topic_names.get(t, t), "actions": n, "under_way": u, "people": p}
            for t, n, u, p in conn.execute(SQL.actions_by_topic, params).fetchall()
        ]
        actions, reporting, *sums = conn.execute(SQL.people_reached, params).fetchone()
        finances = None
        if reads_finances:
            finances = [
                {
                    "year": year,
                    "funding_type": kind,
                    "label": FUNDING_TYPES.get(kind, kind),
                    "actions": n,
                    "budget": _euros(budget),
                    "spent": _euros(spent),
                }
                for year, kind, n, budget, spent in conn.execute(SQL.finances_by_year, params).fetchall()
            ]
    return Figures(day, topics, actions, reporting, dict(zip(PEOPLE_LABELS, sums, strict=True)), finances)


def _euros(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def french_euros(value: float | None) -> str:
    """12345.5 → « 12 345,50 € »; nothing for an unknown amount."""
    if value is None:
        return "—"
    return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",") + "\u00a0€"


def _day(args: Mapping[str, str]) -> dt.date:
    value = args.get("date")
    if not value:
        return today()
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(
            f"Date « {value[:20]} » illisible : écrivez-la AAAA-MM-JJ (par exemple 2024-01-31)."
        ) from None
    if day > today():
        raise InvalidParameter("La date (date) est dans le futur : choisissez une date passée.")
    return day


def csv_file(data: Figures) -> bytes:
    """The figures as CSV for French Excel (the exports' writer: BOM, `;`, decimal comma)."""
    return csv_bytes(CSV_HEADERS, data.rows(), lambda h: h)


# -- the views ------------------------------------------------------------------------------------


def blueprint(api: Any) -> Blueprint:
    """The action dashboard's routes, rendering with pygeoapi's templates of `api`."""
    bp = Blueprint("action_dashboard", __name__)

    @bp.get(f"{PATH}/actions")
    def home() -> Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        offered = choices(caller, "actions")
        wanted = request.args.get("territoire")
        territory = offered.find(wanted) if wanted else home_territory(caller.principal, offered)
        if territory is None:
            raise NotFound(_missing(wanted or ""))
        return redirect(f"{base_url(api)}{PATH}/{territory.slug}/actions", HTTPStatus.FOUND)

    @bp.get(f"{PATH}/<slug>/actions")
    def territory(slug: str) -> Response:
        return show(slug, request.args.get("f") == "csv")

    @bp.get(f"{PATH}/<slug>/actions.csv")
    def territory_csv(slug: str) -> Response:
        return show(slug, True)

    def show(slug: str, as_csv: bool) -> Response:
        caller = signed_in(csv=as_csv)
        if isinstance(caller, Response):
            return caller
        offered = choices(caller, "actions")
        place = offered.find(slug)
        if place is None:
            raise NotFound(_missing(slug))
        day = _day(request.args)
        data = figures(caller, place, day)
        base = base_url(api)
        if as_csv:
            name = f"actions-{place.slug}-{day.isoformat()}.csv"
            return Response(
                csv_file(data),
                content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        page_data = {
            "territory": place,
            "choices": offered,
            "period": None,
            "figures": data,
            "people_labels": PEOPLE_LABELS,
            "csv_url": f"{base}{PATH}/{place.slug}/actions.csv?{urllib.parse.urlencode({'date': str(day)})}",
            "sites_url": f"{base}{PATH}/{place.slug}",
            "dashboard_path": f"{base}{PATH}/actions",
            "fr_date": french_date,
            "number": french_integer,
            "euros": french_euros,
            "links": [],
        }
        return Response(
            render(api, "dashboard/actions.html", page_data), content_type="text/html; charset=utf-8"
        )

    return bp


def _missing(slug: str) -> str:
    return (
        f"Aucun tableau de bord des actions « {slug[:40]} » parmi les territoires dont vous pouvez "
        f"consulter les actions : choisissez-en un depuis {PATH}/actions."
    )
