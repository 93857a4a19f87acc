"""Accounts: organisations, users and API tokens, through the functions and the command line."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

import psycopg
import pytest
import requests
from click.testing import CliRunner, Result

from resorption import accounts
from resorption.authentication import TOKEN_PREFIX
from resorption.cli.commands import main
from resorption.errors import InvalidParameter, NotFound
from resorption.policy import Policy, load_policy
from resorption.settings import Settings
from tests.test_sessions import sign_in

PASSWORD = "un mot de passe assez long"

_serial = count(1)


def _name(stem: str) -> str:
    """A username no other test (nor the access-matrix users) takes."""
    return f"acc-{stem}-{next(_serial)}"


@pytest.fixture(scope="module")
def policy(database_url: str) -> Policy:
    settings = Settings.from_env(database_url)
    return load_policy(settings.policy_path, settings.collections_dir)


@pytest.fixture(scope="module")
def organisation(database_url: str) -> accounts.Organisation:
    return accounts.create_organisation(
        database_url, "DDETS de la Gironde (tests des comptes)", "state_service", "33", "DDETS 33"
    )


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """Run `resorption …` against the test database; returns click's result."""
    from resorption.cli import commands as cli_module

    # Wide enough that no table cell wraps (rich reads COLUMNS once, at import).
    monkeypatch.setattr(cli_module.out, "width", 250)
    monkeypatch.setattr(cli_module.console, "width", 250)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            main, list(args), input=input, env={"DATABASE_URL": database_url, "COLUMNS": "250"}
        )

    yield invoke


def _create(database_url: str, policy: Policy, default: accounts.Organisation, /, **kwargs) -> accounts.User:
    values = {
        "username": _name("user"),
        "organisation": default.id,
        "role": "operator",
        "area": "departement:33",
    }
    return accounts.create_user(database_url, policy, **{**values, **kwargs})


# -- organisations ----------------------------------------------------------------------------


def test_organisation_created_and_listed(database_url: str, organisation: accounts.Organisation) -> None:
    listed = {o.id: o for o in accounts.list_organisations(database_url)}
    assert listed[organisation.id].name == "DDETS de la Gironde (tests des comptes)"
    assert listed[organisation.id].kind_label == "service de l'État"
    assert listed[organisation.id].departement_code == "33"


def test_organisation_duplicate_refused(database_url: str, organisation: accounts.Organisation) -> None:
    with pytest.raises(InvalidParameter, match="existe déjà pour le département 33"):
        accounts.create_organisation(database_url, organisation.name, "state_service", "33")
    # The same name in another département is another organisation.
    other = accounts.create_organisation(database_url, organisation.name, "state_service", "24")
    assert other.id != organisation.id


@pytest.mark.parametrize(
    ("kind", "departement", "message"),
    [
        ("prefecture", None, "Type d'organisation « prefecture » inconnu. Types : state_service"),
        ("association", "99", "Département inconnu : « 99 »"),
    ],
)
def test_organisation_invalid(database_url: str, kind: str, departement: str | None, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        accounts.create_organisation(database_url, "Association des tests", kind, departement)


# -- users --------------------------------------------------------------------------------------


def test_user_created_with_password(
    database_url: str, db: psycopg.Connection, policy: Policy, organisation: accounts.Organisation
) -> None:
    username = _name("Marie.Durand").upper()
    user = _create(
        database_url,
        policy,
        organisation,
        username=username,
        email="Marie.Durand@Example.org",
        full_name="Marie Durand",
        options=["access_justice", "create_site", "access_justice"],
        area="commune:33063",
        password="un mot de passe assez long",
    )
    assert user.username == username.lower()
    assert user.email == "marie.durand@example.org"
    assert user.options == ("access_justice", "create_site")
    assert user.area == accounts.Area("commune", "33063")
    assert user.area_name == "Bordeaux"
    assert user.organisation_name == organisation.name
    assert user.active and user.has_password
    stored = db.execute(
        "SELECT password_hash FROM resorption.users WHERE username = %s", (user.username,)
    ).fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "un mot de passe" not in stored
    assert user.username in {u.username for u in accounts.list_users(database_url)}


def test_user_by_organisation_name_and_national_area(
    database_url: str, policy: Policy, organisation: accounts.Organisation
) -> None:
    national = accounts.create_organisation(database_url, "Dihal (tests des comptes)", "state_service")
    user = _create(
        database_url,
        policy,
        organisation,
        organisation="Dihal (tests des comptes)",
        role="national_admin",
        area="nation",
    )
    assert user.organisation_id == national.id
    assert user.area == accounts.Area("nation") and user.area_name is None
    assert not user.has_password


def test_ambiguous_organisation_name(
    database_url: str, policy: Policy, organisation: accounts.Organisation
) -> None:
    accounts.create_organisation(database_url, "Médecins du Monde (tests)", "association", "33")
    accounts.create_organisation(database_url, "Médecins du Monde (tests)", "association", "31")
    with pytest.raises(InvalidParameter, match="Plusieurs organisations s'appellent"):
        _create(database_url, policy, organisation, organisation="Médecins du Monde (tests)")
    with pytest.raises(InvalidParameter, match="Organisation « Nulle part » inconnue"):
        _create(database_url, policy, organisation, organisation="Nulle part")
    with pytest.raises(InvalidParameter, match="Organisation n°999999 inconnue"):
        _create(database_url, policy, organisation, organisation="999999")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"role": "superadmin"},
            "Rôle « superadmin » inconnu. Rôles : national_admin \\(Administrateur national\\)",
        ),
        ({"options": ["voir_tout"]}, "Option « voir_tout » inconnue. Options : create_site"),
        ({"area": "departement:99"}, "Territoire inconnu : département « 99 »"),
        ({"area": "commune:99999"}, "Territoire inconnu : commune « 99999 »"),
        ({"area": "epci:000000000"}, "Territoire inconnu : EPCI « 000000000 »"),
        ({"area": "region:99"}, "Territoire inconnu : région « 99 »"),
        ({"area": "gironde"}, "Zone d'intervention « gironde » invalide"),
        ({"area": "canton:3301"}, "Zone d'intervention « canton:3301 » invalide"),
        ({"username": "a"}, "Identifiant « a » invalide"),
        ({"username": "jean dupont"}, "Identifiant « jean dupont » invalide"),
        ({"email": "pas-une-adresse"}, "Adresse électronique « pas-une-adresse » invalide"),
        ({"password": "court"}, "au moins 12 caractères"),
        ({"password": "rsp_ressemble_a_un_jeton"}, "réservé aux jetons"),
    ],
)
def test_user_invalid(
    database_url: str, policy: Policy, organisation: accounts.Organisation, kwargs: dict, message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        _create(database_url, policy, organisation, **kwargs)


def test_user_duplicates(database_url: str, policy: Policy, organisation: accounts.Organisation) -> None:
    first = _create(
        database_url, policy, organisation, email="doublon@example.org", oidc_subject="sub-doublon"
    )
    with pytest.raises(InvalidParameter, match=f"L'identifiant « {first.username} » est déjà pris"):
        _create(database_url, policy, organisation, username=first.username.upper())
    with pytest.raises(InvalidParameter, match=r"L'adresse électronique « doublon@example\.org » est déjà"):
        _create(database_url, policy, organisation, email="DOUBLON@example.org")
    with pytest.raises(InvalidParameter, match="Le sujet OIDC « sub-doublon » est déjà"):
        _create(database_url, policy, organisation, oidc_subject="sub-doublon")


def test_deactivate_revokes_tokens(
    database_url: str, policy: Policy, organisation: accounts.Organisation
) -> None:
    user = _create(database_url, policy, organisation)
    first = accounts.issue_token(database_url, user.username, "QGIS")
    accounts.issue_token(database_url, user.username, "GDAL")
    accounts.revoke_token(database_url, str(first.info.id))
    assert accounts.deactivate_user(database_url, user.username).tokens == 1  # the one still valid
    again = accounts.get_user(database_url, user.username)
    assert not again.active and again.deactivated_at is not None
    assert all(t.revoked_at is not None for t in accounts.list_tokens(database_url, user.username))
    assert user.username not in {
        u.username for u in accounts.list_users(database_url, include_inactive=False)
    }
    assert accounts.deactivate_user(database_url, user.username) == accounts.Ended(sessions=0, tokens=0)
    with pytest.raises(InvalidParameter, match="est désactivé"):
        accounts.issue_token(database_url, user.username)


def test_unknown_user(database_url: str) -> None:
    with pytest.raises(NotFound, match="Utilisateur « personne » inconnu"):
        accounts.deactivate_user(database_url, "personne")
    with pytest.raises(NotFound, match="Utilisateur « personne » inconnu"):
        accounts.issue_token(database_url, "personne")


def test_set_and_remove_password(
    database_url: str, db: psycopg.Connection, policy: Policy, organisation: accounts.Organisation
) -> None:
    user = _create(database_url, policy, organisation)
    accounts.set_password(database_url, user.username, "correct horse battery staple")
    assert accounts.get_user(database_url, user.username).has_password
    accounts.set_password(database_url, user.username, None)
    assert not accounts.get_user(database_url, user.username).has_password


def _signed_in_everywhere(base_url: str, username: str, password: str, token: str) -> requests.Session:
    """A browser session opened with the password; both it and the token read /carte/moi."""
    browser, answer = sign_in(base_url, username, password)
    assert answer.status_code == 303, answer.text
    assert browser.get(f"{base_url}/carte/moi", timeout=60).json()["username"] == username
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base_url}/carte/moi", headers=bearer, timeout=60).status_code == 200
    return browser


def _locked_out(base_url: str, browser: requests.Session, token: str) -> None:
    """Neither the old session nor the old token opens anything any more."""
    assert browser.get(f"{base_url}/carte/moi", timeout=60).status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{base_url}/carte/moi", headers=bearer, timeout=60).status_code == 401


@pytest.mark.parametrize("new_password", ["un tout nouveau mot de passe", None])
def test_a_password_change_ends_every_session_and_token(
    base_url: str,
    database_url: str,
    db: psycopg.Connection,
    policy: Policy,
    organisation: accounts.Organisation,
    new_password: str | None,
) -> None:
    """A password is changed or removed because it leaked: what was opened with it goes too."""
    user = _create(database_url, policy, organisation, password=PASSWORD)
    token = accounts.issue_token(database_url, user.username, "QGIS").token
    browser = _signed_in_everywhere(base_url, user.username, PASSWORD, token)
    ended = accounts.set_password(database_url, user.username, new_password)
    assert ended == accounts.Ended(sessions=1, tokens=1)
    _locked_out(base_url, browser, token)
    assert (
        db.execute(
            "SELECT count(*) FROM resorption.web_sessions s JOIN resorption.users u ON u.id = s.user_id "
            "WHERE u.username = %s",
            (user.username,),
        ).fetchone()[0]
        == 0
    )
    if new_password:
        _, answer = sign_in(base_url, user.username, new_password)
        assert answer.status_code == 303
        fresh = accounts.issue_token(database_url, user.username, "nouveau").token
        assert (
            requests.get(
                f"{base_url}/carte/moi", headers={"Authorization": f"Bearer {fresh}"}, timeout=60
            ).status_code
            == 200
        )


def test_deactivation_ends_every_session_and_token(
    base_url: str, database_url: str, policy: Policy, organisation: accounts.Organisation
) -> None:
    user = _create(database_url, policy, organisation, password=PASSWORD)
    token = accounts.issue_token(database_url, user.username, "QGIS").token
    browser = _signed_in_everywhere(base_url, user.username, PASSWORD, token)
    assert accounts.deactivate_user(database_url, user.username) == accounts.Ended(sessions=1, tokens=1)
    _locked_out(base_url, browser, token)


# -- tokens -------------------------------------------------------------------------------------


def test_token_stored_hashed(
    database_url: str, db: psycopg.Connection, policy: Policy, organisation: accounts.Organisation
) -> None:
    user = _create(database_url, policy, organisation)
    issued = accounts.issue_token(database_url, user.username, "QGIS de Marie", timedelta(days=30))
    assert issued.token.startswith(TOKEN_PREFIX) and len(issued.token) >= 40
    assert issued.info.prefix == issued.token[:8]
    row = db.execute(
        "SELECT token_hash, prefix, label, expires_at - created_at FROM resorption.api_tokens WHERE id = %s",
        (issued.info.id,),
    ).fetchone()
    assert bytes(row[0]) == hashlib.sha256(issued.token.encode()).digest()
    assert row[1:] == (issued.token[:8], "QGIS de Marie", timedelta(days=30))
    # The value is stored nowhere.
    dump = db.execute("SELECT string_agg(t::text, ' ') FROM resorption.api_tokens t").fetchone()[0]
    assert issued.token[8:] not in dump
    default = accounts.issue_token(database_url, user.username)
    assert timedelta(days=89) < default.info.expires_at - default.info.created_at <= timedelta(days=90)


def test_token_listed_and_revoked(
    database_url: str, policy: Policy, organisation: accounts.Organisation
) -> None:
    user = _create(database_url, policy, organisation)
    by_prefix = accounts.issue_token(database_url, user.username, "par le début")
    by_value = accounts.issue_token(database_url, user.username, "par la valeur")
    listed = accounts.list_tokens(database_url, user.username)
    assert [t.id for t in listed] == [by_value.info.id, by_prefix.info.id]
    now = datetime.now(UTC)
    assert {t.state(now) for t in listed} == {"actif"}
    token, revoked_now = accounts.revoke_token(database_url, by_prefix.info.prefix)
    assert revoked_now and token.id == by_prefix.info.id and token.state(now) == "révoqué"
    assert accounts.revoke_token(database_url, by_prefix.info.prefix)[1] is False
    token, revoked_now = accounts.revoke_token(database_url, by_value.token)
    assert revoked_now and token.id == by_value.info.id
    with pytest.raises(NotFound, match="Jeton « rsp_zzzz » inconnu"):
        accounts.revoke_token(database_url, "rsp_zzzz")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("30j", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("4w", timedelta(weeks=4)),
        ("7", timedelta(days=7)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert accounts.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "-3d", "3 mois", "9999999999999d", "5000d"])
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(InvalidParameter, match="Durée"):
        accounts.parse_duration(text)


# -- the command line ---------------------------------------------------------------------------


def test_cli_full_cycle(cli, db: psycopg.Connection) -> None:
    result = cli(
        "organisations",
        "create",
        "Association Rues et Cités (tests CLI)",
        "--kind",
        "association",
        "--departement",
        "33",
    )
    assert result.exit_code == 0, result.output
    assert "Organisation n°" in result.stderr
    listed = cli("organisations", "list")
    assert listed.exit_code == 0 and "Association Rues et Cités (tests CLI)" in listed.stdout

    username = _name("cli")
    result = cli(
        "users",
        "create",
        username,
        "--organisation",
        "Association Rues et Cités (tests CLI)",
        "--role",
        "operator",
        "--area",
        "departement:33",
        "--option",
        "create_site,access_justice",
        "--email",
        f"{username}@example.org",
        "--password",
        input="un mot de passe assez long\nun mot de passe assez long\n",
    )
    assert result.exit_code == 0, result.output
    assert (
        f"Utilisateur « {username} » créé (Opérateur (association), departement:33 (Gironde))"
        in result.stderr
    )
    assert db.execute(
        "SELECT password_hash LIKE '$argon2id$%%' FROM resorption.users WHERE username = %s", (username,)
    ).fetchone()[0]

    users = cli("users", "list")
    line = next(row for row in users.stdout.splitlines() if username in row)
    for expected in ("operator", "departement:33 (Gironde)", "create_site, access_justice", "oui"):
        assert expected in line

    issued = cli("tokens", "issue", username, "--label", "QGIS", "--expires", "30d")
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()
    assert token.startswith("rsp_") and "\n" not in token  # stdout carries the token alone
    assert "ne sera plus jamais affiché" in issued.stderr
    tokens = cli("tokens", "list", "--user", username)
    assert token[:8] in tokens.stdout and token[8:] not in tokens.stdout and "actif" in tokens.stdout

    revoked = cli("tokens", "revoke", token[:8])
    assert revoked.exit_code == 0 and "révoqué" in revoked.stderr
    assert "révoqué" in cli("tokens", "list", "--user", username).stdout

    cli("tokens", "issue", username)
    result = cli("users", "password", username, input="un autre mot de passe\nun autre mot de passe\n")
    assert result.exit_code == 0, result.output
    assert "Mot de passe de" in result.stderr
    assert "sessions fermées : 0 ; jetons révoqués : 1" in result.stderr
    assert f"resorption tokens issue {username}" in result.stderr

    cli("tokens", "issue", username)
    result = cli("users", "deactivate", username)
    assert result.exit_code == 0 and "jetons révoqués : 1" in result.stderr
    assert "non (depuis le" in next(
        row for row in cli("users", "list").stdout.splitlines() if username in row
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("users", "create", "acc-x1", "--organisation", "1", "--role", "chef", "--area", "nation"),
            "Rôle « chef » inconnu. Rôles : national_admin (Administrateur national), local_admin",
        ),
        (
            ("users", "create", "acc-x2", "--organisation", "1", "--area", "nation"),
            "L'option --role est obligatoire : l'un de national_admin",
        ),
        (
            (
                "users",
                "create",
                "acc-x3",
                "--organisation",
                "1",
                "--role",
                "operator",
                "--area",
                "departement:00",
            ),
            "Territoire inconnu : département « 00 »",
        ),
        (
            ("organisations", "create", "X", "--kind", "ministere"),
            "Type d'organisation « ministere » inconnu",
        ),
        (("users", "deactivate", "personne"), "Utilisateur « personne » inconnu"),
        (("tokens", "issue", "personne", "--expires", "demain"), "Durée « demain » invalide"),
        (("tokens", "revoke", "rsp_zzzz"), "Jeton « rsp_zzzz » inconnu"),
    ],
)
def test_cli_errors_in_french(cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 1
    assert "Erreur :" in result.stderr
    assert message in " ".join(result.stderr.split())


def test_cli_password_mismatch_and_too_short(
    cli, database_url: str, policy: Policy, organisation: accounts.Organisation
) -> None:
    user = _create(database_url, policy, organisation)
    short = cli("users", "password", user.username, input="court\ncourt\n")
    assert short.exit_code == 1 and "au moins 12 caractères" in short.stderr
    assert not accounts.get_user(database_url, user.username).has_password
