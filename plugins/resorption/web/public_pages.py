"""The public pages, open without signing in: the open-data figures and the pages every State
service must link from its footer.

- `/donnees-ouvertes`: national and regional figures and charts from the open-data
  aggregates (collections `stats_regions` and `stats_departements`, sql/070_opendata.sql), read
  through the one reader as the caller (anonymous or not: the same suppressed figures for
  all). A suppressed figure shows as « secret statistique », never as a number; the national
  line is the sum of the published regional figures and says so (a figure suppressed in a
  region is not in it; when every region hides it, the national figure is suppressed too).
  The page dates the figures with their `as_of` day only: no time of the last change of any site.
- `/accessibilite`: the accessibility statement, with the conformance the tests measure
  (tests/test_accessibility.py: axe-core on every page type, signed in as each demo role).
- `/mentions-legales`, `/donnees-personnelles`: what this service is, who publishes it, what
  personal data it keeps and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response

from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.params import parse_items
from resorption.reader import FeatureReader
from resorption.web.dashboard import base_url, render

# The figures the page shows, in order; each collection's field labels name them.
MEASURES = ("open_sites", "population", "minors", "households")
CLOSED = (
    "closed_resorbed",
    "closed_by_justice",
    "closed_by_pref_admin",
    "closed_by_city_admin",
    "closed_other",
    "closed_unknown",
)
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def french_day(day: dt.date) -> str:
    """« 2 décembre 2026 »."""
    return f"{'1er' if day.day == 1 else day.day} {MONTHS[day.month - 1]} {day.year}"


def _rows(caller: Caller, collection: Collection) -> list[Mapping[str, Any]]:
    """Every territory of an open-data collection, as the API gives them (sorted by code)."""
    args = {"limit": "1000", "skipGeometry": "true"}
    fq = parse_items(collection, caller.readable_fields(collection), args, caller.settings.limits)
    return [f["properties"] for f in FeatureReader(caller, collection).features(fq)["features"]]


def _with_closed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A territory's row plus the sum of its published closings and whether some are hidden."""
    published = [row[name] for name in CLOSED if row.get(name) is not None]
    return {**row, "closed_published": sum(published), "closed_partial": len(published) < len(CLOSED)}


def _total(rows: list[Mapping[str, Any]], measure: str) -> tuple[int | None, int]:
    """The sum of the published regional figures of `measure` (None when every region hides
    its own: a 0 would read as « none »), and how many regions hid theirs.

    The rule: the national figure is the sum of the published regions, never the true national
    total. It then adds nothing to what the regional table gives (no suppressed region can be
    recovered by subtracting the published ones from it), and the table and the total agree.
    """
    published = [row[measure] for row in rows if row.get(measure) is not None]
    return (sum(published) if published else None), len(rows) - len(published)


def open_data_figures(caller: Caller) -> dict[str, Any]:
    """What /donnees-ouvertes shows: labels, the national sums, regions and départements."""
    regions_collection = caller.catalog["stats_regions"]
    departements_collection = caller.catalog["stats_departements"]
    regions = [_with_closed(row) for row in _rows(caller, regions_collection)]
    departements = [_with_closed(row) for row in _rows(caller, departements_collection)]
    fields = regions_collection.fields
    labels = {name: fields[name].label.fr for name in (*MEASURES, *CLOSED)}
    as_of = max((row["as_of"] for row in regions if row.get("as_of")), default=None)
    national = {name: _total(regions, name) for name in (*MEASURES, *CLOSED)}
    return {
        "labels": labels,
        "measures": MEASURES,
        "closed": CLOSED,
        "as_of": french_day(dt.date.fromisoformat(as_of)) if as_of else None,
        "national": national,
        "regions": regions,
        "departements": departements,
        # What static/js/donnees-ouvertes.js draws: published figures only (null stays null).
        "charts": {
            "regions": [row["name"] for row in regions],
            "open_sites": [row.get("open_sites") for row in regions],
            "population": [row.get("population") for row in regions],
            "closed_labels": [labels[name] for name in CLOSED],
            "closed": [national[name][0] for name in CLOSED],
            "labels": {name: labels[name] for name in ("open_sites", "population")},
        },
    }


def blueprint(api: Any) -> Blueprint:
    """The public pages, rendered with pygeoapi's templates of `api` (the one layout)."""
    bp = Blueprint("public_pages", __name__)

    def page(template: str, data: dict[str, Any]) -> Response:
        data = {"links": [], "base": base_url(api), **data}
        return Response(render(api, template, data), content_type="text/html; charset=utf-8")

    @bp.get("/donnees-ouvertes")
    def open_data() -> Response:
        caller = Caller.of_request()
        return page("public/donnees_ouvertes.html", open_data_figures(caller))

    @bp.get("/accessibilite")
    def accessibility() -> Response:
        return page("public/accessibilite.html", {})

    @bp.get("/mentions-legales")
    def legal_notice() -> Response:
        return page("public/mentions_legales.html", {})

    @bp.get("/donnees-personnelles")
    def personal_data() -> Response:
        return page("public/donnees_personnelles.html", {})

    return bp
