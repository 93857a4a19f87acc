"""Backups: `resorption db sauvegarder` and `resorption db restaurer` (README « Exploitation »).

A backup is one `pg_dump` in its custom format (compressed, restorable table by table, taken
in one snapshot, so consistent while the service runs) of the application's database, and
beside it a small JSON manifest: the schema's alembic revision, the instant, the size and the
SHA-256 of the dump. Restoring goes into an EMPTY database only (never over live data):
`pg_restore` without owners or privileges, then the caller migrates to the code's head and
grants the roles again (`resorption db restaurer` does both), and the smoke checks count what
came back. Point-in-time recovery (WAL archiving) is another tool's job: README.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from resorption import statements
from resorption.errors import ResorptionError
from resorption.privileges import create_role_kinds

SQL = statements.load("backup")
PG_MAJOR = 15


class BackupError(ResorptionError):
    """A backup or a restore could not be done; the message says why, in French."""

    default_message = "La sauvegarde ou la restauration a échoué."


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a backup holds, written beside it as `<dump>.json`."""

    revision: str | None
    created_at: str
    size: int
    sha256: str
    format: str = "pg_dump custom"


def program(name: str) -> str:
    """A PostgreSQL client program (pg_dump, pg_restore) matching the server's major version."""
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin") / name
    if debian.is_file():
        return str(debian)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} est introuvable : installez postgresql-client-{PG_MAJOR}.")
    return found


def manifest_path(dump: Path) -> Path:
    """Where the manifest of `dump` lives."""
    return dump.with_name(dump.name + ".json")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _revision(conn: psycopg.Connection) -> str | None:
    exists = conn.execute(SQL.has_version_table).fetchone()[0]
    if not exists:
        return None
    row = conn.execute(SQL.revision).fetchone()
    return row[0] if row else None


def save(database_url: str, dump: Path) -> Manifest:
    """Dump the database to `dump` (custom format) and write its manifest."""
    with psycopg.connect(database_url) as conn:
        revision = _revision(conn)
    if revision is None:
        raise BackupError("Cette base n'a pas de schéma Résorption migré : rien à sauvegarder.")
    dump.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [program("pg_dump"), "--format=custom", "--file", str(dump), "--dbname", database_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump a échoué :\n{done.stderr.strip()}")
    manifest = Manifest(
        revision=revision,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        size=dump.stat().st_size,
        sha256=_digest(dump),
    )
    manifest_path(dump).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
    return manifest


def restore(dump: Path, database_url: str, known_revisions: set[str]) -> str:
    """Restore `dump` into the empty database `database_url`; the schema revision it holds.

    Refused: a dump whose manifest does not match (size, SHA-256), a database that is not
    empty, a dump from a newer version of the code (a revision this code does not know).
    """
    if not dump.is_file():
        raise BackupError(f"Le fichier {dump} n'existe pas.")
    manifest_file = manifest_path(dump)
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        if manifest.get("sha256") != _digest(dump):
            raise BackupError(
                f"La sauvegarde {dump} ne correspond pas à son manifeste ({manifest_file.name}) : "
                "fichier tronqué ou modifié. Utilisez une autre sauvegarde."
            )
        if manifest.get("revision") not in known_revisions:
            raise BackupError(
                f"La sauvegarde est au schéma {manifest.get('revision')}, que cette version du code "
                "ne connaît pas : restaurez-la avec la version qui l'a faite (ou une plus récente)."
            )
    with psycopg.connect(database_url) as conn:
        if conn.execute(SQL.has_our_schema).fetchone()[0]:
            raise BackupError(
                "La base de destination n'est pas vide (elle a déjà un schéma « resorption ») : "
                "restaurez dans une base neuve (createdb), jamais par-dessus des données."
            )
    create_role_kinds(database_url)  # the read policies name them
    done = subprocess.run(
        [
            program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            database_url,
            str(dump),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore a échoué (rien n'a été restauré) :\n{done.stderr.strip()}")
    with psycopg.connect(database_url) as conn:
        revision = _revision(conn)
    if revision is None:
        raise BackupError(
            "La sauvegarde restaurée n'a pas de révision de schéma : ce n'est pas une base Résorption."
        )
    return revision


def smoke_counts(database_url: str) -> dict[str, int]:
    """What a restored database holds (sites, actions, users, history versions): the smoke checks."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(SQL.counts).fetchone()
    return dict(zip(("sites", "actions", "users", "versions"), row, strict=True))
