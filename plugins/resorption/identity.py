"""Who is calling: an immutable principal, carried in a ContextVar for the request.

The face (the Flask app) sets it once per request; providers and processes read
it. Anonymous is a principal too, so no code path ever runs without one.
"""

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, with what their role and options grant."""

    username: str
    role: str | None = None
    # Sensitive field groups this principal may read (owner, justice, finances).
    sensitive_groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_anonymous(self) -> bool:
        """True for a caller who did not authenticate."""
        return self.role is None


ANONYMOUS = Principal(username="anonyme")

_current: ContextVar[Principal] = ContextVar("resorption_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The principal of the running request (anonymous outside any request)."""
    return _current.get()


def set_principal(principal: Principal) -> object:
    """Make `principal` the caller of the running request; returns a reset token."""
    return _current.set(principal)
