"""Our exception hierarchy: each error carries its HTTP status, OGC code and French message.

Messages are written for the person who made the request: they say what was
wrong and, where it helps, what would be right. They never carry SQL, stack
traces or internal names.
"""

from http import HTTPStatus


class ResorptionError(Exception):
    """Base of every error we raise on purpose."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    ogc_code: str = "NoApplicableCode"
    default_message: str = "Erreur interne du serveur."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidParameter(ResorptionError):
    """A request parameter is malformed or names something that does not exist."""

    status = HTTPStatus.BAD_REQUEST
    ogc_code = "InvalidParameterValue"
    default_message = "Paramètre invalide."


class NotFound(ResorptionError):
    """The collection or item does not exist (or is outside the caller's scope)."""

    status = HTTPStatus.NOT_FOUND
    ogc_code = "NotFound"
    default_message = "Ressource introuvable."


class ConfigurationError(ResorptionError):
    """Configuration files or environment are invalid; raised at start-up."""

    default_message = "Configuration invalide."


class DatabaseUnavailable(ResorptionError):
    """PostgreSQL could not be reached or timed out."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    default_message = "La base de données est momentanément indisponible."
