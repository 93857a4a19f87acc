"""The upkeep of accounts, run from cron (`resorption comptes entretien`).

- An account without a sign-in (browser session, password over HTTP Basic, token use) for
  `months` months gets a warning by e-mail (any use since clears it); still unused
  `notice_days` days after the warning, it is deactivated (every session and token ends, it
  is told, the audit log says why).
- Access requests pending for `remind_days` days remind the administrators of their territory
  (again every `remind_days` days while nobody decides).
- A new version of the charter of use (config/charte.yml) is told by e-mail, once, to every
  account that accepted an earlier one; it is asked again at their next sign-in.

Run as the owner of the tables, like the account commands: each account is handled in a
transaction of its own, with its e-mail written to the outbox in that same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from resorption import mail, statements
from resorption.lifecycle import load_charter
from resorption.policy import Policy
from resorption.settings import Settings

SQL = statements.load("account_upkeep")


@dataclass(frozen=True, slots=True)
class Upkeep:
    """What a run did."""

    warned: int
    deactivated: int
    reminded: int
    told: int = 0  # of a new charter


def run(
    settings: Settings, policy: Policy, months: int = 6, notice_days: int = 30, remind_days: int = 7
) -> Upkeep:
    """Warn, then deactivate, unused accounts; remind administrators of pending requests."""
    warned = deactivated = reminded = 0
    login = f"{settings.public_url}/connexion"
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        with conn.transaction():
            conn.execute(SQL.clear_warnings)
        for user in conn.execute(SQL.to_warn, {"months": months}).fetchall():
            with conn.transaction():
                message = mail.compose(
                    "inactivity_warning",
                    {
                        "name": user["name"],
                        "username": user["username"],
                        "months": months,
                        "days": notice_days,
                        "link": login,
                    },
                )
                mail.queue(conn, "inactivity_warning", user["id"], user["email"], message)
                conn.execute(SQL.mark_warned, (user["id"],))
                warned += 1
        for user in conn.execute(SQL.to_deactivate, {"days": notice_days}).fetchall():
            with conn.transaction():
                ended = conn.execute(SQL.deactivate, {"id": user["id"]}).fetchone()["ended"]
                conn.execute(
                    SQL.audit, (user["id"], Jsonb({**ended, "motif": f"inactif depuis {months} mois"}))
                )
                if user["email"]:
                    message = mail.compose(
                        "inactivity_deactivated", {"name": user["name"], "username": user["username"]}
                    )
                    mail.queue(conn, "inactivity_deactivated", user["id"], user["email"], message)
                deactivated += 1
        waiting = conn.execute(SQL.waiting_requests, {"days": remind_days}).fetchall()
        by_manager: dict[int, list[dict[str, Any]]] = defaultdict(list)
        addresses: dict[int, str] = {}
        for request in waiting:
            for manager in conn.execute(
                SQL.managers_of, (request["departement_code"], Jsonb(policy.managers()))
            ).fetchall():
                by_manager[manager["id"]].append(request)
                addresses[manager["id"]] = manager["email"]
        with conn.transaction():
            for manager_id, requests in by_manager.items():
                message = mail.compose(
                    "access_request_reminder",
                    {
                        "requests": requests,
                        "count": len(requests),
                        "days": remind_days,
                        "link": f"{settings.public_url}/administration/demandes",
                    },
                )
                mail.queue(conn, "access_request_reminder", manager_id, addresses[manager_id], message)
                reminded += 1
            conn.execute(SQL.mark_reminded, ([r["id"] for r in waiting],))
        told = _tell_charter(conn, settings)
    return Upkeep(warned, deactivated, reminded, told)


def _tell_charter(conn: psycopg.Connection[dict[str, Any]], settings: Settings) -> int:
    """Tell each account that accepted an earlier charter of the new one, once."""
    charter = load_charter(settings.charter_path)
    told = 0
    for user in conn.execute(SQL.charter_to_tell, {"version": charter.version}).fetchall():
        with conn.transaction():
            message = mail.compose(
                "charter_changed",
                {
                    "name": user["name"],
                    "version": charter.version,
                    "previous": user["charter_version"],
                    "title": charter.title,
                    "link": f"{settings.public_url}/charte",
                },
            )
            mail.queue(conn, "charter_changed", user["id"], user["email"], message)
            conn.execute(SQL.mark_charter_told, (charter.version, user["id"]))
            told += 1
    return told
