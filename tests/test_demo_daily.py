"""The daily work of the demonstration accounts (`resorption.demo.daily`): journal messages,
site actors and followed sites, the same rows at every run, read through the API by the
demo accounts as any user's. The rows are removed at the end: other tests count actors."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import requests

from resorption.demo.accounts import DEMO_PASSWORD, ensure_demo_accounts
from resorption.demo.daily import remove_daily_work, write_daily_work
from tests.fix_users import POLICY

CONTENT = (
    "SELECT created_by, site_id, message, tags, visibility::text, audience_users, created_at "
    "FROM resorption.site_comments WHERE created_by LIKE 'demo-%' ORDER BY id"
)


@pytest.fixture
def daily(database_url: str) -> Iterator[dict[str, int]]:
    ensure_demo_accounts(database_url, POLICY)
    yield write_daily_work(database_url)
    with psycopg.connect(database_url) as conn:
        remove_daily_work(conn)


def test_the_demo_accounts_have_daily_work(daily: dict[str, int], database_url: str, base_url: str) -> None:
    assert daily["site_messages"] >= 10 and daily["action_messages"] >= 3
    assert daily["actors"] >= 3 and daily["followed"] >= 3
    with psycopg.connect(database_url) as conn:
        first = conn.execute(CONTENT).fetchall()
        tags = {t for row in first for t in row[3]}
        visibilities = {row[4] for row in first}
        authors = {row[0] for row in first}
    assert len(tags) >= 4 and visibilities >= {"everyone", "state_services"} and len(authors) >= 2
    # Deterministic: a second run gives the same rows (not more).
    again = write_daily_work(database_url)
    assert again == daily
    with psycopg.connect(database_url) as conn:
        assert [r[:6] for r in conn.execute(CONTENT).fetchall()] == [r[:6] for r in first]
    # demo-gironde sees its sites followed, acted on, and their journal, through the API.
    auth = ("demo-gironde", DEMO_PASSWORD)
    sites = requests.get(
        f"{base_url}/collections/sites/items",
        params={"f": "json", "followed": "true", "limit": 50},
        auth=auth,
        timeout=60,
    ).json()
    assert sites["numberMatched"] >= 3
    assert all(f["properties"]["has_actor"] for f in sites["features"][:1])
    journal = requests.get(
        f"{base_url}/collections/site_comments/items",
        params={"f": "json", "limit": 100},
        auth=auth,
        timeout=60,
    ).json()
    assert journal["numberMatched"] >= 5
    # An observer of Seine-Saint-Denis reads none of the Gironde's messages.
    other = requests.get(
        f"{base_url}/collections/site_comments/items",
        params={"f": "json", "limit": 100},
        auth=("demo-observateur-93", DEMO_PASSWORD),
        timeout=60,
    ).json()
    assert all(f["properties"]["departement_code"] == "93" for f in other["features"])
