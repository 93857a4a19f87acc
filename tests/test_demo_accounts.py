"""The demonstration accounts that `make demo` prints: they sign in and see what they say."""

from __future__ import annotations

import psycopg
import requests

from resorption.demo.accounts import ACCOUNTS, DEMO_PASSWORD, ensure_demo_accounts
from tests.fix_users import POLICY


def test_demo_accounts_sign_in_with_basic(
    database_url: str, anonymous: requests.Session, db: psycopg.Connection
) -> None:
    ensure_demo_accounts(database_url, POLICY)
    ensure_demo_accounts(database_url, POLICY)  # idempotent
    assert db.execute(
        "SELECT count(*) FROM resorption.users WHERE username = ANY(%s)", ([a.username for a in ACCOUNTS],)
    ).fetchone()[0] == len(ACCOUNTS)
    gironde = anonymous.get(
        "/collections/sites/items",
        params={"limit": 1000, "properties": "departement_code"},
        auth=("demo-gironde", DEMO_PASSWORD),
    )
    assert gironde.status_code == 200, gironde.text
    assert {f["properties"]["departement_code"] for f in gironde.json()["features"]} == {"33"}
    national = anonymous.get(
        "/collections/sites/items", params={"limit": 1}, auth=("demo-national", DEMO_PASSWORD)
    ).json()
    assert "owner_name" in national["features"][0]["properties"]
    refused = anonymous.get("/collections/sites/items", auth=("demo-national", "mauvais-mot-de-passe"))
    assert refused.status_code == 401


def test_demo_accounts_follow_their_definition(database_url: str, db: psycopg.Connection) -> None:
    """An account made by an older definition (demo-gironde without create_site) gets the
    options of the current one: the demonstration shows the forms it announces."""
    ensure_demo_accounts(database_url, POLICY)
    db.execute("UPDATE resorption.users SET options = '{access_justice}' WHERE username = 'demo-gironde'")
    ensure_demo_accounts(database_url, POLICY)
    options = db.execute(
        "SELECT options::text[] FROM resorption.users WHERE username = 'demo-gironde'"
    ).fetchone()[0]
    assert sorted(options) == ["access_justice", "create_site"]
