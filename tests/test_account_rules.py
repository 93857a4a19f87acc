"""The rules of issue 13 the lifecycle tests leave aside, over HTTP against the suite's server.

- A request sent without the form's start time is a robot's: the same answer, nothing kept;
  requests from many addresses at once fill the queue, not the administrators' mailboxes.
- An activation link is kept as its hash only, its e-mail's body is blanked once sent, and it
  expires; a reset link asked for instead of it still asks for the charter.
- A new version of the charter is told by e-mail once and asked at the next sign-in;
  accepting it is recorded.
- An administrator's deactivation ends every session and token at once; a reactivation gives
  back the password, never a revoked token; both are on the user's page; another territory's
  administrator can do neither, and no one grants a role the policy keeps from them.
- Signing in with a password over HTTP Basic (QGIS, GDAL, scripts) counts as a sign-in: such an
  account is not warned for inactivity; a token used after a warning clears it.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import requests

from resorption import account_upkeep, accounts
from resorption.health import code_head
from resorption.lifecycle import load_charter
from resorption.mail_server import Received
from resorption.settings import Settings
from tests.fix_users import POLICY

PASSWORD = "Cabane-des-Pins-2026!"
ITEMS = "/collections/sites/items?limit=1"


@pytest.fixture(scope="module")
def tag() -> str:
    return secrets.token_hex(3)


@pytest.fixture(scope="module")
def org(database_url: str, tag: str) -> int:
    return accounts.create_organisation(database_url, f"Préfecture (règles {tag})", "state_service").id


def _user(database_url: str, org: int, name: str, role: str = "intervener", area: str = "33") -> str:
    accounts.create_user(
        database_url,
        POLICY,
        username=name,
        organisation=org,
        role=role,
        area=f"departement:{area}",
        email=f"{name}@regles.test",
        password=PASSWORD,
    )
    return name


@pytest.fixture(scope="module")
def admins(database_url: str, org: int, tag: str) -> Iterator[dict[str, tuple[str, str]]]:
    """Local administrators of Gironde and of Seine-Saint-Denis, as (username, password)."""
    yield {code: (_user(database_url, org, f"regles-admin-{code}-{tag}", "local_admin", code), PASSWORD)
           for code in ("33", "93")}


def _session(base_url: str, username: str, password: str, then: str = "/mon-compte") -> requests.Session:
    """A browser-like session signed in through the form."""
    s = requests.Session()
    form = s.get(f"{base_url}/connexion", timeout=60).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = s.post(
        f"{base_url}/connexion",
        data={"identifiant": username, "mot_de_passe": password, "csrf": csrf, "suivant": then},
        timeout=60,
        allow_redirects=False,
    )
    assert r.status_code == 303, r.text
    s.last_location = r.headers["Location"]  # type: ignore[attr-defined]
    return s


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _fresh_hour(database_url: str) -> None:
    """The suite's requests all come from 127.0.0.1: a clean hour for its throttle."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.access_requests SET created_at = created_at - interval '1 day' "
            "WHERE client = '127.0.0.1'"
        )


def _form(email: str, **extra: str) -> dict[str, str]:
    return {
        "nom": "Sacha Leroy",
        "courriel": email,
        "organisation": "Association Horizon",
        "departement": "33",
        "role": "intervener",
        "motif": "J'accompagne les familles du site de la Jallère pour la scolarisation.",
        "debut": str(int(time.time()) - 10),
        **extra,
    }


def _requests_of(database_url: str, email: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM resorption.access_requests WHERE email = %s", (email,)
        ).fetchone()[0]


def test_a_request_without_the_forms_start_time_is_a_robots(base_url: str, database_url: str) -> None:
    _fresh_hour(database_url)
    email = f"sans-debut-{secrets.token_hex(3)}@exemple.fr"
    for start in (None, "", "demain", str(int(time.time()) + 3600)):
        form = _form(email)
        if start is None:
            del form["debut"]
        else:
            form["debut"] = start
        r = requests.post(f"{base_url}/demande-acces", data=form, timeout=60)
        assert r.status_code == 200 and "Demande envoyée" in r.text, start
    assert _requests_of(database_url, email) == 0
    assert requests.post(f"{base_url}/demande-acces", data=_form(email), timeout=60).status_code == 200
    assert _requests_of(database_url, email) == 1
    _fresh_hour(database_url)


def test_many_requests_fill_the_queue_not_the_administrators_mailboxes(
    base_url: str, database_url: str, org: int, tag: str, deliver: Callable[..., list[Received]]
) -> None:
    """Requests from many addresses at once (10 in the hour for Corse-du-Sud): the next one is
    kept and acknowledged, its administrator is not written to again (the reminder will be)."""
    admin = _user(database_url, org, f"regles-admin-2a-{tag}", "local_admin", "2A")
    with psycopg.connect(database_url) as conn:
        for i in range(10):
            conn.execute(
                "INSERT INTO resorption.access_requests (full_name, email, organisation, departement_code, "
                "role_wished, reason, client) VALUES ('Robot', %s, 'Robots', '2A', 'intervener', "
                "'Une demande parmi tant d''autres.', %s)",
                (f"robot-{i}-{tag}@exemple.fr", f"198.51.100.{i}"),
            )
    _fresh_hour(database_url)
    deliver()
    email = f"onzieme-{tag}@exemple.fr"
    sent = requests.post(f"{base_url}/demande-acces", data=_form(email, departement="2A"), timeout=60)
    assert sent.status_code == 200 and _requests_of(database_url, email) == 1
    received = deliver()
    assert [m for m in received if email in m.rcpt_tos]  # acknowledged
    assert not [m for m in received if f"{admin}@regles.test" in m.rcpt_tos]
    with psycopg.connect(database_url) as conn:  # an hour later, a request is told again
        conn.execute(
            "UPDATE resorption.access_requests SET created_at = created_at - interval '2 hours' "
            "WHERE departement_code = '2A'"
        )
    email = f"plus-tard-{tag}@exemple.fr"
    assert requests.post(f"{base_url}/demande-acces", data=_form(email, departement="2A"), timeout=60).ok
    assert len(deliver(f"{admin}@regles.test")) == 1
    _fresh_hour(database_url)


def _link(message: Received, path: str) -> str:
    text = message.message.get_body(preferencelist=("plain",)).get_content()
    return re.search(rf"https?://\S+{path}/([A-Za-z0-9_-]+)", text).group(0)


def test_an_activation_link_is_kept_hashed_blanked_once_sent_and_expires(
    base_url: str,
    database_url: str,
    admins: dict[str, tuple[str, str]],
    tag: str,
    deliver: Callable[..., list[Received]],
) -> None:
    _fresh_hour(database_url)
    email = f"expire-{tag}@horizon.test"
    assert requests.post(f"{base_url}/demande-acces", data=_form(email), timeout=60).status_code == 200
    deliver()
    page = requests.get(f"{base_url}/administration/demandes", auth=admins["33"], timeout=60).text
    request_id = int(re.search(rf'id="demande-(\d+)"[^€]*?{re.escape(email)}', page).group(1))
    accepted = requests.post(
        f"{base_url}/administration/demandes/{request_id}",
        data={"decision": "accepter", "identifiant": f"expire-{tag}", "role": "intervener"},
        auth=admins["33"],
        timeout=60,
        allow_redirects=False,
    )
    assert accepted.status_code == 303, accepted.text
    link = _link(deliver(email)[0], "/activation")
    token = link.rsplit("/", 1)[1]
    with psycopg.connect(database_url) as conn:
        # the database keeps the link's SHA-256 only, and the sent message's body is blanked
        stored = conn.execute(
            "SELECT l.token_hash, l.expires_at - l.created_at FROM resorption.account_links l "
            "JOIN resorption.users u ON u.id = l.user_id WHERE u.username = %s",
            (f"expire-{tag}",),
        ).fetchall()
        assert [r[0] for r in stored] == [hashlib.sha256(token.encode()).digest()]
        assert stored[0][1].days == 7
        bodies = conn.execute(
            "SELECT body_text || coalesce(body_html, '') FROM resorption.mail_outbox "
            "WHERE recipient = %s AND kind = 'activation'",
            (email,),
        ).fetchall()
        assert len(bodies) == 1 and token not in bodies[0][0] and "effacé" in bodies[0][0]
        leaked = conn.execute(
            "SELECT count(*) FROM resorption.audit_log WHERE detail::text LIKE %s", (f"%{token}%",)
        ).fetchone()[0]
        assert leaked == 0
    assert requests.get(link, timeout=60).status_code == 200
    with psycopg.connect(database_url) as conn:  # eight days later
        conn.execute(
            "UPDATE resorption.account_links SET created_at = created_at - interval '8 days', "
            "expires_at = expires_at - interval '8 days' WHERE token_hash = %s",
            (hashlib.sha256(token.encode()).digest(),),
        )
    expired = requests.get(link, timeout=60)
    assert expired.status_code == 404
    tried = requests.post(
        link, data={"mot_de_passe": PASSWORD, "confirmation": PASSWORD, "charte": "2026-12"}, timeout=60
    )
    assert tried.status_code == 404
    assert requests.get(f"{base_url}{ITEMS}", auth=(f"expire-{tag}", PASSWORD), timeout=60).status_code == 401


def test_a_reset_link_instead_of_the_activation_link_still_asks_for_the_charter(
    base_url: str,
    database_url: str,
    admins: dict[str, tuple[str, str]],
    tag: str,
    deliver: Callable[..., list[Received]],
) -> None:
    """Granted an access, a person asks « mot de passe oublié » instead of using the activation
    link: the reset link asks for the charter too, and records it."""
    _fresh_hour(database_url)
    email = f"contourne-{tag}@horizon.test"
    assert requests.post(f"{base_url}/demande-acces", data=_form(email), timeout=60).status_code == 200
    deliver()
    page = requests.get(f"{base_url}/administration/demandes", auth=admins["33"], timeout=60).text
    request_id = int(re.search(rf'id="demande-(\d+)"[^€]*?{re.escape(email)}', page).group(1))
    requests.post(
        f"{base_url}/administration/demandes/{request_id}",
        data={"decision": "accepter", "identifiant": f"contourne-{tag}", "role": "intervener"},
        auth=admins["33"],
        timeout=60,
    )
    deliver()
    assert requests.post(f"{base_url}/mot-de-passe-oublie", data={"courriel": email}, timeout=60).ok
    link = _link(deliver(email)[0], "/reinitialisation")
    charter = load_charter(Settings.from_env(database_url).charter_path)
    form = requests.get(link, timeout=60)
    assert form.status_code == 200 and f'name="charte" value="{charter.version}"' in form.text
    without = requests.post(link, data={"mot_de_passe": PASSWORD, "confirmation": PASSWORD}, timeout=60)
    assert without.status_code == 400 and "charte" in without.text
    assert requests.get(f"{base_url}{ITEMS}", auth=(f"contourne-{tag}", PASSWORD), timeout=60).status_code == 401
    done = requests.post(
        link, data={"mot_de_passe": PASSWORD, "confirmation": PASSWORD, "charte": charter.version}, timeout=60
    )
    assert done.status_code == 200
    with psycopg.connect(database_url) as conn:
        accepted = conn.execute(
            "SELECT charter_version FROM resorption.users WHERE username = %s", (f"contourne-{tag}",)
        ).fetchone()
    assert accepted == (charter.version,)
    _fresh_hour(database_url)


def test_a_new_charter_is_told_by_mail_and_asked_at_the_next_sign_in(
    base_url: str,
    database_url: str,
    org: int,
    tag: str,
    mail_settings: Settings,
    deliver: Callable[..., list[Received]],
) -> None:
    name = _user(database_url, org, f"charte-{tag}")
    charter = load_charter(Settings.from_env(database_url).charter_path)
    with psycopg.connect(database_url) as conn:  # accepted an earlier version
        conn.execute(
            "UPDATE resorption.users SET charter_version = '2020-01', charter_accepted_at = now() - "
            "interval '1 year' WHERE username = %s",
            (name,),
        )
    # the daily upkeep tells them of the new version, once
    deliver()
    assert account_upkeep.run(mail_settings, POLICY).told >= 1
    told = deliver(f"{name}@regles.test")
    assert len(told) == 1 and charter.version in told[0].message["Subject"]
    text = told[0].message.get_body(("plain",)).get_content()
    assert "2020-01" in text and f"{base_url}/charte" in text
    assert account_upkeep.run(mail_settings, POLICY).told == 0 and deliver(f"{name}@regles.test") == []
    s = _session(base_url, name, PASSWORD, "/mon-compte")
    assert s.last_location.endswith("/charte?suivant=%2Fmon-compte")  # type: ignore[attr-defined]
    page = s.get(f"{base_url}/charte?suivant=/mon-compte", timeout=60)
    assert page.status_code == 200 and f'value="{charter.version}"' in page.text
    assert charter.title in html.unescape(page.text)
    refused = s.post(f"{base_url}/charte", data={"csrf": _csrf(page.text), "suivant": "/mon-compte"}, timeout=60)
    assert refused.status_code == 400 and "Cochez la case" in refused.text
    accepted = s.post(
        f"{base_url}/charte",
        data={"csrf": _csrf(page.text), "charte": charter.version, "suivant": "/mon-compte"},
        timeout=60,
        allow_redirects=False,
    )
    assert accepted.status_code == 303 and accepted.headers["Location"].endswith("/mon-compte")
    with psycopg.connect(database_url) as conn:
        version, recent = conn.execute(
            "SELECT charter_version, charter_accepted_at > now() - interval '1 minute' "
            "FROM resorption.users WHERE username = %s",
            (name,),
        ).fetchone()
        assert (version, recent) == (charter.version, True)
        audited = conn.execute(
            "SELECT detail->>'charte' FROM resorption.audit_log WHERE action = 'charter_accepted' "
            "AND item_id = (SELECT id::text FROM resorption.users WHERE username = %s)",
            (name,),
        ).fetchall()
        assert audited == [(charter.version,)]
    again = _session(base_url, name, PASSWORD, "/mon-compte")
    assert again.last_location.endswith("/mon-compte")  # type: ignore[attr-defined]


def test_deactivation_by_an_administrator_ends_everything_and_is_on_the_users_page(
    base_url: str, database_url: str, org: int, tag: str, admins: dict[str, tuple[str, str]]
) -> None:
    name = _user(database_url, org, f"desactive-{tag}")
    browser = _session(base_url, name, PASSWORD)
    token = accounts.issue_token(database_url, name, "QGIS").token
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, token), timeout=60).status_code == 200
    assert browser.get(f"{base_url}/mon-compte", timeout=60, allow_redirects=False).status_code == 200
    user_id = accounts.get_user(database_url, name).id
    page = f"{base_url}/administration/utilisateurs/{user_id}"
    # Seine-Saint-Denis's administrator neither sees nor changes a Gironde account
    assert requests.get(page, auth=admins["93"], timeout=60).status_code == 404
    off = {"role": "intervener", "actif": "non"}
    assert requests.post(page, data=off, auth=admins["93"], timeout=60).status_code == 404
    assert accounts.get_user(database_url, name).active
    # nor does Gironde's grant a role its policy keeps from it
    too_much = requests.post(page, data={"role": "operator", "actif": "oui"}, auth=admins["33"], timeout=60)
    assert too_much.status_code == 403 and accounts.get_user(database_url, name).role == "intervener"
    done = requests.post(page, data=off, auth=admins["33"], timeout=60)
    assert done.status_code == 200 and "Modification enregistrée" in done.text
    # everything ends at once: the session, the token, the password
    assert browser.get(f"{base_url}/mon-compte", timeout=60, allow_redirects=False).status_code == 303
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, token), timeout=60).status_code == 401
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, PASSWORD), timeout=60).status_code == 401
    # reactivated: the password again, never the revoked token
    on = requests.post(page, data={"role": "intervener", "actif": "oui"}, auth=admins["33"], timeout=60)
    assert on.status_code == 200
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, PASSWORD), timeout=60).status_code == 200
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, token), timeout=60).status_code == 401
    history = requests.get(page, auth=admins["33"], timeout=60).text
    section = history[history.index('id="historique"') :]
    admin33 = admins["33"][0]
    for action, said in (("user_deactivated", "Compte désactivé"), ("user_reactivated", "Compte réactivé")):
        assert action in section and said in section, action
    assert section.count(admin33) >= 2  # who decided, on each line


def test_a_password_sign_in_over_basic_counts_and_a_token_use_clears_a_warning(
    base_url: str, database_url: str, org: int, tag: str, mail_settings: Settings
) -> None:
    qgis = _user(database_url, org, f"qgis-basic-{tag}")
    scripted = _user(database_url, org, f"script-jeton-{tag}")
    token = accounts.issue_token(database_url, scripted, "Script").token
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.users SET created_at = now() - interval '8 months' WHERE username = ANY(%s)",
            ([qgis, scripted],),
        )
        # the script's account was warned 40 days ago
        conn.execute(
            "UPDATE resorption.users SET inactivity_warned_at = now() - interval '40 days' WHERE username = %s",
            (scripted,),
        )
    # QGIS signs in with the password (HTTP Basic), the script with its token
    assert requests.get(f"{base_url}{ITEMS}", auth=(qgis, PASSWORD), timeout=60).status_code == 200
    assert requests.get(f"{base_url}{ITEMS}", auth=(scripted, token), timeout=60).status_code == 200

    def state(name: str) -> tuple[bool, bool]:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT active, inactivity_warned_at IS NOT NULL FROM resorption.users WHERE username = %s",
                (name,),
            ).fetchone()

    account_upkeep.run(mail_settings, POLICY, months=6, notice_days=30)
    assert state(qgis) == (True, False)  # used today: not warned
    assert state(scripted) == (True, False)  # used since its warning: the warning is cleared
    with psycopg.connect(database_url) as conn:  # then unused for eight months again
        conn.execute(
            "UPDATE resorption.api_tokens SET last_used_at = now() - interval '8 months' WHERE token_hash = %s",
            (hashlib.sha256(token.encode()).digest(),),
        )
    account_upkeep.run(mail_settings, POLICY, months=6, notice_days=30)
    assert state(scripted) == (True, True)  # warned anew, and only then deactivated


def test_revision_0032_brings_its_three_functions(scratch_url: str) -> None:
    """A database of before 0032 (its record_password_success left last_sign_in_at alone, its
    submit_access_request told the administrators of every request, its account_link said
    nothing of the charter, no column said which new charter an account was told of) gets them."""
    from resorption.migrate import upgrade

    upgrade(scratch_url, "0031")
    query = "SELECT prosrc FROM pg_proc WHERE oid = %s::regproc"
    functions = (
        "resorption.record_password_success",
        "resorption.submit_access_request",
        "resorption.account_link",
    )
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        sources = [conn.execute(query, (f,)).fetchone()[0] for f in functions]
        old = sources[0][: sources[0].index("    UPDATE users SET last_sign_in_at")].rstrip().rstrip(";")
        conn.execute(
            "CREATE OR REPLACE FUNCTION resorption.record_password_success("
            "p_username text, p_address text, p_held text[], p_rules jsonb) RETURNS void "
            f"LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = resorption, pg_temp AS $${old}$$"
        )
        conn.execute(
            "CREATE OR REPLACE FUNCTION resorption.submit_access_request("
            "p_request jsonb, p_client text, p_ack jsonb, p_notice jsonb, p_managers jsonb) RETURNS text "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$BEGIN RETURN 'ok'; END$$"
        )
        conn.execute(
            "CREATE OR REPLACE FUNCTION resorption.account_link(p_hash bytea) RETURNS jsonb "
            "LANGUAGE sql STABLE SECURITY DEFINER AS $$SELECT NULL::jsonb$$"
        )
        assert all(
            conn.execute(query, (f,)).fetchone()[0] != source for f, source in zip(functions, sources, strict=True)
        )
        conn.execute("ALTER TABLE resorption.users DROP COLUMN charter_notified_version")
    upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        assert [conn.execute(query, (f,)).fetchone()[0] for f in functions] == sources
        column = "SELECT to_regclass('resorption.users') IS NOT NULL AND EXISTS (SELECT FROM pg_attribute "
        column += "WHERE attrelid = 'resorption.users'::regclass AND attname = 'charter_notified_version')"
        assert conn.execute(column).fetchone()[0]
        assert conn.execute("SELECT version_num FROM public.alembic_version").fetchone()[0] == code_head()


def test_my_account_changes_the_password_and_the_profile(
    base_url: str, database_url: str, org: int, tag: str
) -> None:
    """On « Mon compte »: a wrong current password changes nothing; the right one keeps this
    session, closes the other one and revokes every token; the new name is shown."""
    name = _user(database_url, org, f"moncompte-{tag}")
    here, there = _session(base_url, name, PASSWORD), _session(base_url, name, PASSWORD)
    token = accounts.issue_token(database_url, name, "QGIS").token
    csrf = _csrf(here.get(f"{base_url}/mon-compte", timeout=60).text)
    new = "Autre-Cabane-des-Pins-2027?"
    change = {"csrf": csrf, "actuel": "pas le bon", "nouveau": new, "confirmation": new}
    wrong = here.post(f"{base_url}/mon-compte/mot-de-passe", data=change, timeout=60)
    assert wrong.status_code == 400 and "Mot de passe actuel incorrect" in wrong.text
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, token), timeout=60).status_code == 200
    done = here.post(f"{base_url}/mon-compte/mot-de-passe", data={**change, "actuel": PASSWORD}, timeout=60)
    assert done.status_code == 200 and "1 autre(s) session(s) fermée(s), 1 jeton(s) révoqué(s)" in done.text
    assert here.get(f"{base_url}/mon-compte", timeout=60, allow_redirects=False).status_code == 200
    assert there.get(f"{base_url}/mon-compte", timeout=60, allow_redirects=False).status_code == 303
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, token), timeout=60).status_code == 401
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, PASSWORD), timeout=60).status_code == 401
    assert requests.get(f"{base_url}{ITEMS}", auth=(name, new), timeout=60).status_code == 200
    profile = here.post(
        f"{base_url}/mon-compte/profil", data={"csrf": csrf, "nom": f"Dominique Moncompte {tag}"}, timeout=60
    )
    assert profile.status_code == 200 and "Profil enregistré." in profile.text
    assert f"Dominique Moncompte {tag}" in here.get(f"{base_url}/mon-compte", timeout=60).text
    assert accounts.get_user(database_url, name).full_name == f"Dominique Moncompte {tag}"


def test_a_refusal_is_told_audited_and_listed_by_its_territory_only(
    base_url: str,
    database_url: str,
    admins: dict[str, tuple[str, str]],
    tag: str,
    deliver: Callable[..., list[Received]],
) -> None:
    _fresh_hour(database_url)
    email, person = f"refus-{tag}@horizon.test", f"Claude Refus {tag}"
    assert requests.post(f"{base_url}/demande-acces", data=_form(email, nom=person), timeout=60).ok
    deliver()
    page = requests.get(f"{base_url}/administration/demandes", auth=admins["33"], timeout=60).text
    request_id = int(re.search(rf'id="demande-(\d+)"[^€]*?{re.escape(email)}', page).group(1))
    decide = f"{base_url}/administration/demandes/{request_id}"
    refuse = {"decision": "refuser", "note": "Votre structure n'intervient pas en Gironde."}
    assert requests.post(decide, data=refuse, auth=admins["93"], timeout=60).status_code == 404
    done = requests.post(decide, data=refuse, auth=admins["33"], timeout=60)
    assert done.status_code == 200 and "La demande est refusée" in done.text
    told = deliver(email)
    assert len(told) == 1 and told[0].message["Subject"] == "Votre demande d'accès à Résorption"
    assert "n'intervient pas en Gironde" in told[0].message.get_body(("plain",)).get_content()
    listed = requests.get(f"{base_url}/administration/demandes", auth=admins["33"], timeout=60).text
    row = listed[listed.index(person) :]
    row = row[: row.index("</tr>")]
    assert "refusée" in row and admins["33"][0] in row  # what and who, beside the request
    assert email not in requests.get(f"{base_url}/administration/demandes", auth=admins["93"], timeout=60).text
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT username, detail->>'note' FROM resorption.audit_log "
            "WHERE action = 'access_request_refused' AND item_id = %s",
            (str(request_id),),
        ).fetchall()
    assert audited == [(admins["33"][0], refuse["note"])]
    again = requests.post(decide, data=refuse, auth=admins["33"], timeout=60)
    assert again.status_code == 404  # decided once
    _fresh_hour(database_url)
