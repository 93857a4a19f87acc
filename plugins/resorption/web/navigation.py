"""What the navigation bar of every page (`templates/_base.html`) knows of the caller.

pygeoapi builds a new Jinja environment for each page (`pygeoapi.util.render_j2_template`)
and offers no hook to add to it; every Jinja environment starts from a copy of
`jinja2.defaults.DEFAULT_NAMESPACE`, so a global put there once is seen by all of them. It
reads the principal of the running request when the page renders, never at start-up.
"""

from __future__ import annotations

from jinja2.defaults import DEFAULT_NAMESPACE

from resorption.identity import current_principal

GLOBAL = "resorption_user"


def signed_in_user() -> str | None:
    """The name of the signed-in caller, None for anonymous visitors."""
    principal = current_principal()
    return None if principal.is_anonymous else principal.username


def install() -> None:
    """Make `resorption_user()` callable from every template (idempotent)."""
    DEFAULT_NAMESPACE[GLOBAL] = signed_in_user
