"""Who is calling: an immutable principal, carried in a ContextVar for the request.

The face (the Flask app) authenticates once per request and sets it; providers
and processes read it. Anonymous is a principal too, so no code path ever runs
without one. What the principal may do is the policy's business (`policy.py`).
"""

from contextvars import ContextVar, Token
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a user with a role, options and an intervention area."""

    username: str
    user_id: int | None = None
    role: str | None = None
    options: frozenset[str] = field(default_factory=frozenset)
    area_level: str | None = None
    area_code: str | None = None
    # The départements the area reads (a commune or EPCI widens to its département);
    # None for a national area.
    area_departements: frozenset[str] | None = None
    organisation_id: int | None = None
    # How the caller signed in: "token", "basic", "oidc" or None for anonymous.
    method: str | None = None

    @property
    def is_anonymous(self) -> bool:
        """True for a caller who did not authenticate."""
        return self.role is None


ANONYMOUS = Principal(username="anonyme")

_current: ContextVar[Principal] = ContextVar("resorption_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The principal of the running request (anonymous outside any request)."""
    return _current.get()


def set_principal(principal: Principal) -> Token[Principal]:
    """Make `principal` the caller of the running request; returns a reset token."""
    return _current.set(principal)


def reset_principal(token: Token[Principal]) -> None:
    """Restore the principal that `set_principal` replaced."""
    _current.reset(token)
