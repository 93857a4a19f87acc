"""Accounts: organisations, users and their API tokens, managed by the command line.

Run as the owner of the tables (`Settings.database_url`): the application's own role
cannot read or write them. Every function takes the database URL, opens one short
transaction and returns plain values; the command line prints them. Input is checked
here with French messages that say what would be right (the roles and options of the
access policy, the known territories); the database checks again (enums, constraints,
the trigger on intervention areas).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import dict_row

from resorption import broker, statements
from resorption.authentication import (
    TOKEN_DISPLAY_LENGTH,
    TOKEN_PREFIX,
    hash_password,
    new_token,
    token_hash,
)
from resorption.errors import InvalidParameter, NotFound
from resorption.policy import Policy

SQL = statements.load("accounts")

ORGANISATION_KINDS = {
    "state_service": "service de l'État",
    "local_authority": "collectivité territoriale",
    "association": "association",
    "other": "autre",
}
# Intervention area levels, with the table naming their territories and a French label.
AREA_LEVELS = {
    "region": ("regions", "région"),
    "departement": ("departements", "département"),
    "epci": ("epci", "EPCI"),
    "commune": ("communes", "commune"),
}
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
MAX_TOKEN_LIFETIME = timedelta(days=3 * 366)


# -- what the functions return --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Organisation:
    """An organisation users belong to."""

    id: int
    name: str
    kind: str
    departement_code: str | None
    abbreviation: str | None
    users: int = 0

    @property
    def kind_label(self) -> str:
        """The kind, in French."""
        return ORGANISATION_KINDS.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class Area:
    """An intervention area: the nation, or one territory of a level."""

    level: str
    code: str | None = None

    def __str__(self) -> str:
        return self.level if self.code is None else f"{self.level}:{self.code}"


@dataclass(frozen=True, slots=True)
class User:
    """A user as the command line lists it (never their password hash)."""

    id: int
    username: str
    email: str | None
    full_name: str | None
    role: str
    options: tuple[str, ...]
    area: Area
    area_name: str | None
    organisation_id: int
    organisation_name: str
    active: bool
    has_password: bool
    oidc_subject: str | None
    created_at: datetime
    deactivated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Token:
    """An API token as listed: never the token itself, only its first characters."""

    id: int
    username: str
    prefix: str
    label: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> str:
        """« actif », « expiré » or « révoqué », in French."""
        if self.revoked_at is not None:
            return "révoqué"
        return "expiré" if self.expires_at <= now else "actif"


@dataclass(frozen=True, slots=True)
class Ended:
    """What a deactivation or a password change ended: browser sessions closed, tokens revoked."""

    sessions: int
    tokens: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just issued: the only moment its value exists outside the caller's hands."""

    token: str
    info: Token


# -- helpers ------------------------------------------------------------------------------


@contextmanager
def _connect(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """One transaction as the owner, committed on success."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        yield conn


def parse_area(text: str) -> Area:
    """`nation`, or `<level>:<code>` with level region, departement, epci or commune."""
    raw = text.strip()
    if raw.lower() == "nation":
        return Area("nation")
    level, _, code = raw.partition(":")
    level = level.strip().lower().replace("é", "e")
    code = code.strip().upper()
    if level not in AREA_LEVELS or not code:
        raise InvalidParameter(
            f"Zone d'intervention « {text} » invalide : indiquez « nation » ou niveau:code, "
            "par exemple region:75, departement:33, epci:243300316, commune:33063."
        )
    return Area(level, code)


def _check_area(conn: psycopg.Connection[Any], area: Area) -> str | None:
    """The territory's name; an error when it does not exist."""
    if area.code is None:
        return None
    table, label = AREA_LEVELS[area.level]
    row = conn.execute(
        SQL.territory_name.format(sql.Identifier(table)),
        (area.code,),
    ).fetchone()
    if row is None:
        raise InvalidParameter(f"Territoire inconnu : {label} « {area.code} » (code INSEE attendu).")
    return row["name"]


def _check_departement(conn: psycopg.Connection[Any], code: str | None) -> str | None:
    if code is None or not code.strip():
        return None
    code = code.strip().upper()
    if conn.execute(SQL.departement_exists, (code,)).fetchone() is None:
        raise InvalidParameter(f"Département inconnu : « {code} » (par exemple 33, 2A, 971).")
    return code


def check_password(password: str) -> None:
    """Refuse a password that is too short, too long, or that could be taken for a token."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidParameter(f"Le mot de passe doit compter au moins {PASSWORD_MIN_LENGTH} caractères.")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidParameter(f"Le mot de passe ne peut dépasser {PASSWORD_MAX_LENGTH} caractères.")
    if password.startswith(TOKEN_PREFIX):
        raise InvalidParameter(
            f"Un mot de passe ne peut commencer par « {TOKEN_PREFIX} », réservé aux jetons d'API."
        )


def parse_duration(text: str) -> timedelta:
    """A lifetime such as `90d` (or `90j`), `12h`, `4w`; a bare number counts days."""
    match = re.fullmatch(r"\s*(\d+)\s*([dDjJhHwW]?)\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise InvalidParameter(
            f"Durée « {text} » invalide : un nombre suivi de d (jours), h (heures) ou w (semaines), "
            "par exemple 30d."
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    try:
        duration = {"h": timedelta(hours=amount), "w": timedelta(weeks=amount)}.get(unit) or timedelta(
            days=amount
        )
    except OverflowError:
        duration = MAX_TOKEN_LIFETIME + timedelta(days=1)
    if duration > MAX_TOKEN_LIFETIME:
        raise InvalidParameter(f"Durée « {text} » trop longue : {MAX_TOKEN_LIFETIME.days} jours au plus.")
    return duration


# -- organisations --------------------------------------------------------------------------


def create_organisation(
    database_url: str,
    name: str,
    kind: str,
    departement: str | None = None,
    abbreviation: str | None = None,
) -> Organisation:
    """Create an organisation; its name is unique within its département (or nationally)."""
    name = name.strip()
    if not name:
        raise InvalidParameter("Le nom de l'organisation est obligatoire.")
    if kind not in ORGANISATION_KINDS:
        raise InvalidParameter(
            f"Type d'organisation « {kind} » inconnu. Types : "
            + ", ".join(f"{k} ({label})" for k, label in ORGANISATION_KINDS.items())
            + "."
        )
    with _connect(database_url) as conn:
        code = _check_departement(conn, departement)
        try:
            row = conn.execute(
                SQL.insert_organisation,
                (name, kind, code, abbreviation or None),
            ).fetchone()
        except pg_errors.UniqueViolation:
            where = f"le département {code}" if code else "le niveau national"
            raise InvalidParameter(f"L'organisation « {name} » existe déjà pour {where}.") from None
    assert row is not None
    return Organisation(row["id"], name, kind, code, abbreviation or None)


def list_organisations(database_url: str) -> list[Organisation]:
    """Every organisation, with its number of active users, by département then name."""
    with _connect(database_url) as conn:
        rows = conn.execute(SQL.organisations).fetchall()
    return [Organisation(**r) for r in rows]


def _organisation_id(conn: psycopg.Connection[Any], ref: str | int) -> int:
    """An organisation by id or by exact name; a name shared by several must be given by id."""
    text = str(ref).strip()
    if text.isdigit():
        row = conn.execute(SQL.organisation_by_id, (int(text),)).fetchone()
        if row is None:
            raise InvalidParameter(
                f"Organisation n°{text} inconnue : `resorption organisations list` les énumère."
            )
        return int(row["id"])
    rows = conn.execute(SQL.organisations_by_name, (text,)).fetchall()
    if not rows:
        raise InvalidParameter(
            f"Organisation « {text} » inconnue : indiquez son nom exact ou son numéro "
            "(`resorption organisations list`)."
        )
    if len(rows) > 1:
        choices = ", ".join(f"n°{r['id']} ({r['departement_code'] or 'national'})" for r in rows)
        raise InvalidParameter(
            f"Plusieurs organisations s'appellent « {text} » : indiquez son numéro ({choices})."
        )
    return int(rows[0]["id"])


# -- users ------------------------------------------------------------------------------------


def _check_role(policy: Policy, role: str) -> str:
    if role not in policy.roles:
        roles = ", ".join(f"{name} ({r.label.fr})" for name, r in policy.roles.items())
        raise InvalidParameter(f"Rôle « {role} » inconnu. Rôles : {roles}.")
    return role


def _check_options(policy: Policy, options: Iterable[str]) -> list[str]:
    chosen: list[str] = []
    for option in options:
        name = option.strip()
        if not name:
            continue
        if name not in policy.options:
            known = ", ".join(f"{n} ({label.fr})" for n, label in policy.options.items())
            raise InvalidParameter(f"Option « {name} » inconnue. Options : {known}.")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _check_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise InvalidParameter(
            f"Identifiant « {username} » invalide : 3 à 64 caractères parmi lettres minuscules, "
            "chiffres, « . », « _ », « @ » et « - », commençant par une lettre ou un chiffre."
        )
    return name


def create_user(
    database_url: str,
    policy: Policy,
    *,
    username: str,
    organisation: str | int,
    role: str,
    area: str,
    email: str | None = None,
    full_name: str | None = None,
    options: Iterable[str] = (),
    password: str | None = None,
    oidc_subject: str | None = None,
) -> User:
    """Create a user; `role` and `options` must be the policy's, `area` a real territory."""
    name = _check_username(username)
    _check_role(policy, role)
    chosen = _check_options(policy, options)
    zone = parse_area(area)
    mail = email.strip().lower() if email and email.strip() else None
    if mail is not None and not EMAIL_PATTERN.match(mail):
        raise InvalidParameter(f"Adresse électronique « {email} » invalide.")
    if password is not None:
        check_password(password)
    subject = oidc_subject.strip() if oidc_subject and oidc_subject.strip() else None
    with _connect(database_url) as conn:
        _check_area(conn, zone)
        organisation_id = _organisation_id(conn, organisation)
        try:
            row = conn.execute(
                SQL.insert_user,
                (
                    name,
                    mail,
                    full_name.strip() if full_name and full_name.strip() else None,
                    organisation_id,
                    role,
                    chosen,
                    zone.level,
                    zone.code,
                    hash_password(password) if password is not None else None,
                    subject,
                ),
            ).fetchone()
        except pg_errors.UniqueViolation as exc:
            raise InvalidParameter(_duplicate_message(exc, name, mail, subject)) from None
        except pg_errors.ForeignKeyViolation:  # the area trigger, if a territory vanished meanwhile
            raise InvalidParameter(f"Territoire inconnu : {zone}.") from None
        assert row is not None
        return _users(conn, SQL.user_by_id, (row["id"],))[0]


def _duplicate_message(
    exc: pg_errors.UniqueViolation, username: str, email: str | None, subject: str | None
) -> str:
    constraint = exc.diag.constraint_name or ""
    if "email" in constraint:
        return f"L'adresse électronique « {email} » est déjà celle d'un autre utilisateur."
    if "oidc" in constraint:
        return f"Le sujet OIDC « {subject} » est déjà celui d'un autre utilisateur."
    return f"L'identifiant « {username} » est déjà pris."


def _users(conn: psycopg.Connection[Any], statement: sql.SQL, params: tuple[Any, ...]) -> list[User]:
    """The users one of the `users` statements finds."""
    rows = conn.execute(statement, params).fetchall()
    return [
        User(
            id=r["id"],
            username=r["username"],
            email=r["email"],
            full_name=r["full_name"],
            role=r["role"],
            options=tuple(r["options"]),
            area=Area(r["area_level"], r["area_code"]),
            area_name=r["area_name"],
            organisation_id=r["organisation_id"],
            organisation_name=r["organisation_name"],
            active=r["active"],
            has_password=r["has_password"],
            oidc_subject=r["oidc_subject"],
            created_at=r["created_at"],
            deactivated_at=r["deactivated_at"],
        )
        for r in rows
    ]


def list_users(database_url: str, include_inactive: bool = True) -> list[User]:
    """Every user (or only the active ones), by username."""
    with _connect(database_url) as conn:
        return _users(conn, SQL.users if include_inactive else SQL.active_users, ())


def get_user(database_url: str, username: str) -> User:
    """One user by username; `NotFound` when there is none."""
    with _connect(database_url) as conn:
        return _user(conn, username)


def _user(conn: psycopg.Connection[Any], username: str) -> User:
    found = _users(conn, SQL.user_by_username, (username.strip().lower(),))
    if not found:
        raise NotFound(f"Utilisateur « {username} » inconnu : `resorption users list` les énumère.")
    return found[0]


def _end_credentials(conn: psycopg.Connection[Any], user_id: int) -> Ended:
    """Close every browser session of a user and revoke every token still valid."""
    sessions = conn.execute(SQL.close_user_sessions, (user_id,))
    tokens = conn.execute(SQL.revoke_user_tokens, (user_id,))
    return Ended(sessions=sessions.rowcount, tokens=tokens.rowcount)


def deactivate_user(database_url: str, username: str) -> Ended:
    """Deactivate a user, close their browser sessions and revoke their tokens.

    Deactivating an inactive user changes nothing (and ends anything left).
    """
    with _connect(database_url) as conn:
        user = _user(conn, username)
        conn.execute(SQL.deactivate_user, (user.id,))
        return _end_credentials(conn, user.id)


def set_options(database_url: str, policy: Policy, username: str, options: Iterable[str]) -> None:
    """Replace a user's options by `options` (the policy's)."""
    chosen = _check_options(policy, options)
    with _connect(database_url) as conn:
        user = _user(conn, username)
        conn.execute(SQL.set_user_options, (chosen, user.id))


def set_password(database_url: str, username: str, password: str | None) -> Ended:
    """Set (argon2id) or, with None, remove a user's password; ends every session and token.

    A password is changed or reset because it leaked, or may have: whatever was opened with it
    (a browser session) or issued while it was in other hands goes too, in the same transaction.
    """
    if password is not None:
        check_password(password)
    with _connect(database_url) as conn:
        user = _user(conn, username)
        conn.execute(
            SQL.set_password_hash,
            (hash_password(password) if password is not None else None, user.id),
        )
        return _end_credentials(conn, user.id)


# -- API tokens -------------------------------------------------------------------------------


def issue_token(
    database_url: str, username: str, label: str | None = None, lifetime: timedelta = DEFAULT_TOKEN_LIFETIME
) -> IssuedToken:
    """Issue a new API token for an active user; its value is returned here and never again."""
    if lifetime <= timedelta(0) or lifetime > MAX_TOKEN_LIFETIME:
        raise InvalidParameter(f"La durée d'un jeton va d'une heure à {MAX_TOKEN_LIFETIME.days} jours.")
    token = new_token()
    with _connect(database_url) as conn:
        user = _user(conn, username)
        if not user.active:
            raise InvalidParameter(f"L'utilisateur « {user.username} » est désactivé : pas de nouveau jeton.")
        row = conn.execute(
            SQL.insert_token,
            (user.id, token_hash(token), token[:TOKEN_DISPLAY_LENGTH], label or None, lifetime),
        ).fetchone()
        assert row is not None
        info = conn.execute(SQL.token_by_id, (row["id"],)).fetchone()
        # The plaintext exists only now: the broker learns it here as the user's MQTT password,
        # before the commit (broker.token_issued says why); everything else about the account
        # reaches the broker through the outbox.
        broker.token_issued(user.username, token, row["id"])
    assert info is not None
    return IssuedToken(token=token, info=Token(**info))


def list_tokens(database_url: str, username: str | None = None) -> list[Token]:
    """The tokens of one user, or of everyone, newest first: never their value."""
    with _connect(database_url) as conn:
        if username is None:
            rows = conn.execute(SQL.tokens).fetchall()
        else:
            user = _user(conn, username)
            rows = conn.execute(SQL.tokens_of_user, (user.id,)).fetchall()
    return [Token(**r) for r in rows]


def revoke_token(database_url: str, reference: str) -> tuple[Token, bool]:
    """Revoke a token given by its number, its prefix or its whole value.

    Returns the token and whether it was revoked now (False when it already was).
    """
    ref = reference.strip()
    with _connect(database_url) as conn:
        if ref.isdigit():
            rows = conn.execute(SQL.token_by_id, (int(ref),)).fetchall()
        elif len(ref) > TOKEN_DISPLAY_LENGTH and ref.startswith(TOKEN_PREFIX):
            rows = conn.execute(SQL.token_by_hash, (token_hash(ref),)).fetchall()
        else:
            rows = conn.execute(SQL.tokens_by_prefix, (ref,)).fetchall()
        if not rows:
            raise NotFound(f"Jeton « {ref} » inconnu : `resorption tokens list` les énumère.")
        if len(rows) > 1:
            ids = ", ".join(str(r["id"]) for r in rows)
            raise InvalidParameter(
                f"Plusieurs jetons commencent par « {ref} » : indiquez son numéro ({ids})."
            )
        token = Token(**rows[0])
        if token.revoked_at is not None:
            return token, False
        revoked = conn.execute(SQL.revoke_token, (token.id,)).fetchone()
    assert revoked is not None
    return replace(token, revoked_at=revoked["revoked_at"]), True


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    username: str
    role: str | None
    action: str
    collection: str | None
    item_id: str | None
    groups: list[str]
    method: str | None
    path: str | None
    client: str | None


def list_audit(
    database_url: str,
    username: str | None = None,
    since: timedelta | None = None,
    group: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The latest audit entries, newest first, optionally for one user, a period or a sensitive group."""
    params = {
        "username": username.lower() if username else None,
        "since": since or None,
        "group": group or None,
        "limit": limit,
    }
    with _connect(database_url) as conn:
        rows = conn.execute(SQL.audit_entries, params).fetchall()
    return [AuditEntry(**r) for r in rows]
