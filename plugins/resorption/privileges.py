"""Database roles and privileges, derived from the catalog and the access policy.

- `resorption_app` is the application's login role. NOINHERIT: on its own it can
  read nothing; each transaction takes one of the roles below with SET LOCAL ROLE.
- `resorption_anonymous` reads the territories and the open data only.
- `resorption_read[_<group>…]` reads every non-sensitive column of sites and
  actions, plus the columns (and tables) of its sensitive groups: one role per
  combination of groups, so that a query naming a forbidden column is refused
  by PostgreSQL itself. Each combination comes twice: `resorption_read_…`, a member of
  `resorption_scoped`, and `resorption_nationwide_read_…`, a member of
  `resorption_nationwide`, for the transactions that read the whole nation: the read
  policies of each kind (sql/005_row_security.sql).

Run by the owner after every migration (`resorption db migrate` / `db setup`):
it revokes everything, then grants exactly what the policy says.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import psycopg
from psycopg import sql

from resorption.catalog import Collection
from resorption.policy import (
    ANONYMOUS_DB_ROLE,
    JOURNALS,
    NATIONWIDE_ROLE,
    PROTECTED,
    SCOPED_ROLE,
    Policy,
    reader_role,
    writer_role,
)
from resorption.settings import APP_DB_USER

SCHEMA = "resorption"
JOBS_SCHEMA = "resorption_jobs"
# The only SECURITY DEFINER functions reachable from a request: the application's login role
# calls them as itself, before any SET ROLE, to authenticate and audit. Each reads or writes
# private tables (users, tokens, sessions, failures, audit log) that no role of a request can
# touch, and returns only what its caller already proves to hold (a password's hash for the
# argon2 check in Python, a token's or a session's user) or nothing at all. The reader,
# writer and anonymous roles run none of them, nor any other (tests/test_side_paths.py).
APP_FUNCTIONS = (
    # the user of a username (its hash, checked in Python), of an OIDC subject or verified
    # e-mail, of an API token's hash
    "user_by_username(text)",
    "user_by_oidc(text, text)",
    "user_by_token(bytea)",
    # whether a token a worker remembers is still valid, and the version of its user's row
    # (nothing else: the worker already holds the token)
    "token_user_version(bytea)",
    # sign-in throttling (sql/055_sign_in_throttle.sql): the counters of an attempt, the
    # failures and successes they record
    "password_sign_in_gate(text, text, jsonb)",
    "record_password_failure(text, text, jsonb)",
    "record_password_success(text, text, text[], jsonb)",
    "record_token_failure(text, jsonb)",
    # one audit row, written as the user set in the transaction
    "audit(text, text, text, text[], text, text, text, jsonb)",
    # audit rows of reads, queued by a worker with their time and user (read_audit.py)
    "audit_reads(jsonb)",
    # browser sessions (sql/110_web_sessions.sql): open, find by the cookie's hash, close
    "open_web_session(bigint, bytea, text, integer, integer, text)",
    "user_by_session(bytea)",
    "close_web_session(bytea)",
    # site actors (sql/160_actors.sql): the directory entry of a user whose area covers a
    # site's département, to declare them actor (never a user outside that territory)
    "site_actor_user(text, text)",
    # the metrics: jobs counted by status (sql/220_operations.sql), naming no job
    "jobs_by_status()",
    # the metrics: the outbox's lag per publisher (sql/225_outbox_lag.sql), naming no event
    "outbox_lag()",
    # accounts people get and manage themselves (sql/205_accounts_lifecycle.sql): each checks
    # inside who acts (resorption.user_id, active) and, for administrators, their reach
    # (resorption.manage_scope) and what they may grant; the public ones (a request, a link,
    # a reset) are throttled inside and answer alike whatever exists
    "submit_access_request(jsonb, text, jsonb, jsonb, jsonb)",
    "access_requests_in_scope()",
    "decide_access_request(bigint, boolean, text, text, text[], text, bytea, integer, jsonb)",
    "users_in_scope()",
    "user_in_scope(bigint)",
    "update_user_in_scope(bigint, text, text[], boolean)",
    "account_link(bytea)",
    "use_account_link(bytea, text, text)",
    "request_password_reset(text, bytea, integer, jsonb, text)",
    "my_account(bytea)",
    "accept_charter(text)",
    "update_my_profile(text)",
    "create_my_token(bytea, text, text, interval)",
    "revoke_my_token(bigint)",
    "close_my_other_sessions(bytea)",
    "change_my_password(text, bytea)",
    "set_my_subscriptions(text[])",
    # real-time changes (sql/210_outbox.sql): a page of events (ids and field names) for the
    # Server-Sent Events, which filter each one by the caller's scope and rights before delivery
    "outbox_page(xid8, xid8, bigint, integer)",
    # the key that seals the streams' positions (sql/215_stream_key.sql): outbox and transaction
    # ids count every territory's changes, so an event's id never shows them in clear
    "stream_key()",
)
# Never readable by the application's roles: only through the functions above.
PRIVATE_TABLES = ("users", "api_tokens", "audit_log", "sign_in_counters", "web_sessions")
# The harvester's bookkeeping (sql/140_harvest.sql): only the owner reads it, since it
# names sites of every département.
PRIVATE_TABLES += ("site_provenance", "harvest_runs", "harvest_run_rows")
# Accounts and e-mail (sql/200_mail_outbox.sql, sql/205_accounts_lifecycle.sql).
PRIVATE_TABLES += ("mail_outbox", "access_requests", "account_links", "mail_subscriptions")
# The outbox of events names items of every département (sql/210_outbox.sql): the publisher
# reads it as the owner, the web app through outbox_page only.
PRIVATE_TABLES += ("outbox", "outbox_cursors", "stream_key")
# Open data (sql/070_opendata.sql): the live computation over every site, and the snapshot it
# fills once a day. Requests read the published views opendata_departements and
# opendata_regions only: no caller can make the database compute the figures.
PRIVATE_TABLES += ("opendata_figures", "opendata_snapshot")


class Reader(NamedTuple):
    """What a reader role reads: the sensitive groups, under which kind of read policies."""

    groups: frozenset[str]
    nationwide: bool


def reader_roles(policy: Policy) -> dict[str, Reader]:
    """Every reader role, by name: each combination of sensitive groups, scoped and nationwide."""
    groups = sorted(policy.sensitive_groups)
    combos = [frozenset(c) for n in range(len(groups) + 1) for c in itertools.combinations(groups, n)]
    return {reader_role(c, n): Reader(c, n) for n in (False, True) for c in combos}


def sensitive_columns(catalog: Mapping[str, Collection]) -> dict[str, dict[str, str]]:
    """For each table, its sensitive columns and their group (from the catalog).

    A history table has the columns of its live table, hidden the same way.
    """
    found: dict[str, dict[str, str]] = {}
    for c in catalog.values():
        for table in _table_names(c):
            for f in c.fields.values():
                if f.group.sensitive and not f.sql_text:
                    found.setdefault(table, {})[f.name] = f.group.sensitive
    return found


def _table_names(collection: Collection) -> list[str]:
    """The unqualified tables of a collection: its own, and its history table if it keeps one."""
    return [t.split(".")[-1] for t in (collection.table, collection.history_table) if t]


def _create_role(name: str, login: bool, password: str | None) -> sql.Composable:
    options = sql.SQL(
        "LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS" if login else "NOLOGIN"
    )
    create = sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), options)
    # Roles belong to the cluster: another database may have created it meanwhile.
    block = sql.SQL(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN {create}; END IF; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    ).format(name=sql.Literal(name), create=create)
    statements = [block]
    if login:
        statements.append(
            sql.SQL("ALTER ROLE {} {} {}").format(
                sql.Identifier(name),
                options,
                sql.SQL("PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL(""),
            )
        )
    return sql.SQL("; ").join(statements)


def create_role_kinds(database_url: str) -> None:
    """Create the cluster's two kinds of transaction role, which the read policies name: before
    any revision runs (`resorption.migrate.upgrade`), and before a backup is restored (on a new
    cluster, they do not exist)."""
    with psycopg.connect(database_url) as conn:
        for kind in (NATIONWIDE_ROLE, SCOPED_ROLE):
            conn.execute(_create_role(kind, False, None))


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (SCHEMA, table),
    ).fetchall()
    return [r[0] for r in rows]


def _tables(conn: psycopg.Connection, kinds: Iterable[str]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = ANY(%s) ORDER BY 1",
        (SCHEMA, list(kinds)),
    ).fetchall()
    return [r[0] for r in rows]


def privilege_statements(
    conn: psycopg.Connection, catalog: Mapping[str, Collection], policy: Policy, app_password: str | None
) -> list[sql.Composable]:
    """The statements that make the database's privileges match the policy."""
    readers = reader_roles(policy)
    everyone = [ANONYMOUS_DB_ROLE, *readers]
    statements: list[sql.Composable] = [_create_role(APP_DB_USER, True, app_password)]
    statements += [_create_role(name, False, None) for name in everyone]
    schema = sql.Identifier(SCHEMA)
    ids = {name: sql.Identifier(name) for name in [APP_DB_USER, *everyone]}
    for name in everyone:
        statements.append(sql.SQL("GRANT {} TO {}").format(ids[name], ids[APP_DB_USER]))
    # Each reader is of one kind: the read policies it gets (the roles of the kinds exist:
    # resorption.migrate.upgrade).
    for name, reader in readers.items():
        kind = NATIONWIDE_ROLE if reader.nationwide else SCOPED_ROLE
        statements.append(sql.SQL("GRANT {} TO {}").format(sql.Identifier(kind), ids[name]))
    tables = _tables(conn, ["r", "v", "m", "p"])
    for name in [APP_DB_USER, *everyone, "public"]:
        grantee = sql.SQL("PUBLIC") if name == "public" else ids[name]
        statements.append(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, grantee))
        if name != "public":
            statements.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, grantee))
    for function in APP_FUNCTIONS:
        statements.append(
            sql.SQL("GRANT EXECUTE ON FUNCTION {}.{} TO {}").format(
                schema, sql.SQL(function), ids[APP_DB_USER]
            )
        )

    # Readiness (/pret) compares the schema's revision with the code's.
    if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is not None:
        statements.append(sql.SQL("GRANT SELECT ON public.alembic_version TO {}").format(ids[APP_DB_USER]))

    # The jobs of OGC API Processes: the login role itself keeps them (resorption.processes.jobs).
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (JOBS_SCHEMA,)).fetchone():
        jobs = sql.Identifier(JOBS_SCHEMA)
        statements += [
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(jobs, ids[APP_DB_USER]),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                jobs, ids[APP_DB_USER]
            ),
        ]

    protected_tables = {t for c in PROTECTED if c in catalog for t in _table_names(catalog[c])}
    by_table = sensitive_columns(catalog)
    group_tables = {t: g for g, ts in policy.sensitive_tables.items() for t in ts}
    public_tables = {c.table.split(".")[-1] for c in catalog.values() if c.id not in PROTECTED}
    public_tables.add("organisations")
    # Versions of the vector tiles (sql/120_tiles.sql): its row-level security hides those of
    # sites and actions from callers who may not read them.
    public_tables.add("collection_changes")
    for table in tables:
        if table in PRIVATE_TABLES:
            continue
        qualified = sql.Identifier(SCHEMA, table)
        if table in public_tables:
            grantees = sql.SQL(", ").join(ids[n] for n in everyone)
            statements.append(sql.SQL("GRANT SELECT ON {} TO {}").format(qualified, grantees))
            continue
        for role, (groups, _) in readers.items():
            if table in group_tables and group_tables[table] not in groups:
                continue
            hidden = {col for col, g in by_table.get(table, {}).items() if g not in groups}
            if table in protected_tables or hidden:
                columns = [c for c in _columns(conn, table) if c not in hidden]
                statements.append(
                    sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                        sql.SQL(", ").join(map(sql.Identifier, columns)), qualified, ids[role]
                    )
                )
            else:
                statements.append(sql.SQL("GRANT SELECT ON {} TO {}").format(qualified, ids[role]))
    return statements


def writable_columns(collection: Collection, groups: frozenset[str]) -> list[str]:
    """The columns of `collection` a writer reading `groups` may set (from the catalog)."""
    columns = [
        f.name
        for f in collection.fields.values()
        if not f.read_only
        and not f.sql_text
        and f.name != collection.id_field
        and (f.group.sensitive is None or f.group.sensitive in groups)
    ]
    return [*columns, collection.geometry_column]


def write_privilege_statements(catalog: Mapping[str, Collection], policy: Policy) -> list[sql.Composable]:
    """The write roles: one per reader role.

    `resorption_[nationwide_]write[_<group>…]` reads what `resorption_[nationwide_]read[_<group>…]`
    reads (it is a member), inserts and updates the catalog's writable columns of sites and
    actions that are not sensitive or belong to its groups, and deletes rows; row-level security
    (sql/030_sites.sql, sql/040_actions.sql) decides where.
    """
    statements: list[sql.Composable] = []
    schema = sql.Identifier(SCHEMA)
    app = sql.Identifier(APP_DB_USER)
    for groups, nationwide in reader_roles(policy).values():
        role = sql.Identifier(writer_role(groups, nationwide))
        statements += [
            _create_role(writer_role(groups, nationwide), False, None),
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(reader_role(groups, nationwide)), role),
            sql.SQL("GRANT {} TO {}").format(role, app),
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, role),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role),
        ]
        # sites and actions (not their changelog), and their journals (sql/150_journal.sql)
        for collection_id in sorted({*PROTECTED.values(), *(j for j in JOURNALS if j in catalog)}):
            collection = catalog[collection_id]
            table = sql.Identifier(*collection.table.split("."))
            columns = sql.SQL(", ").join(map(sql.Identifier, writable_columns(collection, groups)))
            statements += [
                sql.SQL("GRANT INSERT ({}) ON {} TO {}").format(columns, table, role),
                sql.SQL("GRANT UPDATE ({}, updated_at) ON {} TO {}").format(columns, table, role),
                sql.SQL("GRANT DELETE ON {} TO {}").format(table, role),
            ]
            if collection_id == "sites":
                # « Toujours d'actualité » (writing.Writer.confirm): read-only in the catalog, so
                # no client sets it, but the write path stamps it where the caller may write.
                statements.append(sql.SQL("GRANT UPDATE (confirmed_at) ON {} TO {}").format(table, role))
        # Closing a site (process close-site) writes its solutions; row-level security says where.
        statements.append(
            sql.SQL("GRANT INSERT, DELETE ON {} TO {}").format(
                sql.Identifier(SCHEMA, "site_closing_solutions"), role
            )
        )
        # Actors and followers of sites (sql/160_actors.sql): row-level security says who and where.
        statements.append(
            sql.SQL("GRANT INSERT, UPDATE (themes, updated_at), DELETE ON {} TO {}").format(
                sql.Identifier(SCHEMA, "site_actors"), role
            )
        )
        statements.append(
            sql.SQL("GRANT INSERT, DELETE ON {} TO {}").format(sql.Identifier(SCHEMA, "site_followers"), role)
        )
        # Attachments (sql/180_attachments.sql): added and deleted, never changed; the write
        # guard sets the uploader and the département, row-level security says who and where.
        statements.append(
            sql.SQL(
                "GRANT INSERT (site_id, site_comment_id, action_comment_id, filename, media_type, size, "
                "sha256, content), DELETE ON {} TO {}"
            ).format(sql.Identifier(SCHEMA, "attachments"), role)
        )
        # The trigger copying an action's main département runs as the writer.
        statements.append(
            sql.SQL("GRANT INSERT ON {} TO {}").format(sql.Identifier(SCHEMA, "action_departements"), role)
        )
        # The results of an action (processes record-action-indicators and -finances): its
        # indicator snapshots for every writer, its finances for the writers who read them;
        # row-level security (sql/040_actions.sql) says where.
        statements.append(
            sql.SQL("GRANT INSERT, UPDATE ON {} TO {}").format(
                sql.Identifier(SCHEMA, "action_indicators"), role
            )
        )
        if all(
            group in groups
            for group, tables in policy.sensitive_tables.items()
            if "action_finances" in tables
        ):
            statements.append(
                sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(
                    sql.Identifier(SCHEMA, "action_finances"), role
                )
            )
    return statements


def sync_privileges(
    database_url: str, catalog: Mapping[str, Collection], policy: Policy, app_password: str | None = None
) -> None:
    """Apply the policy's roles and privileges, as the owner, in one transaction."""
    with psycopg.connect(database_url) as conn:
        # Concurrent syncs (parallel test sessions) would race on the cluster-wide roles.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('resorption.sync_privileges'))")
        for statement in privilege_statements(conn, catalog, policy, app_password):
            conn.execute(statement)
        for statement in write_privilege_statements(catalog, policy):
            conn.execute(statement)
