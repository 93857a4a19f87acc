"""Schema migrations: alembic revisions that apply the `.sql` files of `sql/`."""

from importlib.resources import files
from pathlib import Path

from alembic import command, op
from alembic.config import Config

from resorption.database import sqlalchemy_url

SQL_DIR = files("resorption") / "sql"


def alembic_config(database_url: str) -> Config:
    """An alembic configuration without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def run_sql_files(names: list[str]) -> None:
    """Inside a revision: execute each named file of `sql/` as one script."""
    # The raw psycopg cursor: without parameters it sends the script as is, so
    # the `%` of format() calls and `$$` bodies need no escaping.
    cursor = op.get_bind().connection.dbapi_connection.cursor()
    for name in names:
        cursor.execute((SQL_DIR / name).read_text(encoding="utf-8"))
