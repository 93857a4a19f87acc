"""The embedded PostgreSQL/PostGIS cluster: the default database for development, demo and tests.

When ``DATABASE_URL`` is unset, Résorption runs its own PostgreSQL 15 cluster in
``<project>/.local/postgres`` (``pgdata/``, unix socket in ``run/``, ``postgres.log``),
listening on 127.0.0.1 only, with trust authentication. Nothing here runs at import:
each function is idempotent and cheap once the cluster is up, so callers (the CLI, the
test suite, the Makefile) may call them every time.

PostgreSQL refuses to run as root: when we are root, the cluster belongs to the
``postgres`` system user and every server command goes through ``runuser``.

    python -m resorption.embedded start|stop|url|status|destroy
"""

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from resorption import statements

PG_MAJOR = 15
DEFAULT_PORT = 54329
DATABASE_NAME = "resorption"
SERVICE_USER = "postgres"
POSTGIS_PACKAGE = f"postgresql-{PG_MAJOR}-postgis-3"
EXTENSIONS = ("postgis", "unaccent")
SQL = statements.load("embedded")

_SOCKET_PATH_MAX = 107  # Linux sun_path is 108 bytes, NUL included
_CONF_FILE = "resorption.conf"  # our settings, included from postgresql.conf


class EmbeddedDatabaseError(RuntimeError):
    """The database could not be prepared; the message says why and what to do, in French."""


# -- small helpers ---------------------------------------------------------------------


def _say(message: str) -> None:
    """Print one progress line for a human, on stderr so stdout stays parseable."""
    print(f"[résorption] {message}", file=sys.stderr, flush=True)


def _is_root() -> bool:
    return os.geteuid() == 0


def _service_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise EmbeddedDatabaseError(
            f"L'utilisateur système « {SERVICE_USER} » n'existe pas : installez PostgreSQL "
            f"{PG_MAJOR} (apt-get install -y {POSTGIS_PACKAGE})."
        ) from None


def _give_to_service_user(path: Path) -> None:
    """As root, hand a file or folder we created to the user the server runs as."""
    if _is_root():
        account = _service_account()
        os.chown(path, account.pw_uid, account.pw_gid)


def _as_server_user(command: Sequence[str | Path]) -> list[str]:
    """The command line running ``command`` as the server's user (ourselves unless root)."""
    args = [str(part) for part in command]
    return ["runuser", "-u", SERVICE_USER, "--", *args] if _is_root() else args


def _run(command: Sequence[str | Path], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False
    )


def _bindir() -> Path:
    """Where PostgreSQL 15's server programs are (Debian layout first, then pg_config)."""
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (debian / "initdb").is_file():
        return debian
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = _run([pg_config, "--bindir"])
        if found.returncode == 0 and (Path(found.stdout.strip()) / "initdb").is_file():
            return Path(found.stdout.strip())
    return debian


def _sharedir(bindir: Path) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        found = _run([pg_config, "--sharedir"])
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    return Path(f"/usr/share/postgresql/{PG_MAJOR}")


def default_root() -> Path:
    """``$RESORPTION_POSTGRES_DIR``, else ``<project>/.local/postgres``."""
    if configured := os.environ.get("RESORPTION_POSTGRES_DIR"):
        return Path(configured).absolute()
    project = Path(__file__).resolve().parents[2]  # plugins/resorption/embedded.py
    base = project if (project / "pyproject.toml").is_file() else Path.cwd()
    return base / ".local" / "postgres"


def default_port() -> int:
    """``$RESORPTION_POSTGRES_PORT``, else 54329."""
    return int(os.environ.get("RESORPTION_POSTGRES_PORT", DEFAULT_PORT))


def embedded_url(port: int = DEFAULT_PORT) -> str:
    return f"postgresql://{SERVICE_USER}@127.0.0.1:{port}/{DATABASE_NAME}"


def redact_url(url: str) -> str:
    """The connection string without its password, fit for a message or a log."""
    if "://" not in url:
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            return "(chaîne de connexion illisible)"
        params.pop("password", None)
        return make_conninfo(**params)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
    query = "&".join(item for item in parts.query.split("&") if item and not item.startswith("password="))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


# -- PostGIS ---------------------------------------------------------------------------


def ensure_postgis_installed() -> None:
    """Install PostgreSQL 15 + PostGIS 3 from Debian if missing (as root), else explain."""
    bindir = _bindir()
    control = _sharedir(bindir) / "extension" / "postgis.control"
    if control.is_file() and (bindir / "initdb").is_file():
        return
    if not _is_root():
        raise EmbeddedDatabaseError(
            f"PostGIS pour PostgreSQL {PG_MAJOR} est introuvable ({control} manque). "
            f"Installez-le : sudo apt-get install -y {POSTGIS_PACKAGE} "
            "— ou définissez DATABASE_URL vers un serveur PostGIS existant."
        )
    _say(f"PostGIS absent : installation de {POSTGIS_PACKAGE} (apt-get)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", POSTGIS_PACKAGE]):
        done = subprocess.run(command, env=env, check=False)
        if done.returncode != 0:
            raise EmbeddedDatabaseError(
                f"« {' '.join(command)} » a échoué (code {done.returncode}) : "
                f"installez {POSTGIS_PACKAGE} à la main ou définissez DATABASE_URL."
            )


# -- the cluster -----------------------------------------------------------------------


def _postgres_can_reach(folder: Path) -> bool:
    """Whether the service user can traverse every folder down to ``folder``."""
    return _run(["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(folder)]).returncode == 0


def _cluster_home(root: Path) -> Path:
    """The real folder of the cluster, created and handed to the server's user if needed.

    As root the ``postgres`` user must be able to reach ``root``. A checkout under a
    private folder (``/root``, a ``mktemp -d``…) does not allow that: the cluster then
    lives in ``/var/tmp/resorption-postgres-<hash>`` and ``root`` becomes a symlink to it.
    """
    root = root.absolute()
    if root.is_symlink():
        return root.resolve()
    if (root / "pgdata" / "PG_VERSION").is_file():
        return root  # already initialised here: it was reachable then
    root.parent.mkdir(parents=True, exist_ok=True)
    if not _is_root() or _postgres_can_reach(root.parent):
        root.mkdir(exist_ok=True)
        _give_to_service_user(root)
        return root
    if root.exists() and any(root.iterdir()):
        raise EmbeddedDatabaseError(
            f"L'utilisateur « {SERVICE_USER} » ne peut pas traverser {root.parent} "
            f"(un dossier parent n'a pas le droit x pour les autres) et {root} n'est pas vide. "
            f"Videz {root} ou donnez l'accès : chmod o+x sur chaque dossier parent."
        )
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    home = Path("/var/tmp") / f"resorption-postgres-{digest}"
    home.mkdir(mode=0o700, exist_ok=True)
    _give_to_service_user(home)
    if root.exists():
        root.rmdir()
    root.symlink_to(home, target_is_directory=True)
    _say(
        f"l'utilisateur « {SERVICE_USER} » ne peut pas traverser {root.parent} : "
        f"le cluster est placé dans {home} ({root} y renvoie)."
    )
    return home


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise concurrent starts (pytest workers, two terminals) of the cluster at ``root``."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _postmaster_info(pgdata: Path) -> list[str] | None:
    """The lines of ``postmaster.pid`` if a live postmaster owns it; removes a stale one."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except FileNotFoundError:
        return None
    except (IndexError, ValueError):
        return None  # being written right now: let pg_ctl decide
    if _is_live_postgres(pid):
        return lines
    _say(f"postmaster.pid périmé (processus {pid} absent) : supprimé.")
    pid_file.unlink(missing_ok=True)
    # The server refuses to start while a socket lock names a pid that still exists,
    # and a killed postmaster may linger as a zombie: drop the locks it left.
    if len(lines) > 4 and lines[4]:
        for lock in Path(lines[4]).glob(".s.PGSQL.*.lock"):
            if lock.read_text().split("\n", 1)[0].strip() == str(pid):
                lock.unlink(missing_ok=True)
    return None


def _is_live_postgres(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) PostgreSQL process."""
    proc = Path(f"/proc/{pid}")
    try:
        command_line = (proc / "cmdline").read_bytes()
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return b"postgres" in command_line and state != "Z"


def _has_c_utf8_locale() -> bool:
    try:
        listed = _run(["locale", "-a"]).stdout
    except OSError:
        return False
    return any(name.lower().replace("-", "") == "c.utf8" for name in listed.split())


def _initdb(bindir: Path, home: Path, pgdata: Path) -> None:
    locale = "C.UTF-8" if _has_c_utf8_locale() else "C"
    _say(f"création du cluster PostgreSQL {PG_MAJOR} dans {pgdata} (locale {locale})…")
    done = _run(
        _as_server_user(
            [
                bindir / "initdb",
                "--pgdata",
                pgdata,
                "--username",
                SERVICE_USER,
                "--auth=trust",
                "--encoding=UTF8",
                f"--locale={locale}",
            ]
        ),
        cwd=home,
    )
    if done.returncode != 0:
        raise EmbeddedDatabaseError(f"initdb a échoué :\n{done.stdout}{done.stderr}")
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(f"\n# Résorption: listen address, port, socket\ninclude = '{_CONF_FILE}'\n")


def _write_settings(pgdata: Path, run_dir: Path, port: int) -> None:
    """Listen on 127.0.0.1:port only; unix socket in ``run/`` when its path is short enough."""
    run_dir.mkdir(exist_ok=True)
    _give_to_service_user(run_dir)
    socket_dir = str(run_dir)
    if len(f"{socket_dir}/.s.PGSQL.{port}") > _SOCKET_PATH_MAX:
        _say(f"chemin trop long pour une socket unix ({socket_dir}) : TCP seulement.")
        socket_dir = ""
    quoted = socket_dir.replace("'", "''")
    settings = pgdata / _CONF_FILE
    settings.write_text(
        "listen_addresses = '127.0.0.1'\n"
        f"port = {port}\n"
        f"unix_socket_directories = '{quoted}'\n"
        # A development cluster: a crash may lose the last commits, never corrupts data.
        "synchronous_commit = off\n"
    )
    _give_to_service_user(settings)


def ensure_cluster(root: Path | None = None, port: int = DEFAULT_PORT) -> str:
    """Initialise (once) and start (if stopped) the embedded cluster; return its URL."""
    root = (default_root() if root is None else root).absolute()
    url = embedded_url(port)
    with _locked(root):
        home = _cluster_home(root)
        pgdata, run_dir, log = home / "pgdata", home / "run", home / "postgres.log"
        running = _postmaster_info(pgdata)
        if running is not None:
            running_port = running[3] if len(running) > 3 else "?"
            if running_port != str(port):
                raise EmbeddedDatabaseError(
                    f"Le cluster de {pgdata} tourne déjà sur le port {running_port}, "
                    f"pas {port} : arrêtez-le (python -m resorption.embedded stop)."
                )
            return url
        bindir = _bindir()
        if not (pgdata / "PG_VERSION").is_file():
            _initdb(bindir, home, pgdata)
        _write_settings(pgdata, run_dir, port)
        _say(f"démarrage de PostgreSQL {PG_MAJOR} sur 127.0.0.1:{port} (journal : {log})…")
        command = [bindir / "pg_ctl", "--pgdata", pgdata, "--log", log, "--wait", "start"]
        done = _run(_as_server_user(command), cwd=home)
        if done.returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
            raise EmbeddedDatabaseError(
                f"PostgreSQL n'a pas démarré (le port {port} est-il déjà pris ? "
                f"RESORPTION_POSTGRES_PORT en choisit un autre).\n"
                f"{done.stdout}{done.stderr}--- fin de {log} ---\n{tail}"
            )
    return url


def _existing_home(root: Path | None) -> Path:
    root = (default_root() if root is None else root).absolute()
    return root.resolve() if root.is_symlink() else root


def stop_cluster(root: Path | None = None) -> None:
    """Stop the embedded cluster if it runs (fast shutdown: open sessions are closed)."""
    home = _existing_home(root)
    pgdata = home / "pgdata"
    if _postmaster_info(pgdata) is None:
        _say("PostgreSQL embarqué : déjà arrêté.")
        return
    _say(f"arrêt de PostgreSQL ({pgdata})…")
    command = [_bindir() / "pg_ctl", "--pgdata", pgdata, "--mode", "fast", "--wait", "stop"]
    done = _run(_as_server_user(command), cwd=home)
    if done.returncode != 0:
        raise EmbeddedDatabaseError(f"pg_ctl stop a échoué :\n{done.stdout}{done.stderr}")


def destroy_cluster(root: Path | None = None) -> None:
    """Stop the embedded cluster and delete it, data included."""
    root = (default_root() if root is None else root).absolute()
    stop_cluster(root)
    home = _existing_home(root)
    shutil.rmtree(home, ignore_errors=True)
    if root.is_symlink():
        root.unlink()
    _say(f"cluster supprimé ({home}).")


# -- a streaming replica ----------------------------------------------------------------


def replica_home(port: int, root: Path | None = None) -> Path:
    """Where the replica listening on ``port`` lives: inside the cluster's folder (reachable by
    the server's user, deleted with the cluster)."""
    return _existing_home(root) / f"replica-{port}"


def start_replica(port: int, root: Path | None = None, primary_port: int | None = None) -> str:
    """A new hot standby of the embedded cluster on ``port``; its URL (database ``resorption``).

    A copy made now (``pg_basebackup -R``: base backup, WAL streamed during it, then
    ``standby.signal`` and ``primary_conninfo``) that follows the primary by streaming
    replication. The cluster's defaults allow it: ``wal_level = replica``,
    ``max_wal_senders = 10``, and initdb's ``pg_hba.conf`` trusts replication from 127.0.0.1.
    A replica left from before is deleted first (the primary may have recycled the WAL it needs).
    """
    primary_port = default_port() if primary_port is None else primary_port
    home = replica_home(port, root)
    stop_replica(port, root)
    home.mkdir()
    _give_to_service_user(home)
    pgdata, log = home / "pgdata", home / "postgres.log"
    copy = [
        *(_bindir() / "pg_basebackup", "--pgdata", pgdata, "--write-recovery-conf"),
        *("--wal-method=stream", "--checkpoint=fast", "--no-sync"),
        *("--host", "127.0.0.1", "--port", str(primary_port), "--username", SERVICE_USER),
    ]
    done = _run(_as_server_user(copy), cwd=home)
    if done.returncode != 0:
        raise EmbeddedDatabaseError(f"pg_basebackup a échoué :\n{done.stdout}{done.stderr}")
    # The copy carries the primary's settings file: its own port and socket folder instead.
    (pgdata / "postmaster.opts").unlink(missing_ok=True)
    _write_settings(pgdata, home / "run", port)
    command = [_bindir() / "pg_ctl", "--pgdata", pgdata, "--log", log, "--wait", "start"]
    done = _run(_as_server_user(command), cwd=home)
    if done.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
        raise EmbeddedDatabaseError(f"La réplique n'a pas démarré :\n{done.stdout}{done.stderr}{tail}")
    return embedded_url(port)


def stop_replica(port: int, root: Path | None = None) -> None:
    """Stop the replica on ``port`` (immediately: it holds nothing of its own) and delete it."""
    home = replica_home(port, root)
    if _postmaster_info(home / "pgdata") is not None:
        command = [_bindir() / "pg_ctl", "--pgdata", home / "pgdata", "--mode", "immediate", "--wait", "stop"]
        _run(_as_server_user(command), cwd=home)
    shutil.rmtree(home, ignore_errors=True)


# -- the database ----------------------------------------------------------------------


def _connect(conninfo: str) -> psycopg.Connection:
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


def _create_database(url: str, dbname: str, why: Exception) -> None:
    """Create ``dbname`` from the server's ``postgres`` maintenance database."""
    try:
        admin = _connect(make_conninfo(url, dbname="postgres"))
    except psycopg.OperationalError as exc:
        raise EmbeddedDatabaseError(
            f"Serveur PostgreSQL injoignable ({redact_url(url)}) : {str(why).strip()}"
        ) from exc
    with admin:
        # Concurrent callers (pytest workers) queue here; the lock ends with the session.
        admin.execute(SQL.lock_database_creation, (f"resorption:{dbname}",))
        exists = admin.execute(SQL.database_exists, (dbname,))
        if exists.fetchone():
            return  # created meanwhile, or the first failure was not about a missing database
        _say(f"création de la base « {dbname} »…")
        try:
            admin.execute(SQL.create_database.format(sql.Identifier(dbname)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            pass  # created meanwhile by a concurrent caller
        except psycopg.errors.InsufficientPrivilege as exc:
            raise EmbeddedDatabaseError(
                f"Pas le droit de créer la base « {dbname} » ({redact_url(url)}) : "
                "créez-la avec un superutilisateur ou donnez CREATEDB à ce rôle."
            ) from exc


def ensure_database(url: str) -> None:
    """Create the target database if missing, then the ``postgis`` and ``unaccent`` extensions."""
    try:
        dbname = conninfo_to_dict(url).get("dbname")
    except psycopg.ProgrammingError as exc:
        raise EmbeddedDatabaseError(f"URL de base de données invalide : {redact_url(url)}") from exc
    try:
        conn = _connect(url)
    except psycopg.OperationalError as exc:
        if not dbname:
            raise EmbeddedDatabaseError(
                f"Serveur PostgreSQL injoignable ({redact_url(url)}) : {str(exc).strip()}"
            ) from exc
        _create_database(url, str(dbname), exc)
        try:
            conn = _connect(url)
        except psycopg.OperationalError as again:
            raise EmbeddedDatabaseError(
                f"Connexion impossible à {redact_url(url)} : {str(again).strip()}"
            ) from again
    with conn:
        conn.execute(SQL.lock_extensions)
        for extension in EXTENSIONS:
            statement = SQL.create_extension.format(sql.Identifier(extension))
            try:
                conn.execute(statement)
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
                pass  # created meanwhile by a concurrent caller
            except psycopg.errors.UndefinedFile as exc:
                raise EmbeddedDatabaseError(
                    f"L'extension « {extension} » n'est pas installée sur le serveur "
                    f"({redact_url(url)}) : installez {POSTGIS_PACKAGE} (ou postgresql-contrib)."
                ) from exc
            except psycopg.errors.InsufficientPrivilege as exc:
                raise EmbeddedDatabaseError(
                    f"Pas le droit de créer l'extension « {extension} » ({redact_url(url)}) : "
                    f"un superutilisateur doit lancer CREATE EXTENSION {extension}."
                ) from exc


def resolve_database_url() -> str:
    """``$DATABASE_URL`` if set, else the embedded cluster; the database is ready either way."""
    if url := os.environ.get("DATABASE_URL", "").strip():
        _say(f"base de données : DATABASE_URL = {redact_url(url)}")
        ensure_database(url)
        return url
    _say("DATABASE_URL non défini : base PostgreSQL/PostGIS embarquée.")
    ensure_postgis_installed()
    url = ensure_cluster(default_root(), default_port())
    ensure_database(url)
    _say(f"base de données prête : {url}")
    return url


# -- command line (for the Makefile) -----------------------------------------------------

_USAGE = """usage : python -m resorption.embedded [start|stop|url|status|destroy]
  start    installe PostGIS si besoin, crée et démarre le cluster embarqué, affiche son URL
  stop     arrête le cluster embarqué
  url      affiche l'URL à utiliser (DATABASE_URL, sinon le cluster embarqué, démarré)
  status   dit si le cluster embarqué tourne (code 0) ou non (code 3)
  destroy  arrête le cluster embarqué et supprime ses données"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m resorption.embedded``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "url"
    try:
        match command:
            case "start":
                ensure_postgis_installed()
                url = ensure_cluster(default_root(), default_port())
                ensure_database(url)
                print(url)
            case "stop":
                stop_cluster()
            case "url":
                print(resolve_database_url())
            case "status":
                running = _postmaster_info(_existing_home(None) / "pgdata") is not None
                print("en marche" if running else "arrêté")
                return 0 if running else 3
            case "destroy":
                destroy_cluster()
            case _:
                print(_USAGE, file=sys.stderr)
                return 2
    except EmbeddedDatabaseError as exc:
        print(f"[résorption] erreur : {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
