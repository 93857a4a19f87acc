"""Schema migrations: alembic revisions that apply the `.sql` files of `sql/`.

`sql/` shows the schema as it IS: one file per concern (the tables of a concern, their
constraints, indexes, triggers, row-level security policies, views and functions), numbered
in dependency order, each object defined once in its final form beside the reasons for it.
The baseline revision (0015) applies every file, in that order, to an empty database.

A change to the schema is two edits in one commit:

1. the `sql/` file that defines the object, edited to show its new state: a new database
   gets it from the baseline;
2. a new revision that takes an existing database to that state (`CREATE OR REPLACE`,
   `ALTER`, `DROP POLICY IF EXISTS` then `CREATE POLICY`…). A new database runs it too, after
   the baseline, so it must also work on a database already in the new state (`IF NOT
   EXISTS`, `IF EXISTS`, `OR REPLACE`), and the test suite, which builds its database this
   way, runs it. A new column goes at the end of its table in `sql/`, where `ADD COLUMN`
   puts it in an existing database.

Never `DROP` then `CREATE` an object again inside `sql/`, never a second version of a
function there: `sql/` is the state, the revisions are the way there.

Databases migrated by the former revisions 0001 to 0014 cannot be brought up to date step by
step any more: `upgrade` refuses them with a French message saying what to do.
"""

from collections.abc import Iterable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from resorption import statements
from resorption.database import sqlalchemy_url
from resorption.errors import ResorptionError
from resorption.privileges import create_role_kinds

SQL_DIR = files("resorption") / "sql"
VERSION_TABLE_SCHEMA = "public"
SQL = statements.load("migrate")
# The first revision: the schema that revisions 0001 to 0015 used to build step by step.
BASELINE = "0015"


class OutdatedSchema(ResorptionError):
    """The database's schema comes from revisions this version does not have."""

    default_message = "Le schéma de la base ne peut pas être mis à jour par cette version."


def alembic_config(database_url: str) -> Config:
    """An alembic configuration without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`, or refuse one these revisions cannot bring there."""
    cfg = alembic_config(database_url)
    _refuse_unknown_revision(cfg)
    create_role_kinds(database_url)
    command.upgrade(cfg, revision)


def _refuse_unknown_revision(cfg: Config) -> None:
    """Raise OutdatedSchema, in French, for a database alembic would answer with a stack trace.

    That is a database at a revision these scripts do not have (before the baseline, or
    from a newer version of Résorption), or one holding our schema without any revision.
    """
    known = {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}
    engine = create_engine(cfg.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            opts = {"version_table_schema": VERSION_TABLE_SCHEMA}
            current = set(MigrationContext.configure(connection, opts=opts).get_current_heads())
            has_schema = connection.exec_driver_sql(SQL.has_resorption_schema.as_string()).scalar()
    finally:
        engine.dispose()
    unknown = sorted(current - known)
    if any(r.isdigit() and int(r) < int(BASELINE) for r in unknown):
        raise OutdatedSchema(
            f"La base est à la révision de schéma {', '.join(unknown)}, antérieure à la révision de "
            f"base {BASELINE} : cette version ne sait plus la mettre à jour pas à pas. Base intégrée "
            "(données de démonstration) : recréez-la avec `make clean-db` puis `resorption db setup`. "
            f"Base réelle : amenez-la d'abord à la révision {BASELINE} avec `resorption db migrate` "
            "d'une version précédente de Résorption, ou restaurez une sauvegarde faite à cette révision."
        )
    if unknown:
        raise OutdatedSchema(
            f"La base est à la révision de schéma {', '.join(unknown)}, que cette version de Résorption "
            "ne connaît pas (base mise à jour par une version plus récente ?) : utilisez la version "
            "qui l'a migrée, ou restaurez une sauvegarde."
        )
    if not current and has_schema:
        raise OutdatedSchema(
            "La base contient déjà un schéma « resorption » mais aucune révision de migration : il n'a "
            "pas été créé par `resorption db migrate`. Utilisez une base vide (base intégrée : "
            "`make clean-db` puis `resorption db setup`) ou restaurez une sauvegarde."
        )


def sql_files() -> list[Traversable]:
    """The files of `sql/`, in the order they apply (their names are numbered)."""
    return sorted((f for f in SQL_DIR.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def run_sql(script: str) -> None:
    """Inside a revision: execute `script` as is."""
    # The raw psycopg cursor: without parameters it sends the script as is, so the `%` of
    # format() calls and `$$` bodies need no escaping.
    op.get_bind().connection.dbapi_connection.cursor().execute(script)


def run_sql_files(paths: Iterable[Traversable]) -> None:
    """Inside a revision: execute each file as one script."""
    for path in paths:
        run_sql(path.read_text(encoding="utf-8"))
