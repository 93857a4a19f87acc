"""The transactions of `resorption.database`, as PostgreSQL sees them.

A pipelined read has no BEGIN nor COMMIT: what the pipeline sends up to its Sync is one implicit
transaction, and the prelude's settings (role, scopes, read-only) last exactly that long. A
pipelined write keeps BEGIN and COMMIT: a Python error in its block commits nothing.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from resorption.database import Precheck, defer, get_pool, transaction
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


@pytest.mark.parametrize(
    ("check", "answer"),
    [
        ("SELECT current_user || ' ' || current_setting('transaction_read_only')", "resorption_app off"),
        ("SELECT 'jamais' WHERE false", None),
    ],
)
def test_a_pending_check_answers_first_then_the_prelude_applies(
    settings: Settings, check: str, answer: str | None
) -> None:
    """A pending check shares the prelude's statement: it answers as the login role, before the
    settings; with or without a row, the block then runs under the settings."""
    answers: list[Any] = []
    defer(Precheck(sql.SQL(check), (), answers.append))
    context = {"resorption.sites_scope": "33"}
    with transaction(settings, context=context, role=ROLE, pipeline=True) as conn:
        read = conn.execute(
            "SELECT current_user, current_setting('transaction_read_only'), "
            "current_setting('resorption.sites_scope')"
        )
    assert answers == [answer]
    assert read.fetchone() == (ROLE, "on", "33")


def test_a_refused_check_withholds_what_the_block_read(settings: Settings) -> None:
    class Refused(Exception):
        pass

    def refuse(answer: Any) -> None:
        raise Refused(answer)

    defer(Precheck(sql.SQL("SELECT 'révoqué'"), (), refuse))
    with pytest.raises(Refused), transaction(settings, context={}, role=ROLE, pipeline=True) as conn:
        conn.execute("SELECT 1")
