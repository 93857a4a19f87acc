"""Settings read once from the environment and validated at start-up."""

import ipaddress
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


def _int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} doit être un entier, reçu « {raw} ».") from None
    if value < minimum:
        raise ConfigurationError(f"{name} doit être au moins {minimum}, reçu {value}.")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} ne peut dépasser {maximum}, reçu {value}.")
    return value


MIB = 1024 * 1024


def french_count(n: int) -> str:
    """20000 → « 20 000 » (narrow no-break space), as French messages write numbers."""
    return f"{n:,}".replace(",", "\u202f")


def french_size(n: int) -> str:
    """A size in bytes for a French message: « 32 Mo », « 1,5 Mo », « 64 ko »."""
    if n >= MIB:
        return f"{n / MIB:.3g}".replace(".", ",") + " Mo"
    if n >= 1024:
        return f"{n / 1024:.3g}".replace(".", ",") + " ko"
    return f"{french_count(n)} octets"


# What a JSON envelope adds around an import's base64 file (`{"inputs": {"file": "…", …}}`).
IMPORT_ENVELOPE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes of what a client may send, checked before any parser runs (README « Sécurité »).

    They need no database: gunicorn's configuration (config/gunicorn.conf.py) reads the first
    three, the application the others.
    """

    # gunicorn refuses longer request lines (414) and header sections (431) itself; it
    # cannot go above 8,190 bytes a line. The web map's longest CQL2 GET stays well below.
    request_line: int = 8190
    request_headers: int = 100
    header_bytes: int = 8190
    # Past this size a body is refused (413) before it is read, on every route.
    max_body_bytes: int = 32 * MIB
    # Nesting of any JSON body ({ and [), checked before it is parsed. Above CQL2's own depth
    # (an expression level is an object and its `args` list), below the 128 levels at which
    # the CQL2 library refuses JSON in English.
    json_max_depth: int = 100
    # CQL2 filters (text or JSON, query string, POST body or process input): characters,
    # nesting (brackets in text, expressions in the parsed tree) and terms (names, operators,
    # values). The native parser overflows its stack past ~1,500 nested brackets or ~3,400
    # chained operators: depth and terms keep it far from both.
    cql2_max_length: int = 20_000
    cql2_max_depth: int = 40
    cql2_max_terms: int = 1_000
    # Spreadsheet imports (process import-sites and `resorption import sites`).
    import_max_bytes: int = 20 * MIB
    import_max_rows: int = 100_000
    import_max_columns: int = 250
    import_max_uncompressed_bytes: int = 256 * MIB
    # Exports run in a request up to this many rows; beyond, as a job (`Prefer: respond-async`),
    # so that no request holds a worker and a database connection for minutes.
    sync_export_max_rows: int = 20_000
    # Imports write a row in milliseconds: in a request up to this many rows; beyond, as a job.
    sync_import_max_rows: int = 2_000
    # Attachments of sites and journal messages (resorption.attachments): a file's size, and
    # an image's pixels (a small PNG may announce 100,000 × 100,000 pixels: a decompression
    # bomb refused from its header, before Pillow decodes anything).
    attachment_max_bytes: int = 10 * MIB
    attachment_max_pixels: int = 50_000_000

    @classmethod
    def from_env(cls) -> "Limits":
        """Read and validate the RESORPTION_MAX_* / *_MAX_* variables (defaults above)."""
        d = cls()
        limits = cls(
            request_line=_int("RESORPTION_MAX_REQUEST_LINE", d.request_line, 1024, 8190),
            request_headers=_int("RESORPTION_MAX_REQUEST_HEADERS", d.request_headers, 10, 1000),
            header_bytes=_int("RESORPTION_MAX_HEADER_BYTES", d.header_bytes, 1024, 65536),
            max_body_bytes=_int("RESORPTION_MAX_BODY_BYTES", d.max_body_bytes, 64 * 1024),
            json_max_depth=_int("RESORPTION_JSON_MAX_DEPTH", d.json_max_depth, 8, 120),
            cql2_max_length=_int("RESORPTION_CQL2_MAX_LENGTH", d.cql2_max_length, 256),
            cql2_max_depth=_int("RESORPTION_CQL2_MAX_DEPTH", d.cql2_max_depth, 2, 200),
            cql2_max_terms=_int("RESORPTION_CQL2_MAX_TERMS", d.cql2_max_terms, 10, 3000),
            import_max_bytes=_int("RESORPTION_IMPORT_MAX_BYTES", d.import_max_bytes, 1024),
            import_max_rows=_int("RESORPTION_IMPORT_MAX_ROWS", d.import_max_rows, 1),
            import_max_columns=_int("RESORPTION_IMPORT_MAX_COLUMNS", d.import_max_columns, 10, 16384),
            import_max_uncompressed_bytes=_int(
                "RESORPTION_IMPORT_MAX_UNCOMPRESSED_BYTES", d.import_max_uncompressed_bytes, 1024
            ),
            sync_export_max_rows=_int("RESORPTION_SYNC_EXPORT_MAX_ROWS", d.sync_export_max_rows, 1),
            sync_import_max_rows=_int("RESORPTION_SYNC_IMPORT_MAX_ROWS", d.sync_import_max_rows, 1),
            attachment_max_bytes=_int("RESORPTION_ATTACHMENT_MAX_BYTES", d.attachment_max_bytes, 1024),
            attachment_max_pixels=_int(
                "RESORPTION_ATTACHMENT_MAX_PIXELS", d.attachment_max_pixels, 10_000, 500_000_000
            ),
        )
        if limits.attachment_max_bytes > limits.max_body_bytes:
            raise ConfigurationError(
                f"RESORPTION_ATTACHMENT_MAX_BYTES ({french_size(limits.attachment_max_bytes)}) dépasse "
                f"RESORPTION_MAX_BODY_BYTES ({french_size(limits.max_body_bytes)}) : une pièce jointe "
                "est le corps de sa requête. Réduisez le premier ou augmentez le second."
            )
        if limits.import_max_bytes * 4 // 3 + IMPORT_ENVELOPE_BYTES > limits.max_body_bytes:
            raise ConfigurationError(
                f"RESORPTION_IMPORT_MAX_BYTES ({french_size(limits.import_max_bytes)}) ne tient pas, "
                "encodé en base64, dans RESORPTION_MAX_BODY_BYTES "
                f"({french_size(limits.max_body_bytes)}) : un fichier importé occupe 4/3 de sa taille "
                "dans le corps de la requête. Réduisez le premier ou augmentez le second."
            )
        return limits


DEFAULT_MAIL_SENDER = "Résorption <ne-pas-repondre@resorption.localhost>"


@dataclass(frozen=True, slots=True)
class TransactionLimits:
    """How long one statement may run, and wait for a lock, in a transaction of one kind."""

    statement_ms: int
    lock_ms: int


# The kinds of transaction (database.transaction's `kind`) and their defaults: a page or an
# item answers in well under a second; a write waits little for a row another editor holds
# (a 503 with Retry-After tells it to try again) rather than piling up; an export is a job,
# reading a whole territory; a tile is drawn for a map that has already moved on.
TIMEOUT_DEFAULTS = {
    "read": TransactionLimits(30_000, 5_000),
    "write": TransactionLimits(15_000, 3_000),
    "export": TransactionLimits(600_000, 10_000),
    "tile": TransactionLimits(10_000, 2_000),
}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """`statement_timeout` and `lock_timeout` per kind of transaction (README « Exploitation »)."""

    by_kind: tuple[tuple[str, TransactionLimits], ...] = tuple(TIMEOUT_DEFAULTS.items())

    def of(self, kind: str) -> TransactionLimits:
        """The limits of `kind`; an unknown kind is a programming error."""
        return dict(self.by_kind)[kind]

    @classmethod
    def from_env(cls, read_statement_ms: int | None = None) -> "Timeouts":
        """RESORPTION_<KIND>_STATEMENT_TIMEOUT_MS and RESORPTION_<KIND>_LOCK_TIMEOUT_MS.

        RESORPTION_STATEMENT_TIMEOUT_MS (the former single setting) still sets the reads'.
        """
        kinds = []
        for kind, default in TIMEOUT_DEFAULTS.items():
            statement = default.statement_ms
            if kind == "read" and read_statement_ms is not None:
                statement = read_statement_ms
            name = kind.upper()
            kinds.append(
                (
                    kind,
                    TransactionLimits(
                        _int(f"RESORPTION_{name}_STATEMENT_TIMEOUT_MS", statement, 100),
                        _int(f"RESORPTION_{name}_LOCK_TIMEOUT_MS", default.lock_ms, 10),
                    ),
                )
            )
        return cls(tuple(kinds))


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the purger (`resorption purger`) keeps what it cleans (README « Exploitation »)."""

    # finished jobs (successful, failed, dismissed) and their files, after this many days
    jobs_days: int = 30
    # the audit log (who read or wrote what), after this many days: one year by default
    audit_days: int = 365
    # the owner name of a private site closed for this many months is erased (domain.md),
    # from the site and from every version of its history
    owner_months: int = 12
    # expired web sessions and forgotten sign-in counters go at once (they open nothing);
    # this margin keeps them this many days for an investigation
    sessions_days: int = 0

    @classmethod
    def from_env(cls) -> "Retention":
        """RESORPTION_PURGE_JOBS_DAYS, _AUDIT_DAYS, _OWNER_MONTHS, _SESSIONS_DAYS."""
        d = cls()
        return cls(
            jobs_days=_int("RESORPTION_PURGE_JOBS_DAYS", d.jobs_days, 1),
            audit_days=_int("RESORPTION_PURGE_AUDIT_DAYS", d.audit_days, 30),
            owner_months=_int("RESORPTION_PURGE_OWNER_MONTHS", d.owner_months, 1),
            sessions_days=_int("RESORPTION_PURGE_SESSIONS_DAYS", d.sessions_days, 0),
        )


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
    # How long a request waits for a pooled connection (and a new connection for PostgreSQL)
    # before a 503: with the database down, an answer within seconds, not a hang.
    pool_timeout_s: float = 3.0
    # A pooled connection is replaced after this long (seconds).
    pool_max_lifetime_s: float = 1800.0
    # What a 503 asks the client to wait (Retry-After, seconds).
    retry_after_s: int = 5
    # Streaming replicas that serve reads (resorption.replicas), as the application's login role:
    # DATABASE_REPLICA_URLS in DATABASE_URL's form, with the credentials of app_database_url.
    replica_urls: tuple[str, ...] = ()
    # A replica further behind the primary than this (WAL bytes, or seconds) is skipped.
    replica_max_lag_bytes: int = 16 * MIB
    replica_max_lag_s: float = 5.0
    # How long a read waits for a replica to replay its client's last write before the primary
    # serves it instead (read-your-writes).
    replica_wait_ms: int = 200
    # How often each worker measures its replicas' lag and health (seconds).
    replica_check_s: float = 1.0
    timeouts: Timeouts = Timeouts()
    retention: Retention = Retention()
    # Who may read /metrics: these networks (CIDR), or whoever sends this bearer secret.
    metrics_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    metrics_token: str | None = None
    # One JSON line per request and per log record (production); "text" for a developer.
    log_format: str = "json"
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
    # How long one Server-Sent Events connection lasts before the client reconnects (with its
    # Last-Event-ID): well under gunicorn's timeout.
    sse_max_seconds: int = 25
    # How many streams one worker process holds at once: each takes one of its threads
    # (config/gunicorn.conf.py, 4 by default), the others stay for ordinary requests.
    sse_max_streams: int = 2
    # The audit rows of sensitive reads are written in batches, at most this long after the
    # read (read_audit.py): a process killed outright loses at most these last milliseconds.
    audit_flush_ms: int = 200
    limits: Limits = Limits()
    # E-mail (resorption.mail): the SMTP server the outbox worker sends through; without a host
    # nothing is sent (messages wait in the outbox). `make demo` starts the embedded one
    # (resorption.mail_server) and sets `mail_local_dir`, the folder of its .eml files that the
    # local page /courriels shows (never set in a deployment).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    mail_sender: str = DEFAULT_MAIL_SENDER
    mail_local_dir: Path | None = None
    # The charter of use each user accepts (versioned text, config/charte.yml).
    charter_path: Path = PROJECT_ROOT / "config" / "charte.yml"

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
            pool_timeout_s=_int("RESORPTION_POOL_TIMEOUT_MS", int(defaults.pool_timeout_s * 1000), 100)
            / 1000,
            pool_max_lifetime_s=float(
                _int("RESORPTION_POOL_MAX_LIFETIME_S", int(defaults.pool_max_lifetime_s), 60)
            ),
            retry_after_s=_int("RESORPTION_RETRY_AFTER_S", defaults.retry_after_s, 1, 3600),
            **_replicas_from_env(
                os.environ.get("RESORPTION_APP_DATABASE_URL")
                or app_url(url, os.environ.get("RESORPTION_APP_DB_PASSWORD"))
            ),
            timeouts=Timeouts.from_env(_optional_int("RESORPTION_STATEMENT_TIMEOUT_MS")),
            retention=Retention.from_env(),
            metrics_networks=_networks(os.environ.get("RESORPTION_METRICS_NETWORKS")),
            metrics_token=os.environ.get("RESORPTION_METRICS_TOKEN") or None,
            log_format=_log_format(os.environ.get("RESORPTION_LOG_FORMAT", defaults.log_format)),
            count_limit=_int("RESORPTION_COUNT_LIMIT", defaults.count_limit),
            proxy_count=_int("RESORPTION_PROXY_COUNT", defaults.proxy_count),
            limits=Limits.from_env(),
            **_oidc_from_env(),
            bulk_threshold=_int("RESORPTION_BULK_THRESHOLD", defaults.bulk_threshold, minimum=1),
            callback_urls=_callback_urls(os.environ.get("RESORPTION_CALLBACK_URLS", "")),
            charter_path=Path(os.environ.get("RESORPTION_CHARTER", defaults.charter_path)),
            **_mail_from_env(),
            sse_max_seconds=_int("RESORPTION_SSE_MAX_SECONDS", defaults.sse_max_seconds, 1, 3600),
            sse_max_streams=_int("RESORPTION_SSE_MAX_STREAMS", defaults.sse_max_streams, 1, 1000),
            audit_flush_ms=_int("RESORPTION_AUDIT_FLUSH_MS", defaults.audit_flush_ms, 1, 10_000),
        )
        if settings.pool_min_size > settings.pool_max_size:
            raise ConfigurationError("RESORPTION_POOL_MIN ne peut dépasser RESORPTION_POOL_MAX.")
        return settings


def _replicas_from_env(app_database_url: str) -> dict[str, object]:
    """DATABASE_REPLICA_URLS (separated by commas or spaces) and the RESORPTION_REPLICA_* limits."""
    raw = os.environ.get("DATABASE_REPLICA_URLS", "")
    urls = []
    for url in (u for u in raw.replace(",", " ").split() if u):
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ConfigurationError(
                f"DATABASE_REPLICA_URLS : « {parts.hostname or url.rsplit('@', 1)[-1]} » n'est pas une "
                "adresse postgresql://hôte:port/base (séparez les répliques par des virgules)."
            )
        urls.append(replica_url(url, app_database_url))
    d = Settings.__dataclass_fields__
    return {
        "replica_urls": tuple(urls),
        "replica_max_lag_bytes": _int(
            "RESORPTION_REPLICA_MAX_LAG_BYTES", d["replica_max_lag_bytes"].default, 0
        ),
        "replica_max_lag_s": _int(
            "RESORPTION_REPLICA_MAX_LAG_MS", int(d["replica_max_lag_s"].default * 1000), 100
        )
        / 1000,
        "replica_wait_ms": _int("RESORPTION_REPLICA_WAIT_MS", d["replica_wait_ms"].default, 0, 10_000),
        "replica_check_s": _int(
            "RESORPTION_REPLICA_CHECK_MS", int(d["replica_check_s"].default * 1000), 50, 60_000
        )
        / 1000,
    }


def replica_url(url: str, app_database_url: str) -> str:
    """A replica's address (`url`: its host, port and database) with the application's credentials."""
    replica, app = urlsplit(url), urlsplit(app_database_url)
    credentials = app.netloc.rpartition("@")[0]
    host = replica.netloc.rpartition("@")[2]
    return urlunsplit(replica._replace(netloc=f"{credentials}@{host}" if credentials else host))


def _optional_int(name: str) -> int | None:
    """An integer variable, None when unset."""
    return _int(name, 0, 100) if os.environ.get(name) else None


def _networks(raw: str | None) -> tuple[str, ...]:
    """The networks allowed to read /metrics (CIDR, separated by spaces or commas); "" : none."""
    if raw is None:
        return Settings.__dataclass_fields__["metrics_networks"].default  # type: ignore[no-any-return]
    networks = tuple(n for n in raw.replace(",", " ").split() if n)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"RESORPTION_METRICS_NETWORKS : « {network} » n'est pas un réseau (ex. 10.0.0.0/8)."
            ) from None
    return networks


def _log_format(raw: str) -> str:
    if raw not in ("json", "text"):
        raise ConfigurationError(f"RESORPTION_LOG_FORMAT vaut json ou text, reçu « {raw} ».")
    return raw


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


def _mail_from_env() -> dict[str, object]:
    """The SMTP settings: host, port, STARTTLS, credentials (both or neither), sender."""
    host = os.environ.get("RESORPTION_SMTP_HOST") or None
    starttls = os.environ.get("RESORPTION_SMTP_STARTTLS", "off").strip().lower()
    if starttls not in ("on", "off", "1", "0", "true", "false", "oui", "non"):
        raise ConfigurationError(f"RESORPTION_SMTP_STARTTLS vaut on ou off, reçu « {starttls} ».")
    username = os.environ.get("RESORPTION_SMTP_USER") or None
    password = os.environ.get("RESORPTION_SMTP_PASSWORD") or None
    if bool(username) != bool(password):
        raise ConfigurationError(
            "RESORPTION_SMTP_USER et RESORPTION_SMTP_PASSWORD vont ensemble : indiquez les deux, ou aucun."
        )
    if username and starttls not in ("on", "1", "true", "oui"):
        raise ConfigurationError(
            "RESORPTION_SMTP_USER demande RESORPTION_SMTP_STARTTLS=on : le mot de passe du serveur SMTP "
            "ne passe jamais en clair."
        )
    sender = os.environ.get("RESORPTION_MAIL_FROM") or DEFAULT_MAIL_SENDER
    if "@" not in sender:
        raise ConfigurationError(
            f"RESORPTION_MAIL_FROM doit contenir une adresse, par exemple « Résorption "
            f"<ne-pas-repondre@exemple.gouv.fr> », reçu « {sender} »."
        )
    local = os.environ.get("RESORPTION_MAIL_LOCAL_DIR") or None
    return {
        "smtp_host": host,
        "smtp_port": _int(
            "RESORPTION_SMTP_PORT", 587 if starttls in ("on", "1", "true", "oui") else 25, 1, 65535
        ),
        "smtp_starttls": starttls in ("on", "1", "true", "oui"),
        "smtp_username": username,
        "smtp_password": password,
        "mail_sender": sender,
        "mail_local_dir": Path(local) if local else None,
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
