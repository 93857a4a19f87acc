"""Who works on a site ("intervenants"), and who follows it ("mes sites").

A user declares themselves, or their organisation, actor of a site with themes, or declares
another user of the site's territory; the person declared follows the site. Everyone who
reads a site reads its actors; a follower row is its user's alone. The rules live in the
database (sql/160_actors.sql: row-level security); the checks here say the same in French
first. A user who may be actor is found in the directory by `site_actor_user`, a function
of privileges.APP_FUNCTIONS that answers only for users whose area covers the site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from resorption import statements
from resorption.caller import Caller
from resorption.errors import Conflict, Forbidden, NotFound, ValidationFailed
from resorption.identity import Principal

SQL = statements.load("actors")
# The themes of an actor, with their French labels (the enum resorption.actor_theme).
THEMES: dict[str, str] = {
    "health": "Santé",
    "schooling": "Scolarisation",
    "social_support": "Accompagnement social",
    "employment": "Emploi",
    "housing": "Hébergement et logement",
    "safety": "Sécurisation",
    "other": "Autre",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A user who may be actor on a site: from the directory."""

    user_id: int
    name: str
    organisation_id: int
    principal: Principal


def _not_found(site_id: int) -> NotFound:
    return NotFound(f"L'élément « {site_id} » n'existe pas dans la collection « sites ».")


def _site(conn: psycopg.Connection, site_id: int) -> tuple[str, str]:
    """The site's département and status; 404 when the caller cannot read it."""
    row = conn.execute(SQL.site_place, (site_id,)).fetchone()
    if row is None:
        raise _not_found(site_id)
    return row[0], row[1]


def theme_problem(themes: Any) -> str | None:
    """What is wrong with `themes` (a non-empty list of known, distinct themes), or None."""
    allowed = ", ".join(THEMES)
    if not isinstance(themes, list) or not themes:
        return f"une liste d'au moins une thématique est attendue ({allowed})."
    if any(not isinstance(t, str) or t not in THEMES for t in themes):
        return f"thématique inconnue ; thématiques permises : {allowed}."
    if len(set(themes)) != len(themes):
        return "chaque thématique une seule fois."
    return None


def candidate(caller: Caller, username: str, departement: str) -> Candidate | None:
    """The user `username` if they may be actor in `departement`: active, their area
    covering it, their role one that intervenes (policy.actor_scope)."""
    with caller.looking_up() as conn:
        row = conn.execute(SQL.directory_user, (username, departement)).fetchone()
    if row is None:
        return None
    user_id, name, organisation_id, role, area_level, area = row
    principal = Principal(
        username=username.lower(),
        user_id=user_id,
        role=role,
        area_level=area_level,
        area_departements=None if area is None else frozenset(area),
        organisation_id=organisation_id,
    )
    if not caller.policy.actor_scope(principal).contains(departement):
        return None
    return Candidate(user_id, name, organisation_id, principal)


def actors_of(conn: psycopg.Connection, site_id: int, me: int | None) -> list[dict[str, Any]]:
    """The actors of a site as the caller (user `me`) reads them."""
    return [
        {
            "id": actor_id,
            "name": name or organisation,
            "organisation": organisation,
            "kind": "person" if user_id is not None else "organisation",
            "themes": themes,
            "declared_by": declared_by,
            "declared_at": declared_at.isoformat(),
            "is_me": user_id is not None and user_id == me,
        }
        for actor_id, user_id, name, organisation, themes, declared_by, declared_at in conn.execute(
            SQL.actors_of, (site_id,)
        ).fetchall()
    ]


def declare(
    caller: Caller,
    site_id: int,
    themes: list[str],
    username: str | None = None,
    as_organisation: bool = False,
) -> dict[str, Any]:
    """Declare an actor of a site: the caller (or its organisation), or the user `username`
    of the site's territory; the person declared follows the site."""
    problem = theme_problem(themes)
    if problem:
        raise ValidationFailed([{"property": "themes", "message": problem}], f"themes : {problem}")
    with caller.reading() as conn:
        departement, status = _site(conn, site_id)
    if status != "open":
        raise Conflict(f"Le site « {site_id} » est fermé : on ne s'y déclare plus intervenant.")
    if not caller.policy.actor_scope(caller.principal).contains(departement):
        raise Forbidden(
            "Vous ne pouvez déclarer un intervenant que sur un site de votre territoire "
            "d'intervention, avec un rôle qui intervient (pas en observateur)."
        )
    invited = username is not None and username.lower() != caller.principal.username
    who = candidate(caller, username if invited and username else caller.principal.username, departement)
    if who is None:
        if invited:
            problem = "aucun utilisateur de ce nom n'intervient dans le territoire du site."
            raise ValidationFailed([{"property": "user", "message": problem}], f"user : {problem}")
        raise Forbidden("Votre compte ne peut pas être déclaré intervenant sur ce site.")
    with caller.writing() as conn:
        _site(conn, site_id)
        if as_organisation:
            (actor_id,) = conn.execute(
                SQL.declare_organisation, (site_id, who.organisation_id, themes)
            ).fetchone()
        else:
            (actor_id,) = conn.execute(
                SQL.declare_person, (site_id, who.user_id, who.name, who.organisation_id, themes)
            ).fetchone()
            conn.execute(SQL.follow, (who.user_id, site_id))
        if as_organisation or invited:
            # Whoever declares follows what they declared too.
            conn.execute(SQL.follow, (caller.principal.user_id, site_id))
        actors = actors_of(conn, site_id, caller.principal.user_id)
    caller.audit(
        "declare-actor", "sites", site_id, detail={"actor": actor_id, "themes": themes, "invited": invited}
    )
    return {"site": site_id, "actor": actor_id, "actors": actors}


def remove(caller: Caller, site_id: int, actor_id: int) -> dict[str, Any]:
    """Remove an actor of a site: the person themselves, who declared it, or who may write
    the site (403 otherwise, 404 when the caller reads no such actor)."""
    with caller.writing() as conn:
        _site(conn, site_id)
        if conn.execute(SQL.remove_actor, (actor_id, site_id)).fetchone() is None:
            if conn.execute(SQL.actor_exists, (actor_id, site_id)).fetchone() is None:
                raise NotFound(f"Le site « {site_id} » n'a pas d'intervenant « {actor_id} ».")
            raise Forbidden(
                "Seuls l'intervenant, qui l'a déclaré ou qui peut modifier le site peuvent le retirer."
            )
        actors = actors_of(conn, site_id, caller.principal.user_id)
    caller.audit("remove-actor", "sites", site_id, detail={"actor": actor_id})
    return {"site": site_id, "actors": actors}


def follow(caller: Caller, site_id: int) -> dict[str, Any]:
    """The caller follows a site it reads (404 otherwise)."""
    with caller.writing() as conn:
        _site(conn, site_id)
        conn.execute(SQL.follow, (caller.principal.user_id, site_id))
    return {"site": site_id, "followed": True}


def unfollow(caller: Caller, site_id: int) -> dict[str, Any]:
    """The caller no longer follows a site it reads (404 otherwise)."""
    with caller.writing() as conn:
        _site(conn, site_id)
        conn.execute(SQL.unfollow, (site_id,))
    return {"site": site_id, "followed": False}


def follows(conn: psycopg.Connection, site_id: int) -> bool:
    """Whether the caller follows the site (in an open transaction of the caller)."""
    return conn.execute(SQL.is_followed, (site_id,)).fetchone() is not None


def sheet(caller: Caller, site_id: int) -> tuple[list[dict[str, Any]], bool]:
    """The actors of a site and whether the caller follows it, for the site's sheet."""
    with caller.reading() as conn:
        return actors_of(conn, site_id, caller.principal.user_id), follows(conn, site_id)
