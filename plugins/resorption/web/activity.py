"""The activity feed of the signed-in caller: `/activites`.

What happened on the sites and actions the caller may read, newest first: sites declared,
changed, closed or confirmed, actions and their results, journal messages, actors declared.
The page reads the collection `activity` through the one reader (`FeatureReader`), as the
caller: every event is there only if the caller may read it at its source (row-level
security of the view's sources, sql/190_activity.sql), and a change names the fields the
caller may read, never their values. Filters: département or region, kind, dates; by default
the last 90 days (`DEFAULT_DAYS`), so that a first visit reads a bounded window. Pages go on
by the id of the last event shown (keyset: `apres`), which sorts newest first.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from resorption import statements
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.clock import PARIS, today
from resorption.errors import InvalidParameter
from resorption.params import parse_items
from resorption.reader import FeatureReader
from resorption.web.dashboard import base_url, render, signed_in

SQL = statements.load("web_activity")
PATH = "/activites"
PAGE_SIZE = 50
DEFAULT_DAYS = 90
# An event's id (sql/190_activity.sql, activity_key): 16 digits, a source letter, a key.
EVENT_ID = re.compile(r"\d{16}[a-z]\d{1,19}")
SUBJECTS = {"site": "sites", "action": "actions"}


def _day(raw: str | None, name: str) -> dt.date | None:
    """A date of the form (AAAA-MM-JJ), None when empty."""
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"{name} : une date s'écrit AAAA-MM-JJ, reçu « {raw[:20]} ».") from None


def _territories(caller: Caller) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The départements and regions the caller reads sites in, as (code, name)."""
    scope = caller.scope("activity")
    with caller.reading() as conn:
        rows = conn.execute(SQL.territories).fetchall()
    departements = [(code, f"{code} — {name}") for code, name, _, _ in rows if scope.contains(code)]
    regions = sorted({(rc, rn) for code, _, rc, rn in rows if scope.contains(code)})
    if not scope.nation:  # a region is offered whole only
        regions = [(rc, rn) for rc, rn in regions if all(scope.contains(c) for c, _, r, _ in rows if r == rc)]
    return departements, regions


def _field_labels(caller: Caller, subject: str | None, names: list[str]) -> list[str]:
    """The French names of the changed fields (as the collection `sites` or `actions` names them)."""
    collection: Collection | None = caller.catalog.get(SUBJECTS.get(subject or "", ""))
    if collection is None:
        return names
    return [collection.fields[n].label.fr if n in collection.fields else n for n in names]


def _event(caller: Caller, root: str, feature: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    p = feature["properties"]
    at = dt.datetime.fromisoformat(p["at"]).astimezone(PARIS)
    if p.get("site_id") is not None:
        subject, link = p.get("site_name") or f"Site {p['site_id']}", f"{root}/carte?site={p['site_id']}"
    else:
        action = p.get("action_id")
        subject, link = (
            p.get("action_name") or f"Action {action}",
            f"{root}/collections/actions/items/{action}",
        )
    return {
        "at": at,
        "kind": p["kind"],
        "kind_label": kinds.get(p["kind"], p["kind"]),
        "subject": subject,
        "link": link,
        "departement": p.get("departement_code"),
        "author": p.get("author"),
        "organisation": p.get("organisation"),
        "summary": p.get("summary"),
        "fields": _field_labels(caller, p.get("subject"), list(p.get("fields") or [])),
    }


def _query(
    collection: Collection, caller: Caller, form: Mapping[str, str], start: dt.date, end: dt.date | None
) -> Any:
    """The feed's query: the filters of the form as the API takes them."""
    args = {
        "limit": str(PAGE_SIZE),
        "datetime": f"{start.isoformat()}/{end.isoformat() if end else '..'}",
    }
    for name, field in (("departement", "departement_code"), ("region", "region_code"), ("nature", "kind")):
        if form.get(name):
            args[field] = form[name][:40]
    fq = parse_items(collection, caller.readable_fields(collection), args, caller.settings.limits)
    after = form.get("apres")
    if after:
        if not EVENT_ID.fullmatch(after):
            raise InvalidParameter(f"apres doit être l'identifiant d'un événement, reçu « {after[:40]} ».")
        fq = replace(fq, after=after)
    return fq


def blueprint(api: Any) -> Blueprint:
    """The feed's route, rendering with pygeoapi's templates of `api`."""
    bp = Blueprint("activity", __name__)

    @bp.get(PATH)
    def feed() -> Response:
        caller = signed_in(csv=False)
        if isinstance(caller, Response):
            return caller
        collection = caller.catalog["activity"]
        form = request.args
        start = _day(form.get("du"), "du") or today() - dt.timedelta(days=DEFAULT_DAYS)
        end = _day(form.get("au"), "au")
        if end is not None and end < start:
            raise InvalidParameter("au : la fin de la période précède son début.")
        kinds = dict(collection.fields["kind"].enum or {})
        departements, regions = _territories(caller)
        page = FeatureReader(caller, collection).features(_query(collection, caller, form, start, end))
        root = base_url(api)
        events = [_event(caller, root, f, kinds) for f in page["features"]]
        chosen = {k: form.get(k, "") for k in ("departement", "region", "nature")}
        following = None
        if len(events) == PAGE_SIZE:
            query = {**{k: v for k, v in chosen.items() if v}, "du": start.isoformat()}
            if end:
                query["au"] = end.isoformat()
            query["apres"] = page["features"][-1]["id"]
            following = f"{root}{PATH}?{urllib.parse.urlencode(query)}"
        api_query = {"f": "html", "datetime": f"{start.isoformat()}/{end.isoformat() if end else '..'}"}
        for name, field in (
            ("departement", "departement_code"),
            ("region", "region_code"),
            ("nature", "kind"),
        ):
            if chosen[name]:
                api_query[field] = chosen[name]
        data = {
            "events": events,
            "kinds": kinds,
            "departements": departements,
            "regions": regions,
            "chosen": chosen,
            "start": start,
            "end": end,
            "default_days": DEFAULT_DAYS,
            "continued": bool(form.get("apres")),
            "first_page": f"{root}{PATH}",
            "following": following,
            "api_url": f"{root}/collections/activity/items?{urllib.parse.urlencode(api_query)}",
            "links": [],
        }
        return Response(render(api, "activity/index.html", data), content_type="text/html; charset=utf-8")

    return bp
