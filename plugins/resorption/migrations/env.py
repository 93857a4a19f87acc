"""Alembic environment: runs the revisions against DATABASE_URL, online only."""

from alembic import context
from sqlalchemy import create_engine, pool

from resorption.migrate import VERSION_TABLE_SCHEMA

config = context.config


def run_migrations_online() -> None:
    """Apply revisions in one transaction per revision."""
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            version_table_schema=VERSION_TABLE_SCHEMA,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
