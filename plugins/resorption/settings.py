"""Settings read once from the environment and validated at start-up."""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from resorption.errors import ConfigurationError


def _project_root() -> Path:
    """The checkout holding collections/ (editable install), else the working directory (image)."""
    source_tree = Path(__file__).resolve().parents[2]
    return source_tree if (source_tree / "collections").is_dir() else Path.cwd()


PROJECT_ROOT = _project_root()


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} doit être un entier, reçu « {raw} ».") from None
    if value < minimum:
        raise ConfigurationError(f"{name} doit être au moins {minimum}, reçu {value}.")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """What the server needs to run; built by `Settings.from_env()`."""

    database_url: str
    # The application's own login role: not the owner of the tables, cannot bypass RLS.
    app_database_url: str = ""
    public_url: str = "http://localhost:5000"
    collections_dir: Path = PROJECT_ROOT / "collections"
    pygeoapi_config: Path = PROJECT_ROOT / "pygeoapi-config.yml"
    policy_path: Path = PROJECT_ROOT / "config" / "access-policy.yml"
    pool_min_size: int = 1
    pool_max_size: int = 8
    statement_timeout_ms: int = 30_000
    # Exact numberMatched on a page is counted up to this many rows (well under a millisecond);
    # above it, only resulttype=hits pays for an exact count (QGIS and GDAL page on `next`).
    # Counting 100,000 rows costs ~45 ms: more than the page itself, on every page.
    count_limit: int = 1_000
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (the client
    # address keys the sign-in failure counter, so it must be the real one).
    proxy_count: int = 0
    # OIDC bearer JWTs: disabled when no issuer is set. The keys come from the issuer's
    # JWKS URL (cached) or from a local JWKS file (tests, air-gapped deployments).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: Path | None = None
    # A page of more items than this is a bulk read, governed by the export right (bulk.py):
    # read within the export scope for those who may export, reduced to this size for others.
    bulk_threshold: int = 1_000
    # URL prefixes that OGC API Processes job callbacks (`subscriber`) may name; none: no callbacks.
    callback_urls: tuple[str, ...] = ()

    @property
    def oidc_enabled(self) -> bool:
        """Whether bearer JWTs from an OIDC provider are accepted."""
        return bool(self.oidc_issuer)

    @classmethod
    def from_env(cls, database_url: str | None = None) -> "Settings":
        """Read and validate the environment; `database_url` overrides DATABASE_URL."""
        url = database_url or os.environ.get("DATABASE_URL")
        if not url:
            raise ConfigurationError(
                "DATABASE_URL n'est pas défini : lancez `make demo` (base intégrée) "
                "ou indiquez l'adresse d'une base PostGIS."
            )
        defaults = cls(database_url=url)
        public_url = os.environ.get("RESORPTION_PUBLIC_URL", defaults.public_url).rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"RESORPTION_PUBLIC_URL doit commencer par http:// ou https://, reçu « {public_url} »."
            )
        settings = cls(
            database_url=url,
            app_database_url=os.environ.get("RESORPTION_APP_DATABASE_URL")
            or app_url(url, os.environ.get("RESORPTION_APP_DB_PASSWORD")),
            public_url=public_url,
            collections_dir=Path(os.environ.get("RESORPTION_COLLECTIONS", defaults.collections_dir)),
            policy_path=Path(os.environ.get("RESORPTION_POLICY", defaults.policy_path)),
            pygeoapi_config=Path(os.environ.get("RESORPTION_PYGEOAPI_CONFIG", defaults.pygeoapi_config)),
            pool_min_size=_int("RESORPTION_POOL_MIN", defaults.pool_min_size),
            pool_max_size=_int("RESORPTION_POOL_MAX", defaults.pool_max_size, minimum=1),
            statement_timeout_ms=_int(
                "RESORPTION_STATEMENT_TIMEOUT_MS", defaults.statement_timeout_ms, minimum=100
            ),
            count_limit=_int("RESORPTION_COUNT_LIMIT", defaults.count_limit),
            proxy_count=_int("RESORPTION_PROXY_COUNT", defaults.proxy_count),
            **_oidc_from_env(),
            bulk_threshold=_int("RESORPTION_BULK_THRESHOLD", defaults.bulk_threshold, minimum=1),
            callback_urls=_callback_urls(os.environ.get("RESORPTION_CALLBACK_URLS", "")),
        )
        if settings.pool_min_size > settings.pool_max_size:
            raise ConfigurationError("RESORPTION_POOL_MIN ne peut dépasser RESORPTION_POOL_MAX.")
        return settings


def _oidc_from_env() -> dict[str, str | Path | None]:
    """The OIDC settings, all or nothing: an issuer needs an audience and a source of keys."""
    issuer = os.environ.get("RESORPTION_OIDC_ISSUER") or None
    audience = os.environ.get("RESORPTION_OIDC_AUDIENCE") or None
    jwks_url = os.environ.get("RESORPTION_OIDC_JWKS_URL") or None
    raw_file = os.environ.get("RESORPTION_OIDC_JWKS_FILE") or None
    jwks_file = Path(raw_file) if raw_file else None
    if not issuer:
        if audience or jwks_url or jwks_file:
            raise ConfigurationError(
                "RESORPTION_OIDC_ISSUER n'est pas défini alors que d'autres réglages OIDC le sont : "
                "indiquez l'émetteur des jetons, ou retirez les réglages RESORPTION_OIDC_*."
            )
        return {}
    if not audience:
        raise ConfigurationError(
            "RESORPTION_OIDC_AUDIENCE est obligatoire avec RESORPTION_OIDC_ISSUER "
            "(l'identifiant client attendu dans la revendication « aud »)."
        )
    if bool(jwks_url) == bool(jwks_file):
        raise ConfigurationError(
            "Indiquez RESORPTION_OIDC_JWKS_URL (adresse des clés de l'émetteur) "
            "ou RESORPTION_OIDC_JWKS_FILE (fichier JWKS local), l'un des deux exactement."
        )
    if jwks_url and not jwks_url.startswith(("https://", "http://")):
        raise ConfigurationError(
            "RESORPTION_OIDC_JWKS_URL doit être une adresse https:// (http:// en local), "
            f"reçu « {jwks_url} »."
        )
    if jwks_file and not jwks_file.is_file():
        raise ConfigurationError(f"RESORPTION_OIDC_JWKS_FILE : le fichier {jwks_file} est introuvable.")
    return {
        "oidc_issuer": issuer,
        "oidc_audience": audience,
        "oidc_jwks_url": jwks_url,
        "oidc_jwks_file": jwks_file,
    }


def _callback_urls(raw: str) -> tuple[str, ...]:
    """The allowed callback URL prefixes: absolute http(s) URLs, separated by spaces or commas."""
    prefixes = tuple(p for p in raw.replace(",", " ").split() if p)
    for prefix in prefixes:
        parts = urlsplit(prefix)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise ConfigurationError(
                f"RESORPTION_CALLBACK_URLS : « {prefix} » n'est pas une adresse http:// ou https:// "
                "complète (sans identifiant ni mot de passe), par exemple https://suivi.example.gouv.fr/rappels/."
            )
        if parts.query or parts.fragment:
            raise ConfigurationError(
                f"RESORPTION_CALLBACK_URLS : « {prefix} » ne doit avoir ni paramètres (?) ni ancre (#) : "
                "donnez le début des adresses permises."
            )
    return prefixes


APP_DB_USER = "resorption_app"


def app_url(url: str, password: str | None) -> str:
    """The URL of `url`'s server and database for the application's login role."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    credentials = APP_DB_USER + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{credentials}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


_current: Settings | None = None


def configure(settings: Settings) -> None:
    """Make `settings` the process's settings (called once by `create_app`)."""
    global _current
    _current = settings


def current() -> Settings:
    """The process's settings; read from the environment on first use outside the app."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current
