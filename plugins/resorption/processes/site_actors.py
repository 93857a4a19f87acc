"""`declare-actor`, `remove-actor`, `follow-site`, `unfollow-site`: who works on a site, who follows it.

Why processes and not a collection of OGC API Features Part 4: an actor or a follow is no
feature (no geometry, no life of its own), it is a statement about a site, made by its
caller and checked against the site's territory; OGC API Processes is where the workflow of
a site lives already (`close-site`, `record-census`). The actors are read as the `actors`
property of the sites, and `has_actor`, `followed` are queryables: one way to read them.
Each process is a thin shell over `resorption.actors`.
"""

from __future__ import annotations

from typing import Any

from resorption import actors
from resorption.processes.base import SITE_INPUT, Caller, Inputs, ResorptionProcessor

RESULT: dict[str, Any] = {
    "result": {
        "title": "Résultat",
        "description": "Le site, et ses intervenants ou son suivi.",
        "schema": {"type": "object", "contentMediaType": "application/json"},
    }
}


def _metadata(identifier: str, title: str, description: str, inputs: dict[str, Any], example: dict) -> dict:
    return {
        "version": "1.0.0",
        "id": identifier,
        "title": title,
        "description": description,
        "jobControlOptions": ["sync-execute"],
        "keywords": ["intervenants", "site", "suivi"],
        "links": [],
        "inputs": {"site": SITE_INPUT, **inputs},
        "outputs": RESULT,
        "example": {"inputs": example},
    }


DECLARE = _metadata(
    "declare-actor",
    "Déclarer un intervenant",
    (
        "Déclare un intervenant sur un site ouvert de votre territoire d'intervention, avec ses "
        "thématiques : vous-même, votre structure (« as_organisation ») ou un autre utilisateur "
        "intervenant dans le territoire du site (« user »). Déclarer à nouveau change les "
        "thématiques. La personne déclarée suit le site."
    ),
    {
        "themes": {
            "title": "Thématiques",
            "description": "Au moins une : " + ", ".join(f"{k} ({v})" for k, v in actors.THEMES.items()),
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": list(actors.THEMES)},
                "minItems": 1,
            },
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "user": {
            "title": "Utilisateur invité",
            "description": "Identifiant d'un autre utilisateur du territoire du site (vous-même sinon).",
            "schema": {"type": "string", "maxLength": 64},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "as_organisation": {
            "title": "Au nom de la structure",
            "description": "Déclarer votre structure plutôt que vous-même.",
            "schema": {"type": "boolean"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    {"site": 1, "themes": ["health", "schooling"]},
)
REMOVE = _metadata(
    "remove-actor",
    "Retirer un intervenant",
    "Retire un intervenant d'un site : l'intervenant lui-même, qui l'a déclaré ou qui peut modifier le site.",
    {
        "actor": {
            "title": "Intervenant",
            "description": "Identifiant de l'intervenant (propriété `id` d'un élément de `actors`).",
            "schema": {"type": "integer", "minimum": 1},
            "minOccurs": 1,
            "maxOccurs": 1,
        }
    },
    {"site": 1, "actor": 1},
)
FOLLOW = _metadata(
    "follow-site",
    "Suivre un site",
    "Ajoute le site à « Mes sites » (filtre `followed=true` de la collection des sites).",
    {},
    {"site": 1},
)
UNFOLLOW = _metadata(
    "unfollow-site", "Ne plus suivre un site", "Retire le site de « Mes sites ».", {}, {"site": 1}
)


def _site(inputs: Inputs) -> int:
    site_id = inputs.integer("site", required=True, minimum=1)
    inputs.fail_if_invalid()
    assert site_id is not None  # checked above
    return site_id


class DeclareActor(ResorptionProcessor):
    """Declare an actor of a site."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, DECLARE)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the inputs, then declare."""
        username = inputs.text("user", max_length=64)
        as_organisation = inputs.data.get("as_organisation", False)
        if not isinstance(as_organisation, bool):
            inputs.error("as_organisation", "vrai ou faux attendu.")
        if as_organisation and username is not None:
            inputs.error("as_organisation", "une structure se déclare elle-même, sans « user ».")
        themes = inputs.data.get("themes")
        problem = actors.theme_problem(themes)
        if problem:
            inputs.error("themes", problem)
        site_id = _site(inputs)  # every problem of the inputs in one 400
        return actors.declare(caller, site_id, list(themes), username, bool(as_organisation))


class RemoveActor(ResorptionProcessor):
    """Remove an actor of a site."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, REMOVE)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Check the inputs, then remove."""
        actor_id = inputs.integer("actor", required=True, minimum=1)
        site_id = _site(inputs)
        assert actor_id is not None  # checked by _site's fail_if_invalid
        return actors.remove(caller, site_id, actor_id)


class FollowSite(ResorptionProcessor):
    """Follow a site."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, FOLLOW)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Follow."""
        return actors.follow(caller, _site(inputs))


class UnfollowSite(ResorptionProcessor):
    """Stop following a site."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, UNFOLLOW)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Unfollow."""
        return actors.unfollow(caller, _site(inputs))
