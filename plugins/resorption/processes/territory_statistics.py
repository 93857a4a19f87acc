"""`territory-statistics`: time series of a territory, computed from the history of the sites.

For each date of the series (from `start` by `step`, plus `end`), the versions of the
sites valid at the end of that day (`sites_history.valid`) give: open sites, their
people, minors and people of European origin, the sites by status, the shares of open
sites per living-condition rating, and the closures of the step ending that day with
their solutions. It reads as the caller's read role with the caller's scopes, exactly
as the Features API does, so row-level security limits it to what the caller may read.
It may run as a job (`Prefer: respond-async`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace
from typing import Any

from resorption import statements
from resorption.caller import Caller
from resorption.errors import Forbidden, InvalidParameter
from resorption.processes.base import JSON, Inputs, ResorptionProcessor, date_input
from resorption.query import FeatureQuery, Params, condition, history_source

SQL = statements.load("processes_territory_statistics")

LEVELS = ("nation", "region", "departement")
STEPS = {"month": "1 month", "quarter": "3 months", "year": "1 year"}
MAX_POINTS = 400
TOPICS = ("water", "sanitation", "electricity", "waste", "pests", "fire_prevention")
RATINGS = ("good", "to_improve", "bad", "unknown")
STATUSES = (
    "open",
    "resorbed",
    "closed_by_justice",
    "closed_by_pref_admin",
    "closed_by_city_admin",
    "other",
    "unknown",
)

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "territory-statistics",
    "title": "Statistiques d'un territoire dans le temps",
    "description": (
        "Pour la nation, une région ou un département, et une période découpée par mois, trimestre "
        "ou année : nombre de sites ouverts, personnes, mineurs, personnes d'origine européenne, "
        "sites par statut, parts des sites ouverts par état des conditions de vie, fermetures de la "
        "période et leurs solutions ; et, aujourd'hui, les sites ouverts sans intervention (ni "
        "action en cours, ni intervenant). Calculé sur l'historique des sites (leur état à la fin de "
        "chaque date), limité aux sites que vous pouvez lire. Peut s'exécuter en tâche de fond "
        "(en-tête « Prefer: respond-async »)."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["statistiques", "historique", "territoire"],
    "links": [],
    "inputs": {
        "level": {
            "title": "Niveau du territoire",
            "description": "nation, region ou departement.",
            "schema": {"type": "string", "enum": list(LEVELS)},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "code": {
            "title": "Code INSEE du territoire",
            "description": "Code de la région ou du département (sans objet pour la nation).",
            "schema": {"type": "string", "maxLength": 3},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "start": date_input("Début", "Première date de la série (AAAA-MM-JJ)."),
        "end": date_input("Fin", "Dernière date de la série (AAAA-MM-JJ), pas dans le futur."),
        "step": {
            "title": "Pas",
            "description": "month (mois), quarter (trimestre) ou year (année).",
            "schema": {"type": "string", "enum": list(STEPS)},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "statistics": {
            "title": "Série statistique",
            "description": "Le territoire, le périmètre lu et un point par date.",
            "schema": {"type": "object", "contentMediaType": JSON},
        }
    },
    "example": {
        "inputs": {
            "level": "departement",
            "code": "33",
            "start": "2020-01-01",
            "end": "2023-01-01",
            "step": "year",
        }
    },
}


class Processor(ResorptionProcessor):
    """Compute the time series of a territory."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the territory against the caller's read scope, then read the history."""
        level = inputs.choice("level", LEVELS, required=True)
        code = inputs.text("code", max_length=3)
        start = inputs.date("start", required=True)
        end = inputs.date("end", required=True)
        step = inputs.choice("step", tuple(STEPS), required=True)
        if level in ("region", "departement") and code is None:
            inputs.error("code", f"le code du territoire est obligatoire pour le niveau « {level} ».")
        if level == "nation" and code is not None:
            inputs.error("code", "pas de code pour la nation.")
        if start and end and start > end:
            inputs.error("end", "la fin précède le début.")
        if start and end and step and _points(start, end, step) > MAX_POINTS:
            inputs.error(
                "step",
                f"{MAX_POINTS} dates au plus : choisissez un pas plus long ou une période plus courte.",
            )
        inputs.fail_if_invalid()
        assert level is not None and start is not None and end is not None and step is not None

        scope = caller.scope("sites")
        if scope.is_empty:
            raise Forbidden("Votre rôle ne vous permet pas de lire les sites.")
        sites = caller.catalog["sites"]
        territory = FeatureQuery(collection=sites, readable=())
        with caller.reading() as conn:
            if level == "departement":
                known = conn.execute(SQL.departement_exists, (code,)).fetchone()
                if known is None:
                    raise InvalidParameter(f"Département « {code} » inconnu.")
                if not scope.contains(code):
                    raise Forbidden(f"Le département {code} est hors de votre territoire d'intervention.")
                territory = replace(territory, equals=((sites.fields["departement_code"], code),))
            elif level == "region":
                rows = conn.execute(SQL.region_departements, (code,)).fetchall()
                if not rows:
                    raise InvalidParameter(f"Région « {code} » inconnue.")
                if not any(scope.contains(r[0]) for r in rows):
                    raise Forbidden(f"La région {code} est hors de votre territoire d'intervention.")
                territory = replace(territory, equals=((sites.fields["region_code"], code),))
            params = Params(start=start, end=end, step=STEPS[step])
            versions = SQL.versions.format(
                history=history_source(sites), territory=condition(territory, params)
            )
            by_status, ratings, closures, solutions = (
                conn.execute(statement.format(versions=versions), params).fetchall()
                for statement in (SQL.by_status, SQL.ratings, SQL.closures, SQL.solutions)
            )
            open_sites, without = conn.execute(
                SQL.intervention.format(
                    has_action=sites.fields["has_action"].expression,
                    has_actor=sites.fields["has_actor"].expression,
                    territory=condition(territory, params),
                ),
                params,
            ).fetchone()
        return {
            "territory": {"level": level, "code": code},
            "start": start.isoformat(),
            "end": end.isoformat(),
            "step": step,
            "scope": "nation" if scope.nation else sorted(scope.departements),
            "series": _series(by_status, ratings, closures, solutions),
            # Today (actors and actions keep no history): the coordinator's question.
            "intervention": {"open_sites": open_sites, "without_intervention": without},
        }


def _points(start: dt.date, end: dt.date, step: str) -> int:
    """How many dates the series has (about)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months // {"month": 1, "quarter": 3, "year": 12}[step] + 2


def _series(
    by_status: list[tuple], ratings: list[tuple], closures: list[tuple], solutions: list[tuple]
) -> list[dict[str, Any]]:
    """One point per date, assembled from the three aggregates."""
    points: dict[dt.date, dict[str, Any]] = {}
    for day, status, count, people, minors, european in by_status:
        point = points.setdefault(
            day,
            {
                "date": day.isoformat(),
                "sites": 0,
                "people": 0,
                "minors": 0,
                "european_people": 0,
                "by_status": dict.fromkeys(STATUSES, 0),
                "living_conditions": {},
                "closures": {"sites": 0, "people": 0, "solutions": []},
            },
        )
        if status is None:
            continue
        point["by_status"][status] = count
        if status == "open":
            point.update(sites=count, people=int(people), minors=int(minors), european_people=int(european))
    counts: dict[tuple[dt.date, str], dict[str, int]] = defaultdict(dict)
    for day, topic, rating, count in ratings:
        counts[(day, topic)][rating] = count
    for day, point in points.items():
        open_sites = point["sites"]
        point["living_conditions"] = {
            topic: {
                rating: round(counts[(day, topic)].get(rating, 0) / open_sites, 4) if open_sites else None
                for rating in RATINGS
            }
            for topic in TOPICS
        }
    for day, sites, people in closures:
        points[day]["closures"].update(sites=sites, people=int(people))
    for day, solution, people, households in solutions:
        points[day]["closures"]["solutions"].append(
            {"solution": solution, "people": int(people), "households": int(households)}
        )
    return [points[day] for day in sorted(points)]
