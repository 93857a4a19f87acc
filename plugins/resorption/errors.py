"""Our exception hierarchy: each error carries its HTTP status, OGC code and French message.

Messages are written for the person who made the request: they say what was
wrong and, where it helps, what would be right. They never carry SQL, stack
traces or internal names.
"""

from collections.abc import Mapping
from http import HTTPStatus

import orjson


class ResorptionError(Exception):
    """Base of every error we raise on purpose."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    ogc_code: str = "NoApplicableCode"
    default_message: str = "Erreur interne du serveur."
    # seconds after which the client may try again (Retry-After), for errors that pass
    retry_after: int | None = None

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers this error asks for: Retry-After when it passes."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    @property
    def body(self) -> dict[str, object]:
        """Extra members of the exception document (none by default)."""
        return {}


class InvalidParameter(ResorptionError):
    """A request parameter is malformed or names something that does not exist."""

    status = HTTPStatus.BAD_REQUEST
    ogc_code = "InvalidParameterValue"
    default_message = "Paramètre invalide."


class FieldErrors(InvalidParameter):
    """A form with one or more wrong fields: each field's message, by the field's name, so that a
    page shows each beside its field (and the list of them on top)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__(" ".join(self.fields.values()))


class PayloadTooLarge(ResorptionError):
    """The body is larger than the server accepts (RESORPTION_MAX_BODY_BYTES); refused unread."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    ogc_code = "PayloadTooLarge"
    default_message = "Le corps de la requête est trop volumineux."


class TooLongForARequest(ResorptionError):
    """A synchronous export or import of more rows than RESORPTION_SYNC_EXPORT_MAX_ROWS or
    RESORPTION_SYNC_IMPORT_MAX_ROWS: a job's work (`Prefer: respond-async`), refused before
    any row is written."""

    status = HTTPStatus.BAD_REQUEST
    ogc_code = "RespondAsyncRequired"
    default_message = "Cet export est trop long pour une requête : lancez-le en tâche de fond."


class NotFound(ResorptionError):
    """The collection or item does not exist (or is outside the caller's scope)."""

    status = HTTPStatus.NOT_FOUND
    ogc_code = "NotFound"
    default_message = "Ressource introuvable."


class ConfigurationError(ResorptionError):
    """Configuration files or environment are invalid; raised at start-up."""

    default_message = "Configuration invalide."


class DatabaseUnavailable(ResorptionError):
    """PostgreSQL could not be reached (down, restarting, every connection busy) or a lock
    was not granted in time: the client may try again shortly (Retry-After)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_code = "ServiceUnavailable"
    default_message = (
        "La base de données est momentanément indisponible : le service reprend de lui-même, "
        "réessayez dans quelques secondes."
    )
    # seconds; the app replaces it with its setting (RESORPTION_RETRY_AFTER_S)
    retry_after = 5


class TooManyStreams(ResorptionError):
    """Every stream slot of the worker is taken (settings.sse_max_streams): try again shortly."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_code = "ServiceUnavailable"
    default_message = (
        "Trop de flux de changements sont ouverts sur ce serveur : réessayez dans quelques secondes "
        "(EventSource le fait seul)."
    )
    retry_after = 5


class QueryTooLong(ResorptionError):
    """A statement ran past its kind's statement_timeout: trying again would not help."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_code = "QueryTooLong"
    default_message = "La requête a pris trop de temps : restreignez-la (bbox, filtre, limit)."


# The challenge a 401 carries, so that QGIS, GDAL and browsers ask for credentials. The realm
# is ASCII: HTTP headers are Latin-1 on the wire and clients would garble an accent.
BASIC_CHALLENGE = 'Basic realm="Resorption", charset="UTF-8"'


class Unauthorized(ResorptionError):
    """The credentials sent are not valid; one message whatever was wrong (no oracle)."""

    status = HTTPStatus.UNAUTHORIZED
    ogc_code = "Unauthorized"
    default_message = (
        "Identification refusée : identifiant, mot de passe ou jeton invalide, expiré ou révoqué."
    )

    def __init__(self, message: str | None = None, challenge: bool = True) -> None:
        super().__init__(message)
        # Whether the response carries `WWW-Authenticate` (it always should for a 401).
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the app adds: the Basic challenge."""
        return {"WWW-Authenticate": BASIC_CHALLENGE} if self.challenge else {}


class TooManyAttempts(ResorptionError):
    """Too many failed sign-ins (resorption.throttle): the next attempt waits `retry_after` seconds."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    ogc_code = "TooManyRequests"
    default_message = "Trop de tentatives d'identification échouées : réessayez plus tard."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        retry_after = max(1, retry_after)
        super().__init__(
            message
            or "Trop de tentatives d'identification échouées : pour votre sécurité, la prochaine "
            f"tentative n'est possible que dans {_duration(retry_after)}."
        )
        self.retry_after = retry_after


def _duration(seconds: int) -> str:
    """« 45 secondes », « 1 minute », « 16 minutes » (rounded up: never shorter than the wait)."""
    if seconds < 60:
        return f"{seconds} seconde" + ("s" if seconds > 1 else "")
    minutes = -(-seconds // 60)
    return f"{minutes} minute" + ("s" if minutes > 1 else "")


class IdentityProviderUnavailable(ResorptionError):
    """The OIDC provider's keys (JWKS) could not be fetched: the server's problem, not the caller's."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    default_message = (
        "Le fournisseur d'identité est momentanément injoignable : réessayez dans quelques instants."
    )


class Forbidden(ResorptionError):
    """The caller may read this data but not do what it asked (write outside its scope…)."""

    status = HTTPStatus.FORBIDDEN
    ogc_code = "Forbidden"
    default_message = "Vous n'avez pas le droit de faire cette opération."


class PreconditionFailed(ResorptionError):
    """`If-Match` names a version that is no longer the current one: someone wrote meanwhile."""

    status = HTTPStatus.PRECONDITION_FAILED
    ogc_code = "PreconditionFailed"
    default_message = (
        "L'élément a été modifié depuis que vous l'avez lu : relisez-le, puis refaites votre modification."
    )


class Conflict(ResorptionError):
    """The request does not fit the item's current state (closing a site already closed…)."""

    status = HTTPStatus.CONFLICT
    ogc_code = "Conflict"
    default_message = "L'opération ne correspond pas à l'état actuel de l'élément."


class UnsupportedMediaType(ResorptionError):
    """The body of a write is not in a format we read."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    ogc_code = "InvalidRequest"
    default_message = "Format du corps de la requête non pris en charge."


class ValidationFailed(InvalidParameter):
    """A written feature breaks the catalog or the business rules: every problem, by property."""

    def __init__(self, errors: list[dict[str, str]], message: str | None = None) -> None:
        self.errors = errors
        listed = " ; ".join(f"{e['property']} : {e['message']}" for e in errors)
        super().__init__(message or f"L'élément envoyé n'est pas valide : {listed}")

    @property
    def body(self) -> dict[str, object]:
        """Members added to the exception document: the problems, one per property."""
        return {"errors": self.errors}


def exception_document(code: str, description: str, extra: Mapping[str, object] | None = None) -> bytes:
    """An OGC API exception document (JSON): the body of every error we answer."""
    return orjson.dumps({"code": code, "type": code, "description": description, **(extra or {})})
