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
