"""The files of `sql/` show the schema as it is, and old databases get a clear refusal.

- Each policy, function, table, view and type of the migrated database is created by exactly
  one statement of `sql/`, and nothing there drops or replaces an object again: a reader
  finds an object's one definition, in its final form.
- `resorption.migrate.upgrade` refuses a database it cannot bring up to date (a revision
  before the baseline, an unknown one, our schema without a revision) with a French message
  saying what to do, instead of alembic's stack trace.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from resorption.migrate import SQL_DIR, OutdatedSchema, sql_files, upgrade
from resorption.migrations.views import definition
from tests.fix_db import _with_db

SCHEMAS = ("resorption", "resorption_jobs")


def _code(text: str) -> str:
    """The statements of a file without its comments."""
    return re.sub(r"--[^\n]*", "", text)


SQL = {f.name: _code(f.read_text(encoding="utf-8")) for f in sql_files()}

# What a statement of `sql/` creates, as the database names it.
DEFINITIONS = {
    "policy": r"CREATE POLICY (\w+) ON (\w+)\.(\w+)",
    "function": r"CREATE FUNCTION (\w+)\.(\w+)\(",
    "table": r"CREATE TABLE (\w+)\.(\w+)",
    "view": r"CREATE VIEW (\w+)\.(\w+)",
    "type": r"CREATE TYPE (\w+)\.(\w+)",
}

# The same objects, from the catalog (extension members aside).
CATALOG = {
    "policy": "SELECT policyname, schemaname, tablename FROM pg_policies WHERE schemaname = ANY(%(s)s)",
    "function": """
        SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY(%(s)s)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')""",
    "table": """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(s)s) AND c.relkind IN ('r', 'p')""",
    "view": """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(s)s) AND c.relkind IN ('v', 'm')""",
    "type": """
        SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY(%(s)s)
          AND (t.typtype = 'e' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')""",
}


@pytest.mark.parametrize("kind", DEFINITIONS)
def test_every_object_has_one_definition_in_sql_files(db: psycopg.Connection, kind: str) -> None:
    """Each object of the database is created once in `sql/`, and `sql/` creates nothing else."""
    created = Counter(
        (name, match) for name, text in SQL.items() for match in re.findall(DEFINITIONS[kind], text)
    )
    in_files = Counter(match for _, match in created.elements())
    in_database = {tuple(row) for row in db.execute(CATALOG[kind], {"s": list(SCHEMAS)})}
    assert {m for m, n in in_files.items() if n > 1} == set(), f"{kind} défini plusieurs fois"
    assert set(in_files) == in_database


def test_every_view_of_a_migrated_database_is_the_one_its_file_defines(db: psycopg.Connection) -> None:
    """A revision that writes a view inline (0022 wrote the activity feed's) leaves its old text
    on every new database unless a later revision defines it again from its file: the feed of a
    new database sorted every version of every site for its first page. Each view of the
    migrated test database is compared with its file's definition, made as a temporary view."""
    differ = []
    for name, code in SQL.items():
        for match in re.finditer(r"CREATE VIEW (\w+)\.(\w+) (.*?);\n", code, re.DOTALL):
            schema, view, rest = match.groups()
            with db.transaction():
                db.execute(f"CREATE VIEW pg_temp.file_{view} {rest}")
                theirs, ours = db.execute(
                    "SELECT pg_get_viewdef(%s::regclass), pg_get_viewdef(%s::regclass)",
                    (f"{schema}.{view}", f"pg_temp.file_{view}"),
                ).fetchone()
                db.execute(f"DROP VIEW pg_temp.file_{view}")
            if theirs != ours:
                differ.append(f"{schema}.{view} ({name})")
    assert not differ, differ


def test_every_policy_of_a_migrated_database_is_the_one_its_file_defines(db: psycopg.Connection) -> None:
    """As for the views: each row-level security policy of the migrated test database says what
    its file says (made again under another name, in a transaction rolled back)."""
    differ = []
    columns = "SELECT cmd, permissive, roles, qual, with_check FROM pg_policies "
    columns += "WHERE schemaname = %s AND tablename = %s AND policyname = %s"
    for name, code in SQL.items():
        for match in re.finditer(r"CREATE POLICY (\w+) ON (\w+)\.(\w+) (.*?);\n", code, re.DOTALL):
            policy, schema, table, rest = match.groups()
            with db.transaction(force_rollback=True):
                db.execute(f"CREATE POLICY file_{policy} ON {schema}.{table} {rest}")
                theirs = db.execute(columns, (schema, table, policy)).fetchone()
                ours = db.execute(columns, (schema, table, f"file_{policy}")).fetchone()
            if theirs != ours:
                differ.append(f"{policy} ON {schema}.{table} ({name})")
    assert not differ, differ


def test_revision_0042_reads_details_without_sub_plans(scratch_url: str, db: psycopg.Connection) -> None:
    """A database of 0041 (the read policies of a site's details looked their site up in a
    sub-select; no site_readable) gets the policies and the function of its files."""
    upgrade(scratch_url, "0041")
    policies = "SELECT tablename, qual FROM pg_policies WHERE policyname = 'read' AND tablename = ANY(%s)"
    site = "EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = {})"
    old = {
        "site_closing_solutions": site.format("site_id"),
        "site_reinstallation_origins": site.format("site_id") + " AND " + site.format("origin_site_id"),
        "site_actors": site.format("site_id"),
        "site_followers": "user_id = resorption.current_user_id() AND " + site.format("site_id"),
    }
    tables = list(old)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for table, qual in old.items():
            conn.execute(f"ALTER POLICY read ON resorption.{table} USING ({qual})")
        conn.execute("DROP FUNCTION resorption.site_readable(bigint)")
        assert dict(conn.execute(policies, (tables,))) != dict(db.execute(policies, (tables,)))
    upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        assert dict(conn.execute(policies, (tables,))) == dict(db.execute(policies, (tables,)))
        assert conn.execute(
            "SELECT to_regprocedure('resorption.site_readable(bigint)') IS NOT NULL"
        ).fetchone()[0]


def test_sql_files_never_redefine_an_object() -> None:
    """No DROP, no CREATE OR REPLACE, no ALTER of a table's columns or constraints in `sql/`.

    Those belong to the revisions that take an existing database to the state `sql/` shows.
    """
    redefining = re.compile(
        r"\bDROP\b|\bCREATE\s+OR\s+REPLACE\b|\bALTER\s+(TABLE|VIEW)\b(?![^;]*\bENABLE ROW LEVEL SECURITY\b)",
        re.IGNORECASE,
    )
    found = {name: m.group(0) for name, text in SQL.items() if (m := redefining.search(text))}
    assert found == {}


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    """An empty database (no extension) on the suite's server, dropped afterwards."""
    name = f"resorption_test_migrate_{os.getpid()}"
    admin_url = _with_db(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_db(server_url, name)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


VERSION_TABLE = "CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY)"


@pytest.mark.parametrize(
    "state, says",
    [
        ([VERSION_TABLE, "INSERT INTO public.alembic_version VALUES ('0012')"], ["0012", "make clean-db"]),
        ([VERSION_TABLE, "INSERT INTO public.alembic_version VALUES ('0099')"], ["0099", "plus récente"]),
        (["CREATE SCHEMA resorption"], ["aucune révision", "make clean-db"]),
    ],
    ids=["before-the-baseline", "unknown", "no-revision"],
)
def test_a_database_these_revisions_cannot_migrate_is_refused_in_french(
    scratch_url: str, state: list[str], says: list[str]
) -> None:
    """A clear French message and nothing changed, instead of alembic's stack trace."""
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for statement in state:
            conn.execute(statement)
    with pytest.raises(OutdatedSchema) as refused:
        upgrade(scratch_url)
    for words in says:
        assert words in refused.value.message
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute("SELECT to_regclass('resorption.sites')").fetchone() == (None,)


def test_revision_0044_splits_the_read_policies_by_kind_of_role(
    scratch_url: str, db: psycopg.Connection
) -> None:
    """A database of 0043 (each read policy of sites, actions and their details applied to every
    role; no nationwide policy) gets the two policies of its files on each table."""
    upgrade(scratch_url, "0043")
    policies = (
        "SELECT tablename, policyname, roles::text[], qual FROM pg_policies "
        "WHERE schemaname = 'resorption' AND cmd = 'SELECT' ORDER BY 1, 2"
    )
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        split = conn.execute(
            "SELECT tablename, policyname, roles::text[] FROM pg_policies WHERE schemaname = 'resorption' "
            "AND roles && '{resorption_scoped,resorption_nationwide}'::name[] "
            # the tables of later revisions (0046), which a database of 0043 does not have
            "AND tablename NOT LIKE 'site_blocks%'"
        ).fetchall()
        assert split  # (revision 0025 wrote four of them inline, for every role)
        for table, name, roles in split:
            if roles == ["resorption_nationwide"]:
                conn.execute(f"DROP POLICY {name} ON resorption.{table}")
            else:
                conn.execute(f"ALTER POLICY {name} ON resorption.{table} TO PUBLIC")
        assert conn.execute(policies).fetchall() != db.execute(policies).fetchall()
    upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute(policies).fetchall() == db.execute(policies).fetchall()


def test_revision_0045_reads_a_departements_journals_and_action_details_by_their_own_rows(
    scratch_url: str, db: psycopg.Connection
) -> None:
    """A database of 0044 (no département index on the histories of sites and actions, the details
    of actions and the results' histories read under the actions' policy, the finance branch of
    the journals always shown) gets the indexes, the policies and the views of its files."""
    upgrade(scratch_url, "0044")
    state = {
        "indexes": "SELECT indexdef FROM pg_indexes WHERE indexname IN "
        "('sites_history_departement_version_idx', 'actions_history_departement_id_idx') ORDER BY 1",
        "policies": "SELECT tablename, policyname, qual FROM pg_policies WHERE cmd = 'SELECT' "
        "AND tablename LIKE 'action_%' ORDER BY 1, 2",
        "views": "SELECT viewname, definition FROM pg_views WHERE viewname IN ('activity', 'action_changes') ORDER BY 1",
    }
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("DROP INDEX resorption.sites_history_departement_version_idx")
        conn.execute("DROP INDEX resorption.actions_history_departement_id_idx")
        for table in ("action_indicators_history", "action_finances_history"):
            conn.execute(
                f"ALTER POLICY {table}_read ON resorption.{table} USING ("
                + (
                    "has_table_privilege('resorption.action_finances', 'SELECT') AND "
                    if "finances" in table
                    else ""
                )
                + "EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_id))"
            )
        action = "EXISTS (SELECT 1 FROM resorption.actions a WHERE a.id = action_id)"
        nation = "(SELECT resorption.scope_is_nation('resorption.actions_scope'))"
        for table in ("action_departements", "action_organisations", "action_finances", "action_indicators"):
            conn.execute(f"ALTER POLICY read ON resorption.{table} USING ({nation} OR {action})")
        conn.execute(
            f"ALTER POLICY read ON resorption.action_sites USING (({nation} OR {action}) AND "
            "((SELECT resorption.scope_is_nation('resorption.sites_scope')) "
            "OR EXISTS (SELECT 1 FROM resorption.sites s WHERE s.id = site_id)))"
        )
        for file, view in (("170_action_results.sql", "action_changes"), ("190_activity.sql", "activity")):
            text = definition(SQL_DIR / file, f"CREATE VIEW resorption.{view} ")
            shown = "has_table_privilege('resorption.action_finances', 'SELECT')\n"
            assert shown in text
            conn.execute("CREATE OR REPLACE VIEW" + text.replace(shown, "true\n").removeprefix("CREATE VIEW"))
        before = {name: conn.execute(query).fetchall() for name, query in state.items()}
        assert all(before[name] != db.execute(query).fetchall() for name, query in state.items())
    upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        for query in state.values():
            assert conn.execute(query).fetchall() == db.execute(query).fetchall()


def test_revision_0047_indexes_the_current_version_of_each_site_and_action(
    scratch_url: str, db: psycopg.Connection
) -> None:
    """A database of 0046 (the history trigger finds a row's current version among all its
    versions) gets the partial indexes of its files, and the trigger's lookup reads them."""
    indexes = (
        "SELECT indexdef FROM pg_indexes WHERE indexname IN "
        "('sites_history_current_idx', 'actions_history_current_idx') ORDER BY 1"
    )
    upgrade(scratch_url, "0046")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("DROP INDEX resorption.sites_history_current_idx, resorption.actions_history_current_idx")
    upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute(indexes).fetchall() == db.execute(indexes).fetchall() != []
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT version_id FROM resorption.sites_history WHERE id = 1 AND upper_inf(valid)"
        ).fetchall()
        assert "sites_history_current_idx" in str(plan)


def test_revision_0048_folds_the_versions_of_the_tiles_without_changing_them(
    scratch_url: str, db: psycopg.Connection
) -> None:
    """A database of 0047 (a version counts one row per write, under a policy that reads the
    scopes per row) gets the column, the policy and the purger's function of its files; the
    rows it has stand for one write each."""
    state = {
        "policy": "SELECT qual FROM pg_policies WHERE tablename = 'collection_changes'",
        "function": "SELECT count(*) FROM pg_proc WHERE proname = 'fold_collection_changes'",
    }
    upgrade(scratch_url, "0047")
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION resorption.fold_collection_changes()")
        conn.execute("ALTER TABLE resorption.collection_changes DROP COLUMN changes")
        conn.execute(
            "ALTER POLICY read ON resorption.collection_changes USING (CASE collection "
            "WHEN 'sites' THEN resorption.in_scope('resorption.sites_scope', departement_code) "
            "WHEN 'actions' THEN resorption.in_scope('resorption.actions_scope', departement_code) ELSE true END)"
        )
        conn.execute("INSERT INTO resorption.collection_changes (collection) VALUES ('regions'), ('regions')")
    upgrade(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for query in state.values():
            assert conn.execute(query).fetchall() == db.execute(query).fetchall()
        version = "SELECT sum(changes) FROM resorption.collection_changes WHERE collection = 'regions'"
        kept = conn.execute(version).fetchone()[0]
        assert kept >= 2
        conn.execute("SELECT resorption.fold_collection_changes()")
        assert conn.execute(version).fetchone()[0] == kept
