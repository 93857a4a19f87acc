"""Sign-in throttling: guessers wait, nobody else does.

At the function level (`authenticate(header, client, settings)`, against the real database as
the application's role) for the rules, each test with addresses and usernames of its own; time
passes by moving the counters' instants back (as the owner). Over HTTP for what a person sees:
the sign-in form's 429 and its `Retry-After`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from itertools import count
from typing import Any

import psycopg
import pytest
import requests

from resorption import accounts
from resorption.authentication import authenticate
from resorption.database import get_pool
from resorption.errors import TooManyAttempts, Unauthorized
from resorption.policy import load_policy
from resorption.settings import Settings
from resorption.throttle import ACCOUNT, ADDRESS, ADDRESS_AFTER, HOLD, PAIR, RULES_JSON, TOKEN, address_key
from tests.test_sessions import sign_in

PASSWORD = "le bon mot de passe, assez long"
WRONG = "un mauvais mot de passe"
_serial = count(1)


def _address() -> str:
    """An IPv4 address of its own (TEST-NET-2), as one NAT, office or proxy."""
    n = next(_serial)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings.from_env(database_url)


@pytest.fixture(scope="module")
def organisation(database_url: str) -> int:
    return accounts.create_organisation(database_url, "Association des tests du ralentissement", "other").id


@pytest.fixture
def person(database_url: str, organisation: int) -> Iterator[Any]:
    """A factory of users with a password (and a token), each of their own."""
    settings = Settings.from_env(database_url)
    policy = load_policy(settings.policy_path, settings.collections_dir)
    made: list[str] = []

    def make(stem: str = "user") -> str:
        name = f"throttle-{stem}-{next(_serial)}"
        accounts.create_user(
            database_url,
            policy,
            username=name,
            organisation=organisation,
            role="operator",
            area="departement:33",
            password=PASSWORD,
        )
        made.append(name)
        return name

    yield make
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.users WHERE username = ANY(%s)", (made,))


def attempt(settings: Settings, username: str, secret: str, address: str) -> tuple[int, int | None]:
    """(status, Retry-After) of one sign-in: 200, 401 or 429."""
    try:
        authenticate(basic(username, secret), address, settings)
    except TooManyAttempts as exc:
        assert exc.headers == {"Retry-After": str(exc.retry_after)}
        assert "Trop de tentatives" in exc.message
        return 429, exc.retry_after
    except Unauthorized:
        return 401, None
    return 200, None


def pass_time(db: psycopg.Connection, seconds: int) -> None:
    """Move every counter `seconds` into the past (as if the time had passed)."""
    shift = f"{seconds} seconds"
    db.execute(
        "UPDATE resorption.sign_in_counters SET last_failure_at = last_failure_at - %(s)s::interval, "
        "blocked_until = blocked_until - %(s)s::interval, last_success_at = last_success_at - %(s)s::interval, "
        "forget_at = forget_at - %(s)s::interval",
        {"s": shift},
    )


def fail_until_blocked(
    settings: Settings, db: psycopg.Connection, username: str, address: str, failures: int
) -> list[tuple[int, int | None]]:
    """Fail `failures` times, waiting out each backoff; the answers, 429s included."""
    answers = []
    counted = 0
    while counted < failures:
        answer = attempt(settings, username, WRONG, address)
        answers.append(answer)
        if answer[0] == 429:
            pass_time(db, answer[1] or 0)
        else:
            counted += 1
    return answers


def close_to(seconds: int | None, expected: int) -> bool:
    return seconds is not None and expected - 2 <= seconds <= expected


# -- one account, one address ----------------------------------------------------------------------


def test_a_few_failures_are_free_then_each_waits_twice_as_long(
    settings: Settings, db: psycopg.Connection, person: Any
) -> None:
    user, address = person(), _address()
    for _ in range(PAIR.free):
        assert attempt(settings, user, WRONG, address) == (401, None)
    assert attempt(settings, user, PASSWORD, address) == (200, None)  # no wait yet
    assert attempt(settings, user, WRONG, address) == (401, None)  # the 6th failure…
    for n in range(PAIR.free + 1, PAIR.free + 5):
        # …makes the next attempt wait, right password or not, twice as long each time.
        status, wait = attempt(settings, user, PASSWORD, address)
        assert status == 429 and close_to(wait, PAIR.delay(n)), (n, wait)
        pass_time(db, wait or 0)
        assert attempt(settings, user, WRONG, address) == (401, None)
    assert PAIR.delay(PAIR.free + 1) == PAIR.base and PAIR.delay(PAIR.free + 4) == PAIR.base * 8
    assert PAIR.delay(1000) == PAIR.cap


def test_a_success_does_not_clear_the_failures(
    settings: Settings, db: psycopg.Connection, person: Any
) -> None:
    """Failures before and after a success count alike (they used to be forgotten)."""
    user, address = person(), _address()
    for _ in range(PAIR.free - 1):
        assert attempt(settings, user, WRONG, address)[0] == 401
    assert attempt(settings, user, PASSWORD, address)[0] == 200
    assert attempt(settings, user, WRONG, address)[0] == 401  # the free allowance is spent…
    assert attempt(settings, user, WRONG, address)[0] == 401  # …and this one starts a wait
    status, wait = attempt(settings, user, PASSWORD, address)
    assert status == 429 and close_to(wait, PAIR.base)
    # A day without failure, and the counters are forgotten.
    pass_time(db, 24 * 3600 + 1)
    for _ in range(PAIR.free):
        assert attempt(settings, user, WRONG, address)[0] == 401
    assert attempt(settings, user, PASSWORD, address)[0] == 200


# -- other people ---------------------------------------------------------------------------------------


def test_nat_an_attacker_hammering_one_account_never_blocks_another(
    settings: Settings, db: psycopg.Connection, person: Any, database_url: str
) -> None:
    """One address (a NAT, an office): A is guessed at length; B signs in all along."""
    victim, colleague, typist = person("victime"), person("collegue"), person("distrait")
    token = accounts.issue_token(database_url, colleague, "QGIS").token
    nat, home = _address(), _address()
    assert attempt(settings, victim, PASSWORD, home) == (200, None)
    answers = fail_until_blocked(settings, db, victim, nat, ADDRESS.free + 10)
    assert answers.count((401, None)) == ADDRESS.free + 10
    assert attempt(settings, victim, PASSWORD, nat)[0] == 429  # the victim's account waits here
    # Everyone else behind the NAT: password, token, and after one typing mistake.
    assert attempt(settings, colleague, PASSWORD, nat) == (200, None)
    assert authenticate(f"Bearer {token}", nat, settings).username == colleague
    assert attempt(settings, typist, WRONG, nat) == (401, None)
    assert attempt(settings, typist, PASSWORD, nat) == (200, None)
    # The victim's account waits everywhere (guessed too often), except where its owner signs in.
    assert attempt(settings, victim, PASSWORD, _address())[0] == 429
    assert attempt(settings, victim, PASSWORD, home) == (200, None)


def test_a_password_spray_from_one_address_waits_from_its_third_round(
    settings: Settings, db: psycopg.Connection, person: Any
) -> None:
    sprayer = _address()
    names = [person("pulverise") for _ in range(ADDRESS.free // ADDRESS_AFTER + 1)]
    for _ in range(ADDRESS_AFTER):
        for name in names:
            assert attempt(settings, name, WRONG, sprayer) == (401, None)
    status, wait = attempt(settings, names[0], WRONG, sprayer)
    assert status == 429 and wait and wait > 0
    # A person of that address who never failed there is not concerned.
    assert attempt(settings, person("voisin"), PASSWORD, sprayer) == (200, None)


def test_distributed_guessing_of_one_account(settings: Settings, db: psycopg.Connection, person: Any) -> None:
    """Many addresses, one failure each: the account waits, except where its owner signs in."""
    user, home = person("cible"), _address()
    assert attempt(settings, user, PASSWORD, home) == (200, None)  # home is a known address
    for _ in range(ACCOUNT.free):
        assert attempt(settings, user, WRONG, _address()) == (401, None)
    assert attempt(settings, user, WRONG, _address()) == (401, None)  # this one starts a wait
    status, wait = attempt(settings, user, PASSWORD, _address())
    assert status == 429 and close_to(wait, ACCOUNT.base)
    assert attempt(settings, user, PASSWORD, home) == (200, None)  # the owner, at home


def test_an_unknown_username_is_answered_like_a_known_one(
    settings: Settings, db: psycopg.Connection, person: Any, database_url: str
) -> None:
    """Same answers, same waits: the throttle tells nothing of which accounts exist."""
    known, gone = person("connu"), person("parti")
    accounts.deactivate_user(database_url, gone)
    unknown = f"throttle-inconnu-{next(_serial)}"
    runs = [
        fail_until_blocked(settings, db, name, _address(), PAIR.free + 4) for name in (known, gone, unknown)
    ]

    def shape(answers: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
        return [(status, None if wait is None else round(wait / 10)) for status, wait in answers]

    assert shape(runs[0]) == shape(runs[1]) == shape(runs[2])
    assert any(status == 429 for status, _ in runs[0])


# -- tokens ----------------------------------------------------------------------------------------------


def test_bad_tokens_wait_per_address_and_block_no_one(
    settings: Settings, db: psycopg.Connection, person: Any, database_url: str
) -> None:
    scanner = _address()
    user = person("jeton")
    token = accounts.issue_token(database_url, user, "QGIS").token
    statuses = []
    for n in range(TOKEN.free + 3):
        try:
            authenticate(f"Bearer rsp_{'x' * 40}{n}", scanner, settings)
        except TooManyAttempts as exc:
            statuses.append((429, exc.retry_after))
        except Unauthorized:
            statuses.append((401, None))
    assert statuses[: TOKEN.free + 1] == [(401, None)] * (TOKEN.free + 1)
    assert statuses[TOKEN.free + 1][0] == 429 and close_to(statuses[TOKEN.free + 1][1], TOKEN.base)
    # A valid token from that address passes; so does any password.
    assert authenticate(f"Bearer {token}", scanner, settings).username == user
    assert authenticate(basic(user, token), scanner, settings).username == user
    assert attempt(settings, user, PASSWORD, scanner) == (200, None)
    assert attempt(settings, person("autre"), PASSWORD, scanner) == (200, None)
    # Another address is not concerned.
    with pytest.raises(Unauthorized):
        authenticate("Bearer rsp_inconnu", _address(), settings)


def test_an_ipv6_network_counts_as_one_address(
    settings: Settings, db: psycopg.Connection, person: Any
) -> None:
    assert address_key("2001:db8:5:7::1") == address_key("2001:db8:5:7:ffff::2") == "2001:db8:5:7::/64"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    user = person("ipv6")
    for host in range(1, PAIR.free + 2):
        assert attempt(settings, user, WRONG, f"2001:db8:77:1::{host:x}") == (401, None)
    assert attempt(settings, user, PASSWORD, "2001:db8:77:1:abcd::9")[0] == 429


def test_parallel_attempts_wait_for_the_one_being_checked(
    settings: Settings, db: psycopg.Connection, person: Any
) -> None:
    """When a wait ends, one attempt is checked at a time, not a burst of them."""
    user, address = person("rafale"), _address()
    fail_until_blocked(settings, db, user, address, PAIR.free + 1)
    pass_time(db, PAIR.base)
    gate = "SELECT wait_seconds, held FROM resorption.password_sign_in_gate(%s, %s, %s)"
    with get_pool(settings).connection() as conn:
        first = conn.execute(gate, (user, address, RULES_JSON)).fetchone()
        second = conn.execute(gate, (user, address, RULES_JSON)).fetchone()
    assert first == (0, ["pair"])
    assert second == (HOLD, [])
    # The first one was right: its hold goes, the failures stay.
    with get_pool(settings).connection() as conn:
        conn.execute(
            "SELECT resorption.record_password_success(%s, %s, %s, %s)", (user, address, ["pair"], RULES_JSON)
        )
    assert attempt(settings, user, PASSWORD, address) == (200, None)
    assert attempt(settings, user, WRONG, address)[0] == 401
    assert attempt(settings, user, PASSWORD, address)[0] == 429


# -- what a person sees --------------------------------------------------------------------------------


def test_the_sign_in_form_says_when_to_try_again(base_url: str, db: psycopg.Connection, person: Any) -> None:
    user = person("formulaire")
    for _ in range(PAIR.free + 1):
        _, answer = sign_in(base_url, user, WRONG)
        assert answer.status_code == 401
    _, answer = sign_in(base_url, user, PASSWORD)
    assert answer.status_code == 429
    assert close_to(int(answer.headers["Retry-After"]), PAIR.base)
    assert re.search(
        r"Trop de tentatives d(?:'|&#39;)identification échouées.*dans \d+ secondes", answer.text
    )
    # HTTP Basic from the same address meets the same counters, in an OGC exception.
    r = requests.get(f"{base_url}/collections/sites/items", auth=(user, PASSWORD), timeout=60)
    assert r.status_code == 429
    assert r.json()["code"] == "TooManyRequests" and int(r.headers["Retry-After"]) > 0
    # Someone else at the same address signs in.
    other = person("formulaire-voisin")
    _, answer = sign_in(base_url, other, PASSWORD)
    assert answer.status_code == 303
