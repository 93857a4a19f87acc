"""The dashboard of a territory: `/tableau-de-bord/<territoire>`, as charts and as CSV.

A territory is written `nation`, `region-75` or `departement-33`. Its figures are those of
the `territory-statistics` process, run here as the signed-in caller (same code, same read
role, same row-level security as `POST /processes/territory-statistics/execution`), so the
page, its CSV and the API always agree. The picker offers only the territories the caller
may read whole; any other territory answers 404, exactly as one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, redirect, request
from pygeoapi.util import render_j2_template

from resorption import statements
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.errors import InvalidParameter, NotFound, Unauthorized
from resorption.identity import Principal
from resorption.processes import territory_statistics as stats
from resorption.processes.base import Inputs, today
from resorption.spreadsheets.writers import csv_bytes
from resorption.web.sessions import sign_in_redirect

SQL = statements.load("web_dashboard")
PATH = "/tableau-de-bord"
# The French names of the steps in URLs, and the process's.
STEPS = {"mois": "month", "trimestre": "quarter", "annee": "year"}
STEP_LABELS = {"mois": "par mois", "trimestre": "par trimestre", "annee": "par année"}
DEFAULT_YEARS = 3
# The closing solutions have no label in the catalog (they are rows of their own table).
SOLUTIONS = {
    "emergency_shelter": "Hébergement d'urgence",
    "integration_shelter": "Hébergement d'insertion",
    "transitional_housing": "Logement temporaire ou intermédiaire",
    "social_housing": "Logement social",
    "private_housing": "Logement privé",
    "voluntary_return": "Retour volontaire",
    "eti": "Espace temporaire d'insertion",
    "other": "Autre solution",
}


@dataclass(frozen=True, slots=True)
class Territory:
    """The nation, a region or a département, as the dashboard names it."""

    level: str
    code: str | None
    name: str

    @property
    def slug(self) -> str:
        """Its part of the URL: `nation`, `region-75`, `departement-33`."""
        return self.level if self.code is None else f"{self.level}-{self.code}"

    @property
    def label(self) -> str:
        """Its name for people: « Gironde (33) », « Nouvelle-Aquitaine », « France entière »."""
        return f"{self.name} ({self.code})" if self.level == "departement" else self.name


NATION = Territory("nation", None, "France entière")


@dataclass(frozen=True, slots=True)
class Choices:
    """The territories a caller may open: those whose every site they may read."""

    nation: bool
    regions: tuple[Territory, ...]
    departements: tuple[Territory, ...]

    def all(self) -> Iterable[Territory]:
        """Every territory of the picker, in its order."""
        return ((NATION,) if self.nation else ()) + self.regions + self.departements

    def find(self, slug: str) -> Territory | None:
        """The territory named `slug` if the caller may open it."""
        return next((t for t in self.all() if t.slug == slug), None)


@dataclass(frozen=True, slots=True)
class Period:
    """The dates of the series: from `start` by `step` (French name), plus `end`."""

    start: dt.date
    end: dt.date
    step: str

    def query(self) -> dict[str, str]:
        """Its URL parameters."""
        return {"debut": self.start.isoformat(), "fin": self.end.isoformat(), "pas": self.step}


def choices(caller: Caller, collection: str = "sites") -> Choices:
    """The picker of `caller`: its read scope of `collection`, as whole regions and départements."""
    scope = caller.scope(collection)
    with caller.reading() as conn:
        rows = conn.execute(SQL.departements_with_regions).fetchall()
    departements = tuple(Territory("departement", d, name) for d, name, _, _ in rows if scope.contains(d))
    members: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for d, _, region, region_name in rows:
        members.setdefault(region, []).append(d)
        names[region] = region_name
    regions = tuple(
        Territory("region", r, names[r])
        for r in sorted(members, key=lambda r: names[r])
        if all(scope.contains(d) for d in members[r])
    )
    return Choices(scope.nation, regions, departements)


def home_territory(principal: Principal, offered: Choices) -> Territory | None:
    """The caller's own intervention area (a commune or EPCI opens its département)."""
    wanted = "nation"
    if principal.area_level == "region":
        wanted = f"region-{principal.area_code}"
    elif principal.area_departements and len(principal.area_departements) == 1:
        wanted = f"departement-{next(iter(principal.area_departements))}"
    return offered.find(wanted) or next(iter(offered.all()), None)


def period_of(args: Mapping[str, str]) -> Period:
    """The period asked for in the URL; by default the last three years, month by month.

    The default start is the same day three years before the end, so that the dates of every
    step fall on the end: the closures of each step then follow one another without overlap.
    """
    end = _date(args, "fin") or today()
    start = _date(args, "debut") or _years_before(end, DEFAULT_YEARS)
    step = args.get("pas") or "mois"
    if step not in STEPS:
        raise InvalidParameter(
            f"Pas « {step[:20]} » inconnu : choisissez pas=mois, pas=trimestre ou pas=annee."
        )
    if end > today():
        raise InvalidParameter("La date de fin (fin) est dans le futur : choisissez une date passée.")
    if start > end:
        raise InvalidParameter("La date de début (debut) est après la date de fin (fin) : inversez-les.")
    return Period(start, end, step)


def _years_before(day: dt.date, years: int) -> dt.date:
    """The same day `years` years before (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _date(args: Mapping[str, str], name: str) -> dt.date | None:
    value = args.get(name)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(
            f"Date « {value[:20]} » illisible pour « {name} » : "
            "écrivez-la AAAA-MM-JJ (par exemple 2024-01-31)."
        ) from None


def statistics(caller: Caller, territory: Territory, period: Period) -> dict[str, Any]:
    """The output of `territory-statistics` for this territory and period, read as `caller`."""
    data: dict[str, Any] = {
        "level": territory.level,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "step": STEPS[period.step],
    }
    if territory.code is not None:
        data["code"] = territory.code
    processor = stats.Processor({"name": stats.PROCESS_METADATA["id"]})
    return processor.run(caller, Inputs.of(data, tuple(stats.PROCESS_METADATA["inputs"])))


# -- the figures as columns: one table for the CSV, the page's table and its charts ----------


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the series: its French header and how to read it from a point."""

    key: str
    header: str
    read: Callable[[Mapping[str, Any]], int | float | str | None]
    percent: bool = False


def columns(sites: Collection) -> list[Column]:
    """Every figure of a point, labelled from the catalog (statuses, topics, ratings)."""
    statuses = sites.fields["status"].enum
    cols = [
        Column("date", "Date", lambda p: p["date"]),
        Column("sites", "Sites ouverts", lambda p: p["sites"]),
        Column("people", "Personnes", lambda p: p["people"]),
        Column("minors", "Mineurs", lambda p: p["minors"]),
        Column("european_people", "Personnes d'origine européenne", lambda p: p["european_people"]),
    ]
    cols += [
        Column(f"status.{s}", f"Sites au statut « {statuses.get(s, s)} »", _reader("by_status", s))
        for s in stats.STATUSES
    ]
    cols += [
        Column("closures.sites", "Sites fermés pendant le pas", _reader("closures", "sites")),
        Column("closures.people", "Personnes des sites fermés", _reader("closures", "people")),
    ]
    for solution, label in SOLUTIONS.items():
        cols.append(
            Column(f"solution.{solution}.people", f"{label} : personnes", _solution(solution, "people"))
        )
        cols.append(
            Column(f"solution.{solution}.households", f"{label} : ménages", _solution(solution, "households"))
        )
    for topic in stats.TOPICS:
        field = sites.fields[f"{topic}_rating"]
        name = field.label.fr.removesuffix(" (synthèse)")
        for rating in stats.RATINGS:
            cols.append(
                Column(
                    f"living.{topic}.{rating}",
                    f"{name} : part des sites « {field.enum[rating]} » (%)",
                    _share(topic, rating),
                    percent=True,
                )
            )
    return cols


def _reader(part: str, key: str) -> Callable[[Mapping[str, Any]], int]:
    return lambda p: p[part][key]


def _solution(solution: str, key: str) -> Callable[[Mapping[str, Any]], int]:
    return lambda p: sum(s[key] for s in p["closures"]["solutions"] if s["solution"] == solution)


def _share(topic: str, rating: str) -> Callable[[Mapping[str, Any]], float | None]:
    def read(p: Mapping[str, Any]) -> float | None:
        share = p["living_conditions"][topic][rating]
        return None if share is None else round(share * 100, 2)

    return read


def french_date(iso: str) -> str:
    """2024-01-31 → 31/01/2024."""
    return dt.date.fromisoformat(iso).strftime("%d/%m/%Y")


def french_integer(value: int) -> str:
    """12345 → « 12 345 » (narrow no-break space between thousands)."""
    return f"{value:,}".replace(",", "\u202f")


# The columns of the page's table (the CSV has them all).
TABLE_COLUMNS = (
    ("date", "Date"),
    ("sites", "Sites ouverts"),
    ("people", "Personnes"),
    ("minors", "Mineurs"),
    ("european_people", "Personnes d'origine européenne"),
    ("closures.sites", "Sites fermés pendant le pas"),
    ("closures.people", "Personnes des sites fermés"),
)


def csv_file(series: list[Mapping[str, Any]], sites: Collection) -> bytes:
    """The series as CSV for French Excel (the exports' writer: BOM, `;`, decimal comma)."""
    cols = columns(sites)
    return csv_bytes(cols, ([c.read(point) for c in cols] for point in series), lambda c: c.header)


def chart_data(series: list[Mapping[str, Any]], sites: Collection) -> dict[str, Any]:
    """What dashboard.js draws: labelled series, living conditions at the last date."""
    ratings = sites.fields["water_rating"].enum
    last = series[-1]
    return {
        "dates": [p["date"] for p in series],
        "sites": [p["sites"] for p in series],
        "people": [p["people"] for p in series],
        "minors": [p["minors"] for p in series],
        "closures": {
            "sites": [p["closures"]["sites"] for p in series],
            "people": [p["closures"]["people"] for p in series],
        },
        "solutions": [
            {"label": label, "people": [_solution(s, "people")(p) for p in series]}
            for s, label in SOLUTIONS.items()
        ],
        "living": {
            "topics": [
                sites.fields[f"{t}_rating"].label.fr.removesuffix(" (synthèse)") for t in stats.TOPICS
            ],
            "ratings": [
                {
                    "label": ratings[r],
                    "key": r,
                    "shares": [_share(t, r)(last) for t in stats.TOPICS],
                }
                for r in stats.RATINGS
            ],
        },
    }


# -- the views ------------------------------------------------------------------------------------


def blueprint(api: Any) -> Blueprint:
    """The dashboard's routes, rendering with pygeoapi's templates and configuration of `api`."""
    bp = Blueprint("dashboard", __name__)

    @bp.get(PATH)
    def home() -> Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        offered = choices(caller)
        wanted = request.args.get("territoire")
        territory = offered.find(wanted) if wanted else home_territory(caller.principal, offered)
        if territory is None:
            return _not_found(api, offered, wanted or "")
        query = {k: v for k, v in request.args.items() if k in ("debut", "fin", "pas") and v}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return redirect(f"{base_url(api)}{PATH}/{territory.slug}{suffix}", HTTPStatus.FOUND)

    @bp.get(f"{PATH}/<slug>")
    def territory(slug: str) -> Response:
        as_csv = slug.endswith(".csv") or request.args.get("f") == "csv"
        slug = slug.removesuffix(".csv")
        caller = signed_in(csv=as_csv)
        if isinstance(caller, Response):
            return caller
        offered = choices(caller)
        place = offered.find(slug)
        if place is None:
            if as_csv:
                raise NotFound(_missing(slug))
            return _not_found(api, offered, slug)
        period = period_of(request.args)
        result = statistics(caller, place, period)
        if as_csv:
            return _csv(place, period, result["series"], caller.sites)
        return _page(api, offered, place, period, result, caller.sites)

    return bp


def signed_in(csv: bool) -> Caller | Response:
    """The caller; anonymous: to the sign-in page (HTML) or 401 (CSV)."""
    caller = Caller.of_request()
    if not caller.principal.is_anonymous:
        return caller
    if csv:
        raise Unauthorized("Authentification requise pour télécharger les chiffres d'un territoire.")
    return sign_in_redirect(request)


def _missing(slug: str, where: str = f"depuis {PATH}") -> str:
    return (
        f"Aucun tableau de bord « {slug[:40]} » parmi les territoires que vous pouvez consulter : "
        f"choisissez-en un {where}."
    )


def base_url(api: Any) -> str:
    return str(api.config["server"]["url"]).rstrip("/")


def _csv(place: Territory, period: Period, series: list[Mapping[str, Any]], sites: Collection) -> Response:
    # The name says what and when.
    name = f"tableau-de-bord-{place.slug}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(
        csv_file(series, sites),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def render(api: Any, template: str, data: dict[str, Any]) -> str:
    return render_j2_template(
        api.tpl_config, api.config["server"]["templates"], template, data, api.default_locale
    )


def _page(
    api: Any, offered: Choices, place: Territory, period: Period, result: dict[str, Any], sites: Collection
) -> Response:
    series = result["series"]
    base = base_url(api)
    data = {
        "territory": place,
        "choices": offered,
        "period": period,
        "steps": STEP_LABELS,
        "first": series[0],
        "last": series[-1],
        "intervention": result.get("intervention"),
        "series": series,
        "charts": chart_data(series, sites),
        "csv_url": f"{base}{PATH}/{place.slug}.csv?{urllib.parse.urlencode(period.query())}",
        "process_url": f"{base}/processes/{stats.PROCESS_METADATA['id']}",
        "dashboard_path": f"{base}{PATH}",
        "table_columns": TABLE_COLUMNS,
        "fr_date": french_date,
        "number": french_integer,
        "links": [],
    }
    return Response(render(api, "dashboard/index.html", data), content_type="text/html; charset=utf-8")


def _not_found(api: Any, offered: Choices, slug: str) -> Response:
    data = {
        "message": _missing(slug, "ci-dessous"),
        "choices": offered,
        "dashboard_path": f"{base_url(api)}{PATH}",
        "links": [],
    }
    return Response(
        render(api, "dashboard/introuvable.html", data),
        status=HTTPStatus.NOT_FOUND,
        content_type="text/html; charset=utf-8",
    )
