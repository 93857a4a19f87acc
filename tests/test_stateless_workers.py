"""Workers hold no state: two app servers on different ports, one database, one service.

A second gunicorn serves the app on the suite's database. A browser session opened on one is
valid on the other (and closed on the other, closed on both); a job started on one is followed
and read on the other; a token remembered by one is refused by both once revoked. What a
request needs (sessions, jobs, throttles, tokens) lives in PostgreSQL, so that any number of
servers may stand behind a load balancer (README, « Passer à l'échelle »).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from resorption import accounts
from tests.fix_second_server import free_port, start_gunicorn
from tests.fix_users import TestUser
from tests.test_speed import local_token_failures  # noqa: F401  (the refusals asked for here)

PARIS_TODAY = dt.datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()


@pytest.fixture(scope="module")
def second_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another server of the same app on the same database (its own port, runtime and workers)."""
    runtime = tmp_path_factory.mktemp("second")
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "RESORPTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RESORPTION_RUNTIME_DIR": str(runtime),
    }
    with start_gunicorn("resorption.app:wsgi()", env, runtime / "gunicorn.log", port) as url:
        yield url


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_session_opened_on_one_server_is_valid_on_the_other(
    base_url: str, second_url: str, users: dict[str, TestUser]
) -> None:
    user = users["operator-departement-33"]
    browser = requests.Session()
    form = browser.get(f"{base_url}/connexion", timeout=60)
    data = {"identifiant": user.username, "mot_de_passe": user.token, "csrf": _form_token(form.text)}
    answer = browser.post(f"{base_url}/connexion", data=data, allow_redirects=False, timeout=60)
    assert answer.status_code == 303, answer.text
    # Cookies do not depend on the port: the same browser sends its session to the other server.
    page = browser.get(f"{second_url}/carte", allow_redirects=False, timeout=60)
    assert page.status_code == 200, page.headers.get("Location")  # not sent to /connexion
    items = browser.get(f"{second_url}/collections/sites/items", params={"limit": 5}, timeout=60)
    assert items.status_code == 200 and items.json()["features"]

    # Signed out on the second server: signed out on the first too.
    confirm = browser.get(f"{second_url}/deconnexion", timeout=60)
    out = browser.post(
        f"{second_url}/deconnexion",
        data={"csrf": _form_token(confirm.text)},
        allow_redirects=False,
        timeout=60,
    )
    assert out.status_code == 303
    again = requests.get(
        f"{base_url}/carte",
        cookies={c.name: c.value for c in answer.cookies},
        allow_redirects=False,
        timeout=60,
    )
    assert again.status_code in (302, 303) and "/connexion" in again.headers["Location"]


def test_job_started_on_one_server_is_read_on_the_other(
    base_url: str, second_url: str, users: dict[str, TestUser]
) -> None:
    owner = users["correspondent-departement-33"]
    inputs = {"level": "departement", "code": "33", "start": "2019-01-01", "end": PARIS_TODAY, "step": "year"}
    r = requests.post(
        f"{base_url}/processes/territory-statistics/execution",
        json={"inputs": inputs},
        headers={**owner.headers, "Prefer": "respond-async"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    job_id = r.headers["Location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = requests.get(
            f"{second_url}/jobs/{job_id}", params={"f": "json"}, headers=owner.headers, timeout=60
        ).json()
        if status.get("status") in ("successful", "failed"):
            break
        time.sleep(0.2)
    assert status.get("status") == "successful", status
    results = requests.get(
        f"{second_url}/jobs/{job_id}/results", params={"f": "json"}, headers=owner.headers, timeout=60
    )
    assert results.status_code == 200 and results.json()["series"][-1]["date"] == PARIS_TODAY
    # Someone else sees nothing of it on either server.
    other = users["local-admin-departement-33"]
    for url in (base_url, second_url):
        assert requests.get(f"{url}/jobs/{job_id}", headers=other.headers, timeout=60).status_code == 404


@pytest.mark.usefixtures("local_token_failures")
def test_token_revoked_is_refused_by_both_servers(
    base_url: str, second_url: str, database_url: str, users: dict[str, TestUser]
) -> None:
    """Each server remembers the token after its first use; revoked, both refuse it at once."""
    token = accounts.issue_token(database_url, "operator-departement-33", "deux serveurs").token
    headers = {"Authorization": f"Bearer {token}"}
    path = "/collections/sites/items?limit=1"
    for url in (base_url, second_url, base_url, second_url):
        assert requests.get(url + path, headers=headers, timeout=60).status_code == 200
    accounts.revoke_token(database_url, token)
    for url in (second_url, base_url):
        assert requests.get(url + path, headers=headers, timeout=60).status_code == 401
