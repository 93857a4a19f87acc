"""Settings read once from the environment and validated at start-up."""

import os
from dataclasses import dataclass
from pathlib import Path

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
    public_url: str = "http://localhost:5000"
    collections_dir: Path = PROJECT_ROOT / "collections"
    pygeoapi_config: Path = PROJECT_ROOT / "pygeoapi-config.yml"
    pool_min_size: int = 1
    pool_max_size: int = 8
    statement_timeout_ms: int = 30_000
    # Exact numberMatched is computed up to this many rows; above it, only
    # resulttype=hits pays for an exact count (QGIS and GDAL page on `next`).
    count_limit: int = 100_000

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
            public_url=public_url,
            collections_dir=Path(os.environ.get("RESORPTION_COLLECTIONS", defaults.collections_dir)),
            pygeoapi_config=Path(os.environ.get("RESORPTION_PYGEOAPI_CONFIG", defaults.pygeoapi_config)),
            pool_min_size=_int("RESORPTION_POOL_MIN", defaults.pool_min_size),
            pool_max_size=_int("RESORPTION_POOL_MAX", defaults.pool_max_size, minimum=1),
            statement_timeout_ms=_int(
                "RESORPTION_STATEMENT_TIMEOUT_MS", defaults.statement_timeout_ms, minimum=100
            ),
            count_limit=_int("RESORPTION_COUNT_LIMIT", defaults.count_limit),
        )
        if settings.pool_min_size > settings.pool_max_size:
            raise ConfigurationError("RESORPTION_POOL_MIN ne peut dépasser RESORPTION_POOL_MAX.")
        return settings


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
