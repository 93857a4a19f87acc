"""The whole account lifecycle in Chromium, with the project's SMTP server and GDAL.

A person asks for access; the administrator of Gironde sees the request (Seine-Saint-Denis's
does not) and accepts it; the activation link is read from the message the SMTP server
received; the person accepts the charter, chooses a password, signs in, makes a token on « Mon
compte » that `ogrinfo` uses (HTTP Basic, username and token); a reset by e-mail then closes the
old browser session and the token is refused.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from resorption import accounts
from resorption.mail_server import Received
from tests.fix_browser import Pages
from tests.fix_users import POLICY

PASSWORD = "Cabane-des-Pins-2026!"


def _sign_in(page: Page, username: str, password: str, then: str) -> None:
    page.goto(f"/connexion?suivant={then}")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"**{then}")


def _link(message: Received, path: str) -> str:
    text = message.message.get_body(preferencelist=("plain",)).get_content()
    return re.search(rf"https?://\S+{path}/[A-Za-z0-9_-]+", text).group(0)


def _ogrinfo(base_url: str, username: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GDAL_HTTP_AUTH": "BASIC",
        "GDAL_HTTP_USERPWD": f"{username}:{token}",
        "GDAL_HTTP_TIMEOUT": "120",
    }
    tool = shutil.which("ogrinfo")
    assert tool, "ogrinfo est introuvable : installez gdal-bin"
    return subprocess.run(
        [tool, "-ro", "-so", f"OAPIF:{base_url}", "sites"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_request_activation_token_and_reset_in_a_browser(
    pages: Pages,
    base_url: str,
    database_url: str,
    deliver: Callable[..., list[Received]],
    screenshot: Callable[[Page, str], Path],
) -> None:
    tag = secrets.token_hex(3)
    org = accounts.create_organisation(database_url, f"Préfecture (navigateur {tag})", "state_service")
    for code in ("33", "93"):
        accounts.create_user(
            database_url,
            POLICY,
            username=f"nav-admin-{code}-{tag}",
            organisation=org.id,
            role="local_admin",
            area=f"departement:{code}",
            password=PASSWORD,
            email=f"nav-admin-{code}-{tag}@prefecture.test",
        )
    email = f"dominique-{tag}@horizon.test"
    deliver()

    # the request
    person = pages.open()
    person.goto("/demande-acces")
    person.get_by_label("Prénom et nom").fill("Dominique Bernard")
    person.get_by_label("Adresse électronique professionnelle").fill(email)
    person.get_by_label("Organisation (service, collectivité, association)").fill("Association Horizon")
    person.get_by_label("Territoire (département où vous intervenez)").select_option("33")
    person.get_by_label("Rôle souhaité").select_option("intervener")
    person.get_by_label("Motif (votre mission, ce dont vous avez besoin)").fill(
        "Je coordonne la médiation scolaire sur les sites de la métropole bordelaise."
    )
    screenshot(person, "demande")
    person.wait_for_timeout(3200)  # a person takes a few seconds; the form refuses robots' haste silently
    person.get_by_role("button", name="Envoyer la demande").click()
    expect(person.locator("#demande-envoyee")).to_be_visible()
    assert any(email in m.rcpt_tos for m in deliver())

    # the administrator of the right territory sees it, the other one does not
    other = pages.open()
    _sign_in(other, f"nav-admin-93-{tag}", PASSWORD, "/administration/demandes")
    assert email not in other.content()
    admin = pages.open()
    _sign_in(admin, f"nav-admin-33-{tag}", PASSWORD, "/administration/demandes")
    request = admin.locator("article.demande", has_text=email)
    expect(request).to_be_visible()
    screenshot(admin, "demandes")
    request.get_by_label("Identifiant").fill(f"dominique-{tag}")
    request.get_by_role("button", name="Accepter et envoyer le lien d'activation").click()
    expect(admin.locator("#fiche-utilisateur")).to_contain_text(email)
    expect(admin.locator("#historique")).to_contain_text("user_created")

    # activation: the link from the received message, the charter, a password
    activation = [m for m in deliver() if email in m.rcpt_tos]
    assert len(activation) == 1
    person.goto(_link(activation[0], "/activation"))
    expect(person.locator("#identifiant")).to_have_text(f"dominique-{tag}")
    person.get_by_label("J'ai lu la charte d'utilisation et je l'accepte.").check()
    person.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    person.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
    screenshot(person, "activation")
    person.get_by_role("button", name="Activer mon compte").click()
    expect(person.locator("#lien-utilise")).to_be_visible()

    # sign-in, a token made on « Mon compte », used by GDAL
    _sign_in(person, f"dominique-{tag}", PASSWORD, "/mon-compte")
    person.get_by_label("Libellé").fill("QGIS bureau")
    person.get_by_role("button", name="Créer un jeton").click()
    token = person.locator("#nouveau-jeton").input_value()
    assert token.startswith("rsp_")
    screenshot(person, "mon-compte")
    done = _ogrinfo(base_url, f"dominique-{tag}", token)
    assert done.returncode == 0 and "Layer name: sites" in done.stdout, done.stderr[-3000:]

    # a reset by e-mail: the old session and the token are refused
    stranger = pages.open()
    stranger.goto("/mot-de-passe-oublie")
    stranger.get_by_label("Adresse électronique de votre compte").fill(email)
    stranger.get_by_role("button", name="Recevoir un lien").click()
    expect(stranger.locator("#oubli-envoye")).to_be_visible()
    reset = [m for m in deliver() if email in m.rcpt_tos]
    assert len(reset) == 1
    stranger.goto(_link(reset[0], "/reinitialisation"))
    new_password = "Nouvelle-Cabane-2027?"
    stranger.get_by_label("Mot de passe", exact=True).fill(new_password)
    stranger.get_by_label("Confirmez le mot de passe").fill(new_password)
    stranger.get_by_role("button", name="Enregistrer le mot de passe").click()
    expect(stranger.locator("#lien-utilise")).to_be_visible()
    person.goto("/mon-compte")
    person.wait_for_url("**/connexion?suivant=*")  # the old session is closed
    refused = _ogrinfo(base_url, f"dominique-{tag}", token)
    assert refused.returncode != 0 and "401" in refused.stderr + refused.stdout
    _sign_in(person, f"dominique-{tag}", new_password, "/mon-compte")
    expect(person.locator("#jetons")).to_contain_text("révoqué")
