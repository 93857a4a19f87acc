"""Digests, alerts and reminders by e-mail, each composed as its recipient.

A message about the data is read under the recipient's own database role and scope: a
`Caller` of the recipient's principal reads the activity feed (collection `activity`, the
same reader as `/activites` and the API), so that a digest never holds a row or a field the
recipient may not read. Only the bookkeeping (who subscribed to what, the watermarks, the
outbox) is done as the owner of the tables.

- Weekly digest (`weekly_digest`): the events of the last seven days of the recipient's feed,
  grouped by kind, and the accounts opened on the territories they read (name, organisation,
  role, area: the directory entry, nothing more); sent when the last one is six days old or more.
- Alerts (`site_alerts`): the closures of, and journal messages on, the sites the recipient
  follows, polled from their feed since the stored watermark (the start of the previous
  poll, with a minute's overlap: an event is alerted once, by its id).
- Yearly reminder (`indicator_reminder`): to those who may write actions, once a year.

Run from cron: `resorption courriels resumes`, `resorption courriels alertes`,
`resorption courriels rappels`; then `resorption courriels envoyer` sends them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from resorption import mail, statements
from resorption.authentication import principal_of_user
from resorption.caller import Caller
from resorption.clock import PARIS
from resorption.params import parse_items
from resorption.reader import FeatureReader
from resorption.settings import Settings

SQL = statements.load("digests")
MAX_EVENTS = 200
GROUPS = (
    ("Sites déclarés", ("site_created",)),
    ("Sites fermés", ("site_closed",)),
    (
        "Sites modifiés, confirmés ou rouverts",
        ("site_updated", "site_confirmed", "site_reopened", "site_deleted"),
    ),
    ("Messages des journaux", ("comment",)),
    ("Actions", ("action_created", "action_updated", "action_deleted", "action_results", "action_finances")),
    ("Intervenants déclarés", ("actor_declared",)),
)
ALERT_KINDS = ("site_closed", "comment")
# Alerts read again the last minute before the watermark: an event whose transaction began
# before the previous poll but committed after it is still seen (and alerted once, by its id).
OVERLAP = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A subscriber: their account and the watermark of their subscription."""

    user_id: int
    username: str
    email: str
    name: str
    watermark: dt.datetime
    alerted: tuple[str, ...] = ()


def _recipients(settings: Settings, kind: str, usernames: Iterable[str] | None) -> list[Recipient]:
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            SQL.subscribers, {"kind": kind, "usernames": list(usernames) if usernames else None}
        ).fetchall()
    return [Recipient(**{**r, "alerted": tuple(r["alerted"])}) for r in rows]


def events(
    caller: Caller, start: dt.datetime, end: dt.datetime, limit: int = MAX_EVENTS
) -> list[dict[str, Any]]:
    """The caller's feed between `start` and `end`, newest first, as the API gives it to them."""
    collection = caller.catalog["activity"]
    args = {
        "limit": str(limit),
        "datetime": f"{start.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')}/"
        f"{end.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')}",
    }
    fq = parse_items(collection, caller.readable_fields(collection), args, caller.settings.limits)
    page = FeatureReader(caller, collection).features(fq)
    kinds = dict(collection.fields["kind"].enum or {})
    return [_event(caller, f, kinds) for f in page["features"]]


def _event(caller: Caller, feature: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    p = feature["properties"]
    root = caller.settings.public_url
    if p.get("site_id") is not None:
        subject, link = p.get("site_name") or f"Site {p['site_id']}", f"{root}/carte?site={p['site_id']}"
    else:
        subject = p.get("action_name") or f"Action {p.get('action_id')}"
        link = f"{root}/actions/{p.get('action_id')}"
    collection = caller.catalog.get({"site": "sites", "action": "actions"}.get(p.get("subject") or "", ""))
    fields = list(p.get("fields") or [])
    if collection is not None:
        fields = [collection.fields[n].label.fr if n in collection.fields else n for n in fields]
    return {
        "id": feature["id"],
        "at": dt.datetime.fromisoformat(p["at"]).astimezone(PARIS),
        "kind": p["kind"],
        "kind_label": kinds.get(p["kind"], p["kind"]),
        "subject": subject,
        "site_id": p.get("site_id"),
        "link": link,
        "departement": p.get("departement_code"),
        "author": p.get("author"),
        "summary": p.get("summary") or kinds.get(p["kind"], p["kind"]),
        "fields": fields,
    }


AREA_LABELS = {
    "nation": "national",
    "region": "région",
    "departement": "département",
    "epci": "EPCI",
    "commune": "commune",
}


def new_users(
    caller: Caller, start: dt.datetime, end: dt.datetime, limit: int = MAX_EVENTS
) -> list[dict[str, str]]:
    """The accounts opened between `start` and `end` whose area meets where `caller` reads sites.

    Users are private (no request role reads them): the owner reads the directory entries, and
    the caller's read scope from the policy chooses them, as `site_actor_user` does for actors."""
    scope = caller.scope("sites")
    if scope.is_empty:
        return []
    with psycopg.connect(caller.settings.database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            SQL.new_users,
            {
                "start": start,
                "end": end,
                "nation": scope.nation,
                "departements": sorted(scope.departements),
                "limit": limit,
            },
        ).fetchall()
    roles = {n: r.label.fr for n, r in caller.policy.roles.items()}
    return [
        {
            "name": r["name"],
            "organisation": r["organisation"],
            "role": roles.get(r["role"], r["role"]),
            "area": " ".join(filter(None, (AREA_LABELS.get(r["area_level"]), r["area_code"]))),
        }
        for r in rows
    ]


def compose_digest(caller: Caller, name: str, start: dt.datetime, end: dt.datetime) -> mail.Mail:
    """The weekly digest of `caller`, read as them."""
    found = events(caller, start, end, MAX_EVENTS + 1)
    truncated = len(found) > MAX_EVENTS
    found = found[:MAX_EVENTS]
    groups = []
    for label, kinds in GROUPS:
        chosen = [e for e in found if e["kind"] in kinds]
        if chosen:
            groups.append({"label": label, "events": chosen})
    root = caller.settings.public_url
    return mail.compose(
        "weekly_digest",
        {
            "name": name,
            "start": start.astimezone(PARIS),
            "end": end.astimezone(PARIS),
            "groups": groups,
            "users": new_users(caller, start, end),
            "count": len(found),
            "truncated": truncated,
            "feed": f"{root}/activites",
            "account": f"{root}/mon-compte",
        },
    )


def _caller(settings: Settings, username: str) -> Caller | None:
    principal = principal_of_user(username, settings, method="mail")
    return None if principal is None else Caller.of(principal, settings)


def weekly_digests(
    settings: Settings,
    now: dt.datetime | None = None,
    usernames: Iterable[str] | None = None,
    force: bool = False,
) -> int:
    """Queue the weekly digest of every subscriber due (all of `usernames` with `force`)."""
    now = now or dt.datetime.now(dt.UTC)
    queued = 0
    for r in _recipients(settings, "weekly_digest", usernames):
        if not force and r.watermark > now - dt.timedelta(days=6):
            continue
        caller = _caller(settings, r.username)
        if caller is None:
            continue
        message = compose_digest(caller, r.name, now - dt.timedelta(days=7), now)
        _queue(settings, "weekly_digest", r, message, now)
        queued += 1
    return queued


def site_alerts(settings: Settings, now: dt.datetime | None = None) -> int:
    """Queue an alert for each subscriber whose followed sites were closed or got a message."""
    now = now or dt.datetime.now(dt.UTC)
    queued = 0
    for r in _recipients(settings, "site_alerts", None):
        caller = _caller(settings, r.username)
        if caller is None:
            continue
        with caller.reading() as conn:
            followed = {row[0] for row in conn.execute(SQL.followed_sites).fetchall()}
        window = events(caller, r.watermark - OVERLAP, now)
        found = [
            e
            for e in window
            if e["kind"] in ALERT_KINDS and e["site_id"] in followed and e["id"] not in r.alerted
        ]
        if found:
            message = mail.compose(
                "site_alert",
                {
                    "name": r.name,
                    "events": found,
                    "summary": found[0]["kind_label"]
                    + " : "
                    + found[0]["subject"]
                    + (f" (+{len(found) - 1})" if len(found) > 1 else ""),
                    "account": f"{settings.public_url}/mon-compte",
                },
            )
            queued += 1
        else:
            message = None
        # the alerted events the next poll reads again (its overlap), so that it skips them
        alerted = {e["id"] for e in found} | set(r.alerted)
        again = [e["id"] for e in window if e["at"] >= now - OVERLAP and e["id"] in alerted]
        _queue(settings, "site_alert", r, message, now, again)
    return queued


def indicator_reminders(settings: Settings, now: dt.datetime | None = None, force: bool = False) -> int:
    """Queue the yearly reminder to subscribers who may write actions (once a year each)."""
    now = now or dt.datetime.now(dt.UTC)
    queued = 0
    for r in _recipients(settings, "indicator_reminder", None):
        if not force and r.watermark > now - dt.timedelta(days=360):
            continue
        caller = _caller(settings, r.username)
        if caller is None or caller.scope("actions", "write").is_empty:
            continue
        message = mail.compose(
            "indicator_reminder",
            {
                "name": r.name,
                "link": f"{settings.public_url}/actions",
                "account": f"{settings.public_url}/mon-compte",
            },
        )
        _queue(settings, "indicator_reminder", r, message, now)
        queued += 1
    return queued


def _queue(
    settings: Settings,
    kind: str,
    r: Recipient,
    message: mail.Mail | None,
    now: dt.datetime,
    alerted: list[str] | None = None,
) -> None:
    """The message to the outbox and the new watermark, in one transaction (as the owner)."""
    with psycopg.connect(settings.database_url) as conn:
        if message is not None:
            mail.queue(conn, kind, r.user_id, r.email, message)
        subscription = "site_alerts" if kind == "site_alert" else kind
        conn.execute(SQL.advance, (now, sorted(set(alerted or [])), r.user_id, subscription))
