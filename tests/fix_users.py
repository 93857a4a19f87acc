"""Users of every role of the access policy, with API tokens, for the access-control tests.

One user per role × option set × area, created straight in the database as the
owner (the accounts module has its own tests), each with a token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from resorption.catalog import load_catalog
from resorption.policy import Policy, load_policy

ROOT = Path(__file__).resolve().parents[1]
POLICY = load_policy(ROOT / "config" / "access-policy.yml", ROOT / "collections")
CATALOG = load_catalog(ROOT / "collections")
# Two départements with many demo sites, in different regions.
AREA, OTHER_AREA = "33", "93"


@dataclass(frozen=True)
class TestUser:
    """A user the tests sign in as."""

    __test__ = False  # not a test class, despite its name

    username: str
    role: str
    options: frozenset[str]
    area_level: str
    area_code: str | None
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def user_cases(policy: Policy) -> list[tuple[str, frozenset[str], str, str | None]]:
    """(role, options, area level, area code) to cover: each role without and with every option,
    in one département, plus national areas for roles whose rules depend on the area."""
    cases = []
    for role in policy.roles:
        for options in (frozenset(), frozenset(policy.options)):
            cases.append((role, options, "departement", AREA))
        cases.append((role, frozenset(), "nation", None))
    cases.append(("operator", frozenset(), "commune", "33063"))  # Bordeaux widens to Gironde
    return cases


# Users outside the access matrix: an operator of another département, who must see nothing of 33.
NEIGHBOURS = [("operator", frozenset[str](), "departement", OTHER_AREA)]


def _username(role: str, options: frozenset[str], level: str, code: str | None) -> str:
    suffix = "-opts" if options else ""
    return f"{role.replace('_', '-')}{suffix}-{level}{'-' + code if code else ''}".lower()


@pytest.fixture(scope="session")
def users(database_url: str) -> dict[str, TestUser]:
    """Every test user by username; their tokens are valid for a day."""
    created: dict[str, TestUser] = {}
    with psycopg.connect(database_url) as conn:
        org = conn.execute(
            "INSERT INTO resorption.organisations (name, kind) VALUES ('Organisation des tests', 'other') "
            "ON CONFLICT (name, departement_code) DO UPDATE SET kind = EXCLUDED.kind RETURNING id"
        ).fetchone()[0]
        for role, options, level, code in [*user_cases(POLICY), *NEIGHBOURS]:
            username = _username(role, options, level, code)
            user_id = conn.execute(
                "INSERT INTO resorption.users (username, organisation_id, role, options, area_level, area_code) "
                "VALUES (%s, %s, %s, %s::resorption.user_option[], %s, %s) RETURNING id",
                (username, org, role, sorted(options), level, code),
            ).fetchone()[0]
            token = "rsp_" + secrets.token_urlsafe(32)
            conn.execute(
                "INSERT INTO resorption.api_tokens (user_id, token_hash, prefix, label, expires_at) "
                "VALUES (%s, %s, %s, 'tests', now() + interval '1 day')",
                (user_id, hashlib.sha256(token.encode()).digest(), token[:8]),
            )
            created[username] = TestUser(username, role, options, level, code, token)
    return created
