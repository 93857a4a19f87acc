"""Accounts people get and manage themselves, over HTTP, with the e-mails a real SMTP server
(the project's, tests/fix_mail.py) received.

A person asks for access (robots get the same answer and leave nothing); the administrator of
the right territory sees and decides the request, the other territory's neither sees it nor can
decide it, and nobody grants more than the policy lets them; the activation link read from the
received message sets the charter and a password (strength checked) once; a token made on « Mon
compte » opens the API; a reset link ends every session and token; every decision is on the
user's page. The outbox survives an SMTP server that is down and never sends a message twice.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg
import pytest
import requests

from resorption import accounts
from resorption.mail import send_due
from resorption.mail_server import Received
from resorption.settings import Settings
from tests.fix_users import POLICY

PASSWORD = "Cabane-des-Pins-2026!"


@pytest.fixture(scope="module")
def admins(database_url: str) -> Iterator[dict[str, str]]:
    """A local administrator of Gironde and one of Seine-Saint-Denis (username → password)."""
    tag = secrets.token_hex(3)
    org = accounts.create_organisation(database_url, f"Préfecture (comptes {tag})", "state_service")
    made = {}
    for code in ("33", "93"):
        name = f"admin-{code}-{tag}"
        accounts.create_user(
            database_url,
            POLICY,
            username=name,
            organisation=org.id,
            role="local_admin",
            area=f"departement:{code}",
            email=f"{name}@prefecture.test",
            password=PASSWORD,
        )
        made[code] = name
    yield made


def _basic(username: str, password: str) -> tuple[str, str]:
    return (username, password)


def _link(message: Received, path: str) -> str:
    """The one link to `path` in the text part, the same as the HTML part's."""
    text = message.message.get_body(preferencelist=("plain",)).get_content()
    html = message.message.get_body(preferencelist=("html",)).get_content()
    links = re.findall(rf"https?://\S+{path}/[A-Za-z0-9_-]+", text)
    assert len(set(links)) == 1, text
    assert f'href="{links[0]}"' in html
    return links[0]


def _ask(
    base_url: str, email: str, departement: str = "33", wait: bool = True, **extra: str
) -> requests.Response:
    form = {
        "nom": "Camille Martin",
        "courriel": email,
        "organisation": "Association Horizon",
        "departement": departement,
        "role": "intervener",
        "motif": "J'accompagne les familles du site de la Jallère pour la scolarisation.",
        "debut": str(int(time.time()) - (10 if wait else 0)),
        **extra,
    }
    return requests.post(f"{base_url}/demande-acces", data=form, timeout=60)


def _requests_of(database_url: str, email: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM resorption.access_requests WHERE email = %s", (email,)
        ).fetchone()[0]


def test_robots_get_the_same_answer_and_leave_nothing(base_url: str, database_url: str) -> None:
    email = f"robot-{secrets.token_hex(3)}@exemple.fr"
    page = requests.get(f"{base_url}/demande-acces", timeout=60)
    assert page.status_code == 200 and 'name="site_web"' in page.text and "Territoire" in page.text
    honeypot = _ask(base_url, email, site_web="http://promo.example")
    too_fast = _ask(base_url, email, wait=False)
    assert honeypot.status_code == too_fast.status_code == 200
    assert "Demande envoyée" in honeypot.text and "Demande envoyée" in too_fast.text
    assert _requests_of(database_url, email) == 0
    wrong = _ask(base_url, "pas-une-adresse")
    assert wrong.status_code == 400 and "Adresse électronique" in wrong.text
    assert "Camille Martin" in wrong.text  # what was typed stays


def test_a_refused_request_shows_each_wrong_field_beside_it(base_url: str) -> None:
    """Every wrong field at once, each with its message under it (DSFR error state, described by
    it, marked invalid), listed on top with links; the right fields keep what was typed."""
    page = _ask(base_url, "pas-une-adresse", nom=" ", motif="Court")
    assert page.status_code == 400
    text = page.text
    assert "3 champs sont à corriger" in text
    for name, words in (("nom", "Nom :"), ("courriel", "Adresse électronique :"), ("motif", "Motif :")):
        assert f'href="#{name}"' in text
        assert re.search(rf'<p class="fr-error-text" id="{name}-erreur">{words}', text), name
        assert re.search(rf'id="{name}" name="{name}" aria-invalid="true" aria-describedby="{name}-erreur"', text)
    assert text.count("fr-input-group--error") == 3 and "fr-select-group--error" not in text
    assert 'id="organisation-erreur"' not in text and 'value="Association Horizon"' in text


def test_an_address_asks_a_few_times_an_hour_at_most(base_url: str, database_url: str) -> None:
    """The throttle lives in PostgreSQL: a fourth request of an address within the hour is answered
    like the others and recorded nowhere (the suite's requests all come from 127.0.0.1)."""
    with psycopg.connect(database_url) as conn:  # a clean hour for this address
        conn.execute(
            "UPDATE resorption.access_requests SET created_at = created_at - interval '1 day' "
            "WHERE client = '127.0.0.1'"
        )
    emails = [f"serie-{i}-{secrets.token_hex(3)}@exemple.fr" for i in range(4)]
    for email in emails:
        assert _ask(base_url, email).status_code == 200
    assert [_requests_of(database_url, e) for e in emails] == [1, 1, 1, 0]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.access_requests SET created_at = created_at - interval '1 day' "
            "WHERE client = '127.0.0.1'"
        )


def test_the_whole_lifecycle(
    base_url: str, database_url: str, admins: dict[str, str], deliver: Callable[..., list[Received]]
) -> None:
    email = f"camille-{secrets.token_hex(3)}@horizon.test"
    deliver()  # whatever other tests left in the outbox
    assert _ask(base_url, email).status_code == 200
    assert _requests_of(database_url, email) == 1

    # the requester is told, the administrators of Gironde are, the one of 93 is not
    received = deliver()
    ack = [m for m in received if email in m.rcpt_tos]
    assert len(ack) == 1
    message = ack[0].message
    assert message["Subject"] == "Votre demande d'accès à Résorption est enregistrée"
    assert message["From"] == "Résorption <ne-pas-repondre@resorption.localhost>"
    assert re.fullmatch(r"<[0-9a-f-]{36}@resorption\.localhost>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    assert "Association Horizon" in message.get_body(preferencelist=("plain",)).get_content()
    assert "rôle souhaité : Intervenant" in message.get_body(preferencelist=("html",)).get_content()
    admin33, admin93 = f"{admins['33']}@prefecture.test", f"{admins['93']}@prefecture.test"
    assert any(admin33 in m.rcpt_tos for m in received)
    assert not any(admin93 in m.rcpt_tos for m in received)

    # the request is seen in Gironde only
    gironde, seine = _basic(admins["33"], PASSWORD), _basic(admins["93"], PASSWORD)
    page33 = requests.get(f"{base_url}/administration/demandes", auth=gironde, timeout=60)
    page93 = requests.get(f"{base_url}/administration/demandes", auth=seine, timeout=60)
    assert page33.status_code == page93.status_code == 200
    assert email in page33.text and email not in page93.text
    request_id = int(re.search(rf'id="demande-(\d+)"[^€]*?{re.escape(email)}', page33.text).group(1))
    observer = requests.get(
        f"{base_url}/administration/demandes", auth=("external-observer-departement-33", "x"), timeout=60
    )
    assert observer.status_code == 401

    # 93 cannot decide it; Gironde cannot grant more than its policy says
    decide = f"{base_url}/administration/demandes/{request_id}"
    accept = {"decision": "accepter", "identifiant": email.split("@")[0], "role": "intervener"}
    assert requests.post(decide, data=accept, auth=seine, timeout=60).status_code == 404
    too_much = requests.post(decide, data={**accept, "role": "operator"}, auth=gironde, timeout=60)
    assert too_much.status_code == 403 and "attribuer" in too_much.text
    option = requests.post(decide, data={**accept, "options": "create_site"}, auth=gironde, timeout=60)
    assert option.status_code == 403
    accepted = requests.post(
        decide, data={**accept, "options": "access_justice"}, auth=gironde, timeout=60, allow_redirects=False
    )
    assert accepted.status_code == 303, accepted.text
    user_page = accepted.headers["Location"]
    user_id = int(user_page.rsplit("/", 1)[1])
    assert requests.get(user_page, auth=seine, timeout=60).status_code == 404
    again = requests.post(decide, data=accept, auth=gironde, timeout=60)
    assert again.status_code == 404  # decided once

    # the activation link, read from the message the SMTP server received
    activation = deliver(email)
    assert len(activation) == 1 and activation[0].message["Subject"] == "Activez votre compte Résorption"
    link = _link(activation[0], "/activation")
    username = email.split("@")[0]
    assert username in activation[0].message.get_body(preferencelist=("plain",)).get_content()
    form = requests.get(link, timeout=60)
    assert form.status_code == 200 and 'name="charte" value="2026-12"' in form.text and username in form.text
    weak = requests.post(
        link,
        data={"mot_de_passe": "motdepasse123", "confirmation": "motdepasse123", "charte": "2026-12"},
        timeout=60,
    )
    assert weak.status_code == 400 and "mot de passe" in weak.text.lower()
    no_charter = requests.post(link, data={"mot_de_passe": PASSWORD, "confirmation": PASSWORD}, timeout=60)
    assert no_charter.status_code == 400 and "charte" in no_charter.text
    done = requests.post(
        link, data={"mot_de_passe": PASSWORD, "confirmation": PASSWORD, "charte": "2026-12"}, timeout=60
    )
    assert done.status_code == 200 and "Mot de passe enregistré" in done.text
    assert requests.get(link, timeout=60).status_code == 404  # once only

    # signed in, a token made on « Mon compte » opens the API
    me = (username, PASSWORD)
    items = f"{base_url}/collections/sites/items?limit=1"
    assert requests.get(items, auth=me, timeout=60).status_code == 200
    made = requests.post(
        f"{base_url}/mon-compte/jetons", data={"libelle": "QGIS bureau", "duree": "30"}, auth=me, timeout=60
    )
    assert made.status_code == 200
    token = re.search(r'id="nouveau-jeton" readonly value="(rsp_[^"]+)"', made.text).group(1)
    assert requests.get(items, auth=(username, token), timeout=60).status_code == 200
    listed = requests.get(f"{base_url}/mon-compte", auth=me, timeout=60)
    assert token[:8] in listed.text and token not in listed.text  # shown once

    # a reset ends every token; the old password is refused, the new one works
    assert (
        requests.post(f"{base_url}/mot-de-passe-oublie", data={"courriel": email}, timeout=60).status_code
        == 200
    )
    unknown = requests.post(
        f"{base_url}/mot-de-passe-oublie", data={"courriel": "personne@nulle.part"}, timeout=60
    )
    assert unknown.status_code == 200 and unknown.text.count("Si un compte actif") == 1
    reset = deliver(email)
    assert len(reset) == 1 and f"« {username} »" in reset[0].message.get_body(("plain",)).get_content()
    new_password = "Nouvelle-Cabane-2027?"
    r = requests.post(
        _link(reset[0], "/reinitialisation"),
        data={"mot_de_passe": new_password, "confirmation": new_password},
        timeout=60,
    )
    assert r.status_code == 200
    assert requests.get(items, auth=(username, token), timeout=60).status_code == 401
    assert requests.get(items, auth=me, timeout=60).status_code == 401
    assert requests.get(items, auth=(username, new_password), timeout=60).status_code == 200

    # every decision is on the user's page; deactivation ends the account's access
    history = requests.get(user_page, auth=gironde, timeout=60).text
    for action in ("user_created", "account_activated", "token_created", "password_reset"):
        assert action in history, action
    off = requests.post(user_page, data={"role": "intervener", "actif": "non"}, auth=gironde, timeout=60)
    assert off.status_code == 200 and "user_deactivated" in off.text
    assert requests.get(items, auth=(username, new_password), timeout=60).status_code == 401
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT username FROM resorption.audit_log WHERE action = 'user_deactivated' AND item_id = %s",
            (str(user_id),),
        ).fetchone()
    assert row == (admins["33"],)


def test_the_outbox_waits_for_a_server_that_is_down_and_sends_once(
    database_url: str, mail_settings: Settings, deliver: Callable[..., list[Received]]
) -> None:
    deliver()
    email = f"file-{secrets.token_hex(3)}@exemple.fr"
    with psycopg.connect(database_url) as conn:
        key = conn.execute(
            "INSERT INTO resorption.mail_outbox (kind, recipient, subject, body_text, body_html) "
            "VALUES ('test', %s, 'Essai de la file', 'Texte', '<p>Texte</p>') RETURNING message_key",
            (email,),
        ).fetchone()[0]
    with socketless_port() as closed:
        down = send_due(replace(mail_settings, smtp_port=closed))
    assert down.sent == 0 and down.failed >= 1
    with psycopg.connect(database_url) as conn:
        attempts, waits, error = conn.execute(
            "SELECT attempts, next_attempt_at > now(), last_error FROM resorption.mail_outbox WHERE message_key = %s",
            (key,),
        ).fetchone()
        assert attempts == 1 and waits and "Connection" in error
        assert deliver(email) == []  # not due yet
        conn.execute(
            "UPDATE resorption.mail_outbox SET next_attempt_at = now() WHERE message_key = %s", (key,)
        )
    sent = deliver(email)
    assert len(sent) == 1 and sent[0].message["Message-ID"].startswith(f"<{key}@")
    assert deliver(email) == []  # never twice


class socketless_port:
    """A local port nobody listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
