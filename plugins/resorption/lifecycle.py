"""Accounts people get and manage themselves: access requests, decisions, one-time links,
the charter, « Mon compte ».

Every function acts as a `Caller` (`Caller.account()`): the SECURITY DEFINER functions of
sql/205_accounts_lifecycle.sql check inside who acts and, for an administrator, its reach and
what it may grant (`manage_users`, `grantable_roles` of the policy). Python checks the input
first with French messages saying what would be right; e-mails are composed here
(`resorption.mail.compose`) and written to the outbox by the same database call as their
event, in its transaction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from psycopg.types.json import Jsonb

from resorption import broker, statements
from resorption.accounts import EMAIL_PATTERN, USERNAME_PATTERN, check_password
from resorption.authentication import (
    TOKEN_DISPLAY_LENGTH,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from resorption.caller import Caller
from resorption.errors import ConfigurationError, FieldErrors, Forbidden, InvalidParameter, NotFound
from resorption.mail import compose

SQL = statements.load("lifecycle")

ACTIVATION_LIFETIME = timedelta(days=7)
RESET_LIFETIME = timedelta(hours=1)
SUBSCRIPTIONS = {
    "weekly_digest": (
        "Résumé hebdomadaire de mon territoire (sites nouveaux, fermés, modifiés, messages, actions)"
    ),
    "site_alerts": "Alerte immédiate quand un site que je suis est fermé ou reçoit un message",
    "indicator_reminder": "Rappel annuel de mise à jour des indicateurs de mes actions",
}
# Passwords anyone would try first (beyond the length rule of accounts.check_password).
COMMON_WORDS = ("motdepasse", "password", "azerty", "qwerty", "123456", "resorption", "soleil", "bonjour")


@dataclass(frozen=True, slots=True)
class Charter:
    """The charter of use: its version and its text."""

    version: str
    title: str
    paragraphs: tuple[str, ...]


def load_charter(path: Path) -> Charter:
    """The charter of `config/charte.yml`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Charter(str(raw["version"]), str(raw["title"]), tuple(str(p) for p in raw["paragraphs"]))
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"La charte d'utilisation ({path}) est illisible : version, title et paragraphs sont attendus."
        ) from exc


def check_strength(password: str, *personal: str | None) -> None:
    """Refuse a weak password: too short (accounts.check_password), too uniform, or built on a
    common word or on the person's own name, username or e-mail."""
    check_password(password)
    lowered = password.lower()
    if len(set(password)) < 6:
        raise InvalidParameter("Le mot de passe répète trop les mêmes caractères : mélangez-en davantage.")
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^a-zA-Z\d]"))
    if classes < 2 and len(password) < 16:
        raise InvalidParameter(
            "Le mot de passe doit mêler au moins deux sortes de caractères "
            "(minuscules, majuscules, chiffres, "
            "symboles), ou compter 16 caractères au moins."
        )
    words = [w for w in COMMON_WORDS if w in lowered]
    for text in personal:
        words += [p for p in re.split(r"[^a-z0-9]+", (text or "").lower()) if len(p) >= 4 and p in lowered]
    if words:
        raise InvalidParameter(
            f"Le mot de passe contient « {words[0]} », trop facile à deviner : choisissez-en un autre."
        )


def _mail(mail: Any) -> Jsonb:
    return Jsonb({"subject": mail.subject, "text": mail.text, "html": mail.html})


def _link(caller: Caller, path: str, token: str) -> str:
    return f"{caller.settings.public_url}{path}/{token}"


def departements(caller: Caller) -> list[tuple[str, str]]:
    """Every département, as (code, name), for the request form."""
    with caller.reading() as conn:
        return [(r[0], r[1]) for r in conn.execute(SQL.departements).fetchall()]


# -- access requests ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What the public form sends."""

    full_name: str
    email: str
    organisation: str
    departement: str
    role: str
    reason: str


def check_request(caller: Caller, form: AccessRequest) -> AccessRequest:
    """The request, trimmed; `FieldErrors` naming every field that is wrong."""
    clean = AccessRequest(
        full_name=form.full_name.strip()[:200],
        email=form.email.strip().lower(),
        organisation=form.organisation.strip()[:200],
        departement=form.departement.strip().upper(),
        role=form.role.strip(),
        reason=form.reason.strip(),
    )
    wrong: dict[str, str] = {}
    if len(clean.full_name) < 2:
        wrong["nom"] = "Nom : indiquez vos prénom et nom."
    if (
        not EMAIL_PATTERN.match(clean.email)
        or "." not in clean.email.partition("@")[2]
        or len(clean.email) > 254
    ):
        wrong["courriel"] = (
            "Adresse électronique : une adresse complète est attendue, par exemple prenom.nom@exemple.fr."
        )
    if len(clean.organisation) < 2:
        wrong["organisation"] = (
            "Organisation : indiquez le service, la collectivité ou l'association où vous travaillez."
        )
    if not re.fullmatch(r"\d[0-9AB]\d?", clean.departement):
        wrong["departement"] = "Territoire : choisissez le département où vous intervenez."
    if clean.role not in caller.policy.roles:
        wrong["role"] = "Rôle souhaité : choisissez l'un des rôles proposés."
    if not 10 <= len(clean.reason) <= 2000:
        wrong["motif"] = (
            "Motif : expliquez en quelques phrases (10 à 2 000 caractères) pourquoi vous demandez un accès."
        )
    if wrong:
        raise FieldErrors(wrong)
    return clean


def submit_request(caller: Caller, form: AccessRequest, client: str) -> None:
    """Record a request (throttled in the database) and tell the requester and the territory's
    administrators; an abuse is answered like a success."""
    request = check_request(caller, form)
    role = caller.policy.roles[request.role].label.fr
    context = {"request": request, "role": role, "url": caller.settings.public_url}
    ack = compose("access_request_received", context)
    notice = compose(
        "access_request_notice",
        {
            **context,
            "departement": request.departement,
            "link": f"{caller.settings.public_url}/administration/demandes",
        },
    )
    payload = {
        "full_name": request.full_name,
        "email": request.email,
        "organisation": request.organisation,
        "departement": request.departement,
        "role": request.role,
        "reason": request.reason,
    }
    with caller.account() as conn:
        status = conn.execute(
            SQL.submit_request,
            (Jsonb(payload), client, _mail(ack), _mail(notice), Jsonb(caller.policy.managers())),
        ).fetchone()[0]
    if status == "territoire":
        unknown = f"Territoire : le département « {request.departement} » n'existe pas."
        raise FieldErrors({"departement": unknown})


def requests_in_scope(caller: Caller) -> list[dict[str, Any]]:
    """The requests the caller may decide (nothing for who manages no one)."""
    with caller.account() as conn:
        return [r[0] for r in conn.execute(SQL.requests_in_scope).fetchall()]


def decide(
    caller: Caller,
    request_id: int,
    accept: bool,
    username: str = "",
    role: str = "",
    options: tuple[str, ...] = (),
    note: str = "",
) -> dict[str, Any]:
    """Accept (a user and an activation link, mailed) or refuse (the requester is told) a request
    within the caller's reach; 404 outside it, 403 for a role or option it may not grant."""
    found = next((r for r in requests_in_scope(caller) if r["id"] == request_id), None)
    if found is None or found["status"] != "pending":
        raise NotFound("Cette demande n'existe pas, a déjà été décidée ou ne relève pas de votre territoire.")
    note = note.strip()[:2000]
    token = secrets.token_urlsafe(32)
    if accept:
        username = username.strip().lower()
        if not USERNAME_PATTERN.match(username):
            raise InvalidParameter(
                f"Identifiant « {username} » invalide : 3 à 64 caractères parmi lettres minuscules, "
                "chiffres, "
                "« . », « _ », « @ » et « - »."
            )
        if role not in caller.policy.grantable_roles(caller.principal) or not set(options) <= set(
            caller.policy.grantable_options(caller.principal)
        ):
            raise Forbidden("Votre rôle ne vous permet pas d'attribuer ce rôle ou ces options.")
        mail = compose(
            "activation",
            {
                "request": found,
                "username": username,
                "role": caller.policy.roles[role].label.fr,
                "link": _link(caller, "/activation", token),
                "days": ACTIVATION_LIFETIME.days,
            },
        )
    else:
        mail = compose("access_request_refused", {"request": found, "note": note})
    with caller.account() as conn:
        result = conn.execute(
            SQL.decide_request,
            (
                request_id,
                accept,
                username or None,
                role or None,
                list(options),
                note or None,
                token_hash(token),
                int(ACTIVATION_LIFETIME.total_seconds()),
                _mail(mail),
            ),
        ).fetchone()[0]
    error = result.get("error")
    if error == "introuvable":
        raise NotFound("Cette demande n'existe pas, a déjà été décidée ou ne relève pas de votre territoire.")
    if error == "role":
        raise Forbidden("Votre rôle ne vous permet pas d'attribuer ce rôle ou ces options.")
    if error == "email":
        raise InvalidParameter(f"Un compte existe déjà avec l'adresse {found['email']}.")
    if error:
        raise InvalidParameter(f"L'identifiant « {username} » est déjà pris : choisissez-en un autre.")
    return result


def users_in_scope(caller: Caller) -> list[dict[str, Any]]:
    """The users the caller manages."""
    with caller.account() as conn:
        return [r[0] for r in conn.execute(SQL.users_in_scope).fetchall()]


def user_in_scope(caller: Caller, user_id: int) -> dict[str, Any]:
    """One user the caller manages, with the decisions about them; 404 otherwise."""
    with caller.account() as conn:
        row = conn.execute(SQL.user_in_scope, (user_id,)).fetchone()
    if row is None or row[0] is None:
        raise NotFound("Cet utilisateur n'existe pas ou ne relève pas de votre territoire.")
    return row[0]


def update_user(caller: Caller, user_id: int, role: str, options: tuple[str, ...], active: bool) -> None:
    """Change a user the caller manages (role, options, active); every change is audited."""
    if role not in caller.policy.roles or not set(options) <= set(caller.policy.options):
        raise InvalidParameter("Choisissez un rôle et des options de la politique d'accès.")
    with caller.account() as conn:
        result = conn.execute(SQL.update_user, (user_id, role, list(options), active)).fetchone()[0]
    error = result.get("error")
    if error == "introuvable":
        raise NotFound("Cet utilisateur n'existe pas ou ne relève pas de votre territoire.")
    if error == "soi-meme":
        raise Forbidden(
            "Vous ne pouvez pas modifier vos propres droits : demandez-le à un autre administrateur."
        )
    if error:
        raise Forbidden(
            "Votre rôle ne vous permet pas d'attribuer ce rôle ou ces options, ni de gérer ce compte."
        )


# -- one-time links --------------------------------------------------------------------------------


def link_of(caller: Caller, token: str) -> dict[str, Any]:
    """What a valid one-time link is for; 404 (one message) for an unknown, used or expired one."""
    row = None
    if 20 <= len(token) <= 100:
        with caller.account() as conn:
            row = conn.execute(SQL.account_link, (token_hash(token),)).fetchone()
    if row is None or row[0] is None:
        raise NotFound(
            "Ce lien n'est plus valable : il a déjà servi ou a expiré. Demandez un nouveau lien "
            "(« Mot de passe oublié ») ou adressez-vous à l'administrateur de votre territoire."
        )
    return row[0]


def charter_asked(link: dict[str, Any], charter: Charter) -> bool:
    """Whether a link's form asks for the charter: always on activation, and on a reset of an
    account that has not accepted this version (a reset link asked for right after an access
    was granted must not be a way around the charter)."""
    return link["purpose"] == "activation" or link.get("charter_version") != charter.version


def use_link(
    caller: Caller, token: str, password: str, confirmation: str, charter: str | None
) -> dict[str, Any]:
    """Set the password of a valid link's account (and the charter accepted, on activation)."""
    link = link_of(caller, token)
    if password != confirmation:
        raise InvalidParameter("Les deux mots de passe saisis diffèrent : saisissez deux fois le même.")
    check_strength(password, link["username"], link.get("full_name"))
    if charter_asked(link, load_charter(caller.settings.charter_path)) and not charter:
        raise InvalidParameter("Acceptez la charte d'utilisation pour activer votre compte.")
    with caller.account() as conn:
        row = conn.execute(SQL.use_link, (token_hash(token), hash_password(password), charter)).fetchone()
    if row is None or row[0] is None:
        raise NotFound("Ce lien n'est plus valable : il a déjà servi ou a expiré.")
    return {**row[0], "username": link["username"]}


def request_reset(caller: Caller, email: str, client: str) -> None:
    """Mail a reset link to the account of `email`, if there is one (same answer otherwise)."""
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email) or len(email) > 254:
        raise InvalidParameter("Adresse électronique : une adresse complète est attendue.")
    token = secrets.token_urlsafe(32)
    mail = compose(
        "password_reset",
        {
            "link": _link(caller, "/reinitialisation", token),
            "minutes": int(RESET_LIFETIME.total_seconds() // 60),
        },
    )
    with caller.account() as conn:
        conn.execute(
            SQL.request_reset,
            (email, token_hash(token), int(RESET_LIFETIME.total_seconds()), _mail(mail), client),
        )


# -- « Mon compte » ------------------------------------------------------------------------------------


def my_account(caller: Caller, session_hash: bytes | None) -> dict[str, Any]:
    """The caller's profile, sessions, tokens and subscriptions."""
    with caller.account() as conn:
        row = conn.execute(SQL.my_account, (session_hash,)).fetchone()
    if row is None or row[0] is None:
        raise NotFound("Compte introuvable.")
    return row[0]


def charter_pending(caller: Caller, charter: Charter) -> bool:
    """Whether the caller has still to accept this version of the charter."""
    return my_account(caller, None).get("charter_version") != charter.version


def charter_changed(caller: Caller, charter: Charter) -> bool:
    """Whether the caller accepted an earlier version of the charter (asked again at sign-in;
    accounts made on the command line, which never went through activation, are not asked)."""
    accepted = my_account(caller, None).get("charter_version")
    return accepted is not None and accepted != charter.version


def accept_charter(caller: Caller, charter: Charter) -> None:
    """Record that the caller accepts this version of the charter, now."""
    with caller.account() as conn:
        conn.execute(SQL.accept_charter, (charter.version,))


def update_profile(caller: Caller, full_name: str) -> None:
    """The caller's name as others see it."""
    if len(full_name.strip()) > 200:
        raise InvalidParameter("Nom : 200 caractères au plus.")
    with caller.account() as conn:
        conn.execute(SQL.update_profile, (full_name,))


def create_token(caller: Caller, label: str, days: int) -> str:
    """A new token of the caller, valid `days` days; its value is returned here and never again."""
    label = label.strip()
    if not label or len(label) > 100:
        raise InvalidParameter(
            "Libellé : nommez le jeton (par exemple « QGIS bureau »), 100 caractères au plus."
        )
    if not 1 <= days <= 1095:
        raise InvalidParameter("Durée de validité : de 1 à 1 095 jours.")
    token = new_token()
    with caller.account() as conn:
        row = conn.execute(
            SQL.create_token, (token_hash(token), token[:TOKEN_DISPLAY_LENGTH], label, timedelta(days=days))
        ).fetchone()
        if row is None or row[0] is None:
            raise Forbidden("Votre compte ne peut pas recevoir de jeton.")
        # also the user's MQTT password, before the commit (broker.token_issued says why)
        broker.token_issued(caller.principal.username, token, int(row[0]))
    return token


def revoke_token(caller: Caller, token_id: int) -> bool:
    """Revoke one of the caller's tokens (False when it is not theirs or already revoked)."""
    with caller.account() as conn:
        return bool(conn.execute(SQL.revoke_token, (token_id,)).fetchone()[0])


def close_other_sessions(caller: Caller, session_hash: bytes) -> int:
    """Sign the caller out of every other browser."""
    with caller.account() as conn:
        return int(conn.execute(SQL.close_other_sessions, (session_hash,)).fetchone()[0])


def change_password(
    caller: Caller, password_hash: str | None, current: str, new: str, confirmation: str, session_hash: bytes
) -> dict[str, int]:
    """A new password for the caller, who typed the current one; other sessions and every token end."""
    if not verify_password(password_hash, current):
        raise InvalidParameter("Mot de passe actuel incorrect.")
    if new != confirmation:
        raise InvalidParameter("Les deux nouveaux mots de passe diffèrent : saisissez deux fois le même.")
    check_strength(new, caller.principal.username)
    with caller.account() as conn:
        return conn.execute(SQL.change_password, (hash_password(new), session_hash)).fetchone()[0]


def set_subscriptions(caller: Caller, kinds: list[str]) -> None:
    """The e-mails the caller chooses to receive."""
    unknown = [k for k in kinds if k not in SUBSCRIPTIONS]
    if unknown:
        raise InvalidParameter(f"Abonnement « {unknown[0][:40]} » inconnu.")
    with caller.account() as conn:
        conn.execute(SQL.set_subscriptions, (sorted(set(kinds)),))
