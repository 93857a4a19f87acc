"""The transactions of `resorption.database`, as PostgreSQL sees them.

A pipelined read has no BEGIN nor COMMIT: what the pipeline sends up to its Sync is one implicit
transaction, and the prelude's settings (role, scopes, read-only) last exactly that long. A
pipelined write keeps BEGIN and COMMIT: a Python error in its block commits nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from resorption.database import get_pool, transaction
from resorption.settings import Settings

ROLE = "resorption_read"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings.from_env(database_url)


def test_a_pipelined_read_runs_under_its_prelude_then_leaves_nothing_behind(settings: Settings) -> None:
    context = {"resorption.sites_scope": "33", "resorption.username": "lecteur"}
    with transaction(settings, context=context, role=ROLE, pipeline=True) as conn:
        first = conn.execute(
            "SELECT current_user, current_setting('transaction_read_only'), "
            "current_setting('resorption.sites_scope'), now()"
        )
        second = conn.execute("SELECT current_user, now(), current_setting('resorption.username')")
    user, read_only, scope, started = first.fetchone()
    assert (user, read_only, scope) == (ROLE, "on", "33")
    # one transaction: the same now() in both statements, the settings still there
    assert second.fetchone() == (ROLE, started, "lecteur")
    with get_pool(settings).connection() as conn:  # the pool's next user finds the login role, no scope
        conn.autocommit = True
        assert conn.execute(
            "SELECT current_user, coalesce(current_setting('resorption.sites_scope', true), ''), "
            "current_setting('transaction_read_only')"
        ).fetchone() == ("resorption_app", "", "off")


def test_a_pipelined_read_cannot_write(settings: Settings) -> None:
    with (
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        transaction(settings, context={}, pipeline=True) as conn,
    ):
        conn.execute("CREATE TEMPORARY TABLE scratch (id int)")


def test_a_pipelined_write_stopped_by_python_commits_nothing(
    settings: Settings, db: psycopg.Connection
) -> None:
    """The audit of an import writes many rows in one pipelined transaction: a Python error half
    way (a generator that fails) must leave none of them."""
    marker = "transaction-interrompue"
    context = {"resorption.username": marker}
    with (
        pytest.raises(RuntimeError),
        transaction(settings, context=context, read_only=False, pipeline=True) as conn,
    ):
        conn.execute(
            "SELECT resorption.audit('read', 'sites', NULL, '{}'::text[], NULL, NULL, NULL, '{}'::jsonb)"
        )
        raise RuntimeError("interrompu")
    assert (
        db.execute("SELECT count(*) FROM resorption.audit_log WHERE username = %s", (marker,)).fetchone()[0]
        == 0
    )
