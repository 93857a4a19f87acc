"""Demonstration accounts: FICTIONAL users to sign in to the demo data with.

Their password is public (it is printed by `make demo`): they exist only alongside the
synthetic demo data, never in a deployment (`resorption db setup --no-demo`).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from resorption import statements
from resorption.accounts import (
    create_organisation,
    create_user,
    get_user,
    list_organisations,
    set_options,
    set_password,
)
from resorption.errors import NotFound
from resorption.policy import Policy

SQL = statements.load("demo_accounts")

DEMO_PASSWORD = "demo-resorption"
# Their messages go to the project's local SMTP server (`make demo`, page /courriels).
DEMO_MAIL_DOMAIN = "demo.resorption.localhost"
ORGANISATION = "Équipe de démonstration (démo)"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """One demonstration user: what it shows."""

    username: str
    role: str
    area: str
    options: tuple[str, ...]
    shows: str


ACCOUNTS = (
    DemoAccount("demo-national", "national_admin", "nation", (), "tous les sites et tous les champs"),
    DemoAccount(
        "demo-gironde",
        "operator",
        "departement:33",
        ("access_justice", "create_site"),
        "les sites de la Gironde, procédures judiciaires comprises, sans les propriétaires ; "
        "déclare et modifie des sites",
    ),
    DemoAccount(
        "demo-observateur-93",
        "external_observer",
        "departement:93",
        (),
        "les sites de la Seine-Saint-Denis, sans aucun champ sensible",
    ),
)


def ensure_demo_accounts(database_url: str, policy: Policy) -> tuple[DemoAccount, ...]:
    """Create the demonstration accounts when missing (idempotent) and reset their password."""
    if not any(o.name == ORGANISATION for o in list_organisations(database_url)):
        create_organisation(database_url, ORGANISATION, "other")
    for account in ACCOUNTS:
        try:
            user = get_user(database_url, account.username)
            if sorted(user.options) != sorted(account.options):  # an account of an older definition
                set_options(database_url, policy, account.username, account.options)
        except NotFound:
            create_user(
                database_url,
                policy,
                username=account.username,
                organisation=ORGANISATION,
                role=account.role,
                area=account.area,
                options=account.options,
                full_name="Compte de démonstration",
            )
        set_password(database_url, account.username, DEMO_PASSWORD)
    with psycopg.connect(database_url) as conn:
        for account in ACCOUNTS:
            # an address of the demo, and the weekly digest of their territory (resorption.digests)
            conn.execute(SQL.set_email, (f"{account.username}@{DEMO_MAIL_DOMAIN}", account.username))
            conn.execute(SQL.subscribe, (account.username,))
    return ACCOUNTS
