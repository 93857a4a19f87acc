"""The cron side of accounts (`resorption comptes entretien`) and « Mon compte » by session.

An unused account is warned, then deactivated (sessions and tokens end, the audit log says
why), each by e-mail; a request left pending reminds the administrators of its territory, and
them only. On « Mon compte », a session closes the others, revokes a token, keeps the
subscriptions chosen; a user without `manage_users` has no administration page.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable

import psycopg
import requests

from resorption import accounts
from resorption.mail_server import Received
from tests.fix_users import POLICY, TestUser

PASSWORD = "Cabane-des-Pins-2026!"


def _cli(database_url: str, mail_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, **mail_env}
    return subprocess.run(
        [sys.executable, "-m", "resorption.cli.commands", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_unused_accounts_are_warned_then_deactivated_and_requests_remind(
    database_url: str, base_url: str, smtp_server: tuple, deliver: Callable[..., list[Received]]
) -> None:
    tag = secrets.token_hex(3)
    org = accounts.create_organisation(database_url, f"Préfecture (entretien {tag})", "state_service")
    names = {}
    for who, area in (
        ("dormant", "departement:33"),
        ("admin33", "departement:33"),
        ("admin93", "departement:93"),
    ):
        names[who] = f"{who}-{tag}"
        accounts.create_user(
            database_url,
            POLICY,
            username=names[who],
            organisation=org.id,
            role="intervener" if who == "dormant" else "local_admin",
            area=area,
            email=f"{names[who]}@entretien.test",
            password=PASSWORD,
        )
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.users SET created_at = now() - interval '8 months' WHERE username = %s",
            (names["dormant"],),
        )
        conn.execute(
            "INSERT INTO resorption.access_requests (full_name, email, organisation, departement_code, role_wished, "
            "reason, created_at) VALUES ('Alix Durand', %s, 'Mairie', '33', 'intervener', "
            "'Suivi des familles du quartier.', now() - interval '10 days')",
            (f"alix-{tag}@mairie.test",),
        )
    deliver()
    env = {
        "RESORPTION_SMTP_HOST": "127.0.0.1",
        "RESORPTION_SMTP_PORT": str(smtp_server[0]),
        "RESORPTION_PUBLIC_URL": base_url,
    }
    first = _cli(database_url, env, "comptes", "entretien", "--inactivite-mois", "6", "--preavis-jours", "30")
    assert first.returncode == 0, first.stderr
    assert _cli(database_url, env, "courriels", "envoyer").returncode == 0
    received = deliver()  # what the command sent is already on the server
    mine = smtp_server[1].received
    warned = [m for m in mine if f"{names['dormant']}@entretien.test" in m.rcpt_tos]
    assert len(warned) == 1 and "sera désactivé" in warned[0].message["Subject"]
    reminded = [m for m in mine if f"{names['admin33']}@entretien.test" in m.rcpt_tos]
    assert len(reminded) == 1 and "Alix Durand" in reminded[0].message.get_body(("plain",)).get_content()
    assert not [m for m in mine if f"{names['admin93']}@entretien.test" in m.rcpt_tos]
    assert received == []
    # the warning unanswered for the notice period: deactivated, told, audited
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.users SET inactivity_warned_at = now() - interval '31 days' "
            "WHERE username = %s",
            (names["dormant"],),
        )
    second = _cli(database_url, env, "comptes", "entretien")
    assert second.returncode == 0 and "1 désactivé" in second.stderr, second.stderr
    with psycopg.connect(database_url) as conn:
        active = conn.execute(
            "SELECT active FROM resorption.users WHERE username = %s", (names["dormant"],)
        ).fetchone()
        assert active == (False,)
        audited = conn.execute(
            "SELECT detail->>'motif' FROM resorption.audit_log WHERE action = 'user_deactivated' "
            "AND item_id = (SELECT id::text FROM resorption.users WHERE username = %s)",
            (names["dormant"],),
        ).fetchone()
        assert audited and "inactif" in audited[0]
    told = deliver(f"{names['dormant']}@entretien.test")
    assert len(told) == 1 and "désactivé" in told[0].message["Subject"]
    assert (
        requests.get(
            f"{base_url}/collections/sites/items?limit=1", auth=(names["dormant"], PASSWORD), timeout=60
        ).status_code
        == 401
    )


def _session(base_url: str, username: str, password: str) -> tuple[requests.Session, str]:
    """A browser-like session signed in through the form, with its CSRF token."""
    s = requests.Session()
    form = s.get(f"{base_url}/connexion", timeout=60).text
    login = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = s.post(
        f"{base_url}/connexion",
        data={"identifiant": username, "mot_de_passe": password, "csrf": login, "suivant": "/mon-compte"},
        timeout=60,
    )
    assert r.status_code == 200 and "Mon compte" in r.text
    return s, re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def test_my_account_by_session(base_url: str, database_url: str, users: dict[str, TestUser]) -> None:
    tag = secrets.token_hex(3)
    org = accounts.create_organisation(database_url, f"Association (compte {tag})", "association")
    name = f"moi-{tag}"
    accounts.create_user(
        database_url,
        POLICY,
        username=name,
        organisation=org.id,
        role="operator",
        area="departement:33",
        email=f"{name}@asso.test",
        password=PASSWORD,
    )
    first, _ = _session(base_url, name, PASSWORD)
    second, csrf = _session(base_url, name, PASSWORD)
    page = second.get(f"{base_url}/mon-compte", timeout=60).text
    assert page.count("<td>127.0.0.1</td>") == 2
    # without the session's CSRF token a form is refused
    assert second.post(f"{base_url}/mon-compte/sessions", data={}, timeout=60).status_code == 403
    closed = second.post(f"{base_url}/mon-compte/sessions", data={"csrf": csrf}, timeout=60)
    assert closed.status_code == 200 and "1 autre(s) session(s) fermée(s)" in closed.text
    assert first.get(f"{base_url}/mon-compte", timeout=60, allow_redirects=False).status_code == 303
    made = second.post(
        f"{base_url}/mon-compte/jetons", data={"csrf": csrf, "libelle": "Script", "duree": "30"}, timeout=60
    )
    token = re.search(r'value="(rsp_[^"]+)"', made.text).group(1)
    token_id = re.search(r'name="jeton" value="(\d+)"', made.text).group(1)
    assert (
        requests.get(
            f"{base_url}/collections/sites/items?limit=1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).status_code
        == 200
    )
    revoked = second.post(
        f"{base_url}/mon-compte/revoquer", data={"csrf": csrf, "jeton": token_id}, timeout=60
    )
    assert "Jeton révoqué." in revoked.text
    assert (
        requests.get(
            f"{base_url}/collections/sites/items?limit=1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).status_code
        == 401
    )
    # another user's token cannot be revoked from here
    other = second.post(f"{base_url}/mon-compte/revoquer", data={"csrf": csrf, "jeton": "1"}, timeout=60)
    assert "déjà révoqué" in other.text
    chosen = second.post(
        f"{base_url}/mon-compte/abonnements",
        data={"csrf": csrf, "abonnements": ["weekly_digest", "site_alerts"]},
        timeout=60,
    )
    assert chosen.status_code == 200 and "Abonnements enregistrés." in chosen.text
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute(
            "SELECT array_agg(kind ORDER BY kind) FROM resorption.mail_subscriptions m "
            "JOIN resorption.users u ON u.id = m.user_id WHERE u.username = %s",
            (name,),
        ).fetchone()
    assert kinds == (["site_alerts", "weekly_digest"],)
    weak = second.post(
        f"{base_url}/mon-compte/mot-de-passe",
        data={
            "csrf": csrf,
            "actuel": PASSWORD,
            "nouveau": "aaaaaaaaaaaaaaaa",
            "confirmation": "aaaaaaaaaaaaaaaa",
        },
        timeout=60,
    )
    assert weak.status_code == 400 and "répète" in weak.text
    # no administration without manage_users
    observer = users["external-observer-departement-33"]
    assert (
        requests.get(f"{base_url}/administration/demandes", headers=observer.headers, timeout=60).status_code
        == 403
    )
    assert second.get(f"{base_url}/administration/utilisateurs", timeout=60).status_code == 403
