"""Digests and alerts are composed as their recipient: they hold nothing the recipient may not read.

New sites in Gironde (with a justice procedure, then a change of it) and in Seine-Saint-Denis,
written through the API; then the weekly digest of a Gironde observer names its Gironde site
only, never the other département's, never a justice field, while a national administrator's
digest names both sites and the justice field (the test can fail). The alert of a followed
site's message reaches its follower once. Accounts opened that week are listed to those who
read their territory only. What the SMTP server received is what is checked.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
import requests

from resorption.digests import site_alerts, weekly_digests
from resorption.mail_server import Received
from resorption.settings import Settings
from tests.fix_users import CATALOG, TestUser

OBSERVER = "external-observer-departement-33"
NATIONAL = "national-admin-nation"
CORRESPONDENT_33 = "correspondent-departement-33"
CORRESPONDENT_NATION = "correspondent-nation"
BORDEAUX = [-0.5792, 44.8378]
SAINT_DENIS = [2.3574, 48.9362]
JUSTICE_LABELS = [f.label.fr for f in CATALOG["sites"].fields.values() if f.group.sensitive == "justice"]


@dataclass(frozen=True)
class Written:
    gironde: int
    seine: int
    tag: str


def _post(base_url: str, who: TestUser, name: str, where: list[float], **props: object) -> int:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": where},
        "properties": {"name": name, "declared_at": "2025-01-15", "population_total": 20, **props},
    }
    r = requests.post(f"{base_url}/collections/sites/items", json=feature, headers=who.headers, timeout=60)
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def written(base_url: str, users: dict[str, TestUser], database_url: str) -> Iterator[Written]:
    tag = secrets.token_hex(3)
    gironde = _post(
        base_url, users[CORRESPONDENT_33], f"Site girondin {tag}", BORDEAUX, justice_procedure=True
    )
    seine = _post(base_url, users[CORRESPONDENT_NATION], f"Site dionysien {tag}", SAINT_DENIS)
    r = requests.patch(
        f"{base_url}/collections/sites/items/{gironde}",
        json={"properties": {"owner_complaint": True}},
        headers={**users[CORRESPONDENT_33].headers, "Content-Type": "application/merge-patch+json"},
        timeout=60,
    )
    assert r.status_code == 204, r.text
    with psycopg.connect(database_url) as conn:
        for username, full_name, code in (
            (f"nouveau-33-{tag}", f"Nouvelle girondine {tag}", "33"),
            (f"nouveau-93-{tag}", f"Nouveau dionysien {tag}", "93"),
        ):
            conn.execute(
                "INSERT INTO resorption.users (username, email, full_name, organisation_id, role, area_level, "
                "area_code) SELECT %s, %s, %s, organisation_id, 'operator', 'departement', %s "
                "FROM resorption.users WHERE username = %s",
                (username, f"{username}@secret.test", full_name, code, OBSERVER),
            )
        for username in (OBSERVER, NATIONAL):
            conn.execute(
                "UPDATE resorption.users SET email = %s WHERE username = %s",
                (f"{username}@digest.test", username),
            )
            conn.execute(
                "INSERT INTO resorption.mail_subscriptions (user_id, kind) "
                "SELECT id, k FROM resorption.users, unnest(ARRAY['weekly_digest', 'site_alerts']) k "
                "WHERE username = %s ON CONFLICT DO NOTHING",
                (username,),
            )
    yield Written(gironde, seine, tag)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM resorption.sites WHERE id = ANY(%s)", ([gironde, seine],))
        conn.execute("DELETE FROM resorption.users WHERE username LIKE %s", (f"nouveau-%-{tag}",))


def _parts(message: Received) -> tuple[str, str]:
    return (
        message.message.get_body(preferencelist=("plain",)).get_content(),
        message.message.get_body(preferencelist=("html",)).get_content(),
    )


def _departements(database_url: str, text: str) -> set[str]:
    ids = {int(i) for i in re.findall(r"/carte\?site=(\d+)", text)}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT departement_code FROM resorption.sites WHERE id = ANY(%s)", (sorted(ids),)
        ).fetchall()
    return {r[0] for r in rows}


def test_a_digest_holds_only_what_its_recipient_reads(
    written: Written, mail_settings: Settings, database_url: str, deliver: Callable[..., list[Received]]
) -> None:
    deliver()
    assert weekly_digests(mail_settings, usernames=[OBSERVER, NATIONAL], force=True) == 2
    received = deliver()
    observer = [m for m in received if f"{OBSERVER}@digest.test" in m.rcpt_tos]
    national = [m for m in received if f"{NATIONAL}@digest.test" in m.rcpt_tos]
    assert len(observer) == len(national) == 1
    text, html = _parts(observer[0])
    assert observer[0].message["Subject"].startswith("Résorption — la semaine sur votre territoire")
    assert f"Site girondin {written.tag}" in text and f"Site girondin {written.tag}" in html
    others = text.replace(f"Site girondin {written.tag}", "").replace(f"Nouvelle girondine {written.tag}", "")
    assert written.tag not in others
    assert "dionysien" not in text + html
    assert _departements(database_url, text) == {"33"}
    for label in JUSTICE_LABELS:
        assert label not in text and label not in html, label
    # the new account of Gironde, with its organisation and role, never its address; not 93's
    assert "Nouveaux utilisateurs" in text and f"Nouvelle girondine {written.tag}" in text + html
    assert "Opérateur" in text.split(f"Nouvelle girondine {written.tag}")[1].splitlines()[0]
    assert "secret.test" not in text + html and f"nouveau-93-{written.tag}" not in text + html
    # the same digest for a national administrator: both sites, and the justice field changed
    text, html = _parts(national[0])
    assert f"Site girondin {written.tag}" in text and f"Site dionysien {written.tag}" in text
    assert {"33", "93"} <= _departements(database_url, text)
    assert "Plainte du propriétaire" in text
    assert f"Nouvelle girondine {written.tag}" in text and f"Nouveau dionysien {written.tag}" in text


def test_an_alert_tells_a_follower_once(
    written: Written,
    base_url: str,
    users: dict[str, TestUser],
    mail_settings: Settings,
    database_url: str,
    deliver: Callable[..., list[Received]],
) -> None:
    observer = users[OBSERVER]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO resorption.site_followers (user_id, site_id) "
            "SELECT id, %s FROM resorption.users WHERE username = %s ON CONFLICT DO NOTHING",
            (written.gironde, OBSERVER),
        )
        conn.execute(
            "UPDATE resorption.mail_subscriptions SET watermark = now() - interval '1 minute', alerted = '{}' "
            "WHERE kind = 'site_alerts'"
        )
    message = {
        "type": "Feature",
        "geometry": None,
        "properties": {"site_id": written.gironde, "message": f"Visite du {written.tag}."},
    }
    r = requests.post(
        f"{base_url}/collections/site_comments/items",
        json=message,
        headers=users[CORRESPONDENT_33].headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    deliver()
    site_alerts(mail_settings)
    alerts = deliver(f"{OBSERVER}@digest.test")
    assert len(alerts) == 1
    text, _ = _parts(alerts[0])
    assert f"Site girondin {written.tag}" in text and "Message du journal" in text
    site_alerts(mail_settings)  # the next poll reads the overlap again, and alerts nothing twice
    assert deliver(f"{OBSERVER}@digest.test") == []
    assert observer.username == OBSERVER


def test_each_demo_account_has_its_digest_on_the_local_mail_page(
    base_url: str, database_url: str, mail_settings: Settings, deliver: Callable[..., list[Received]]
) -> None:
    """What `make demo` does (cli `_demo_accounts`): the demo accounts get an address and the weekly
    digest, composed as each of them; /courriels shows them (the embedded SMTP server's files)."""
    from resorption.demo.accounts import ACCOUNTS, DEMO_MAIL_DOMAIN, ensure_demo_accounts
    from tests.fix_users import POLICY

    ensure_demo_accounts(database_url, POLICY)
    deliver()
    assert weekly_digests(mail_settings, usernames=[a.username for a in ACCOUNTS], force=True) == len(
        ACCOUNTS
    )
    received = deliver()
    listing = requests.get(f"{base_url}/courriels", timeout=60)
    assert listing.status_code == 200
    for account in ACCOUNTS:
        address = f"{account.username}@{DEMO_MAIL_DOMAIN}"
        mine = [m for m in received if address in m.rcpt_tos]
        assert len(mine) == 1, address
        assert address in listing.text
        page = requests.get(f"{base_url}/courriels/{mine[0].path.name}", timeout=60)
        assert page.status_code == 200 and "la semaine sur votre territoire" in page.text
        if account.username == "demo-observateur-93":
            assert _departements(database_url, _parts(mine[0])[0]) <= {"93"}
    assert requests.get(f"{base_url}/courriels/../../etc/passwd", timeout=60).status_code == 404


def test_the_yearly_reminder_goes_to_who_writes_actions(
    users: dict[str, TestUser],
    mail_settings: Settings,
    database_url: str,
    deliver: Callable[..., list[Received]],
) -> None:
    from resorption.digests import indicator_reminders

    writer, observer = "correspondent-departement-33", OBSERVER
    with psycopg.connect(database_url) as conn:
        for username in (writer, observer):
            conn.execute(
                "UPDATE resorption.users SET email = %s WHERE username = %s",
                (f"{username}@digest.test", username),
            )
            conn.execute(
                "INSERT INTO resorption.mail_subscriptions (user_id, kind) SELECT id, 'indicator_reminder' "
                "FROM resorption.users WHERE username = %s ON CONFLICT DO NOTHING",
                (username,),
            )
    deliver()
    indicator_reminders(mail_settings, force=True)
    received = deliver()
    assert [m.message["Subject"] for m in received if f"{writer}@digest.test" in m.rcpt_tos] == [
        "Résorption — pensez à mettre à jour les indicateurs de vos actions"
    ]
    assert not [m for m in received if f"{observer}@digest.test" in m.rcpt_tos]
    indicator_reminders(mail_settings)  # once a year: not again now
    assert deliver(f"{writer}@digest.test") == []


def test_a_followed_sites_closure_is_alerted_and_an_unfollowed_ones_is_not(
    written: Written,
    base_url: str,
    users: dict[str, TestUser],
    mail_settings: Settings,
    database_url: str,
    deliver: Callable[..., list[Received]],
) -> None:
    """The Gironde site the observer follows is closed: one alert, naming it; the Seine-Saint-Denis
    site closed at the same time is neither followed nor readable by them: nothing about it."""
    import datetime as dt

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO resorption.site_followers (user_id, site_id) "
            "SELECT id, %s FROM resorption.users WHERE username = %s ON CONFLICT DO NOTHING",
            (written.gironde, OBSERVER),
        )
        conn.execute(
            "UPDATE resorption.mail_subscriptions SET watermark = now() - interval '1 minute', alerted = '{}' "
            "WHERE kind = 'site_alerts'"
        )
    today = dt.date.today().isoformat()
    for site, who in ((written.gironde, CORRESPONDENT_33), (written.seine, CORRESPONDENT_NATION)):
        r = requests.patch(
            f"{base_url}/collections/sites/items/{site}",
            json={"properties": {"status": "resorbed", "closed_at": today}},
            headers={**users[who].headers, "Content-Type": "application/merge-patch+json"},
            timeout=60,
        )
        assert r.status_code == 204, r.text
    deliver()
    site_alerts(mail_settings)
    alerts = deliver(f"{OBSERVER}@digest.test")
    assert len(alerts) == 1
    text, html = _parts(alerts[0])
    assert f"Site girondin {written.tag}" in alerts[0].message["Subject"] + text
    assert "Site fermé" in text and "dionysien" not in text + html
    assert _departements(database_url, text) == {"33"}
    site_alerts(mail_settings)
    assert deliver(f"{OBSERVER}@digest.test") == []
