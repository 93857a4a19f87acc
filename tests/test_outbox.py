"""The outbox: one event per committed change, written by the triggers in the same transaction,
read by windows of transaction ids so that a committed event is never skipped, even when a
transaction still in flight holds a smaller id; nothing rolled back is ever read."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from resorption import outbox


@pytest.fixture
def owner(database_url: str) -> psycopg.Connection:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def _site(owner: psycopg.Connection, offset: int) -> int:
    return owner.execute(
        "SELECT id FROM resorption.sites WHERE departement_code = '33' ORDER BY id OFFSET %s LIMIT 1",
        (offset,),
    ).fetchone()[0]


def _drain(conn: psycopg.Connection, position: outbox.Position) -> tuple[list[outbox.Event], outbox.Position]:
    found: list[outbox.Event] = []
    while True:
        events, after = outbox.read(conn, position, accounts=True)
        found += events
        if after == position:
            return found, position
        position = after


def _bump(conn: psycopg.Connection, site_id: int) -> None:
    conn.execute(
        "UPDATE resorption.sites SET population_total = coalesce(population_total, 0) %% 9000 + 1 WHERE id = %s",
        (site_id,),
    )


def test_a_change_leaves_one_event_naming_its_fields_never_their_values(
    owner: psycopg.Connection, database_url: str
) -> None:
    start = outbox.start(owner)
    site_id = _site(owner, 20)
    _bump(owner, site_id)
    events, _ = _drain(owner, start)
    mine = [e for e in events if e.collection == "sites" and e.item_id == site_id]
    assert len(mine) == 1
    event = mine[0]
    assert event.operation == "update" and event.fields == ("population_total",)
    assert event.departements == ("33",) and event.open and event.version_id is not None


def test_every_source_writes_its_events(owner: psycopg.Connection) -> None:
    start = outbox.start(owner)
    site_id = _site(owner, 21)
    organisation = owner.execute("SELECT id FROM resorption.organisations ORDER BY id LIMIT 1").fetchone()[0]
    comment = owner.execute(
        "INSERT INTO resorption.site_comments (site_id, departement_code, message) VALUES (%s, '33', 'note') "
        "RETURNING id",
        (site_id,),
    ).fetchone()[0]
    owner.execute(
        "INSERT INTO resorption.site_actors (site_id, organisation_id, themes, declared_by) "
        "VALUES (%s, %s, '{health}', 'tests')",
        (site_id, organisation),
    )
    action = owner.execute(
        "SELECT action_id FROM resorption.action_departements WHERE departement_code = '33' LIMIT 1"
    ).fetchone()[0]
    owner.execute(
        "INSERT INTO resorption.action_indicators (action_id, measured_at, people) VALUES (%s, '2024-01-02', 3) "
        "ON CONFLICT (action_id, measured_at) DO UPDATE SET people = excluded.people + 1",
        (action,),
    )
    owner.execute("DELETE FROM resorption.site_comments WHERE id = %s", (comment,))
    events, _ = _drain(owner, start)
    seen = {(e.collection, e.item_id, e.operation, e.fields) for e in events}
    assert ("site_comments", comment, "create", ()) in seen
    assert ("site_comments", comment, "delete", ()) in seen
    assert ("sites", site_id, "update", ("actors",)) in seen
    assert ("actions", action, "update", ("indicators",)) in seen


def test_nothing_rolled_back_is_read(owner: psycopg.Connection, database_url: str) -> None:
    start = outbox.start(owner)
    site_id = _site(owner, 22)
    with psycopg.connect(database_url) as conn:
        _bump(conn, site_id)
        conn.rollback()
    with psycopg.connect(database_url, autocommit=True) as later:
        later.execute("SELECT 1")  # another transaction moves the horizon on
    events, _ = _drain(owner, start)
    assert [e for e in events if e.item_id == site_id] == []


def test_a_transaction_in_flight_with_a_smaller_id_is_never_skipped(
    owner: psycopg.Connection, database_url: str
) -> None:
    """B takes its transaction id first; A then writes (smaller outbox id) and stays open while
    B writes (larger outbox id) and commits. A reader that kept « the last id seen » would pass
    A's event by; the windows of transaction ids do not."""
    start = outbox.start(owner)
    a_site, b_site = _site(owner, 23), _site(owner, 24)
    with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
        b.execute("SELECT pg_current_xact_id()")  # B's transaction id comes first
        _bump(a, a_site)  # A's event: the smaller outbox id
        _bump(b, b_site)  # B's event: the larger one
        b.commit()
        seen, position = _drain(owner, start)
        assert [e.item_id for e in seen if e.item_id in (a_site, b_site)] == [b_site]
        a.commit()
    more, _ = _drain(owner, position)
    assert [e.item_id for e in more if e.item_id in (a_site, b_site)] == [a_site]
    # and the other way round: A in flight holds back B's later transaction until it ends
    with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
        start = outbox.start(owner)
        _bump(a, a_site)
        _bump(b, b_site)
        b.commit()
        seen, position = _drain(owner, start)
        assert [e for e in seen if e.item_id in (a_site, b_site)] == []
        a.commit()
    more, _ = _drain(owner, position)
    assert [e.item_id for e in more if e.item_id in (a_site, b_site)] == [a_site, b_site]


def test_the_position_round_trips_and_garbage_is_refused() -> None:
    position = outbox.Position(10, 20, 5)
    assert outbox.Position.parse(position.token) == position
    for garbage in ("", "1-2", "a-b-c", "20-10-0", "1-2-3-4", "1-2-3; DROP"):
        assert outbox.Position.parse(garbage) is None


def test_the_requests_roles_cannot_read_the_outbox(database_url: str) -> None:
    from resorption.settings import app_url

    with psycopg.connect(app_url(database_url, None)) as conn:
        for role in ("resorption_read", "resorption_write"):
            conn.execute(f"SET ROLE {role}")
            for table in ("outbox", "outbox_cursors"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT count(*) FROM resorption.{table}")
                conn.rollback()
                conn.execute(f"SET ROLE {role}")
            conn.rollback()


def test_purge_removes_old_events_every_publisher_has_passed(
    owner: psycopg.Connection, database_url: str
) -> None:
    site_id = _site(owner, 25)
    _bump(owner, site_id)
    owner.execute("UPDATE resorption.outbox SET at = at - interval '40 days' WHERE item_id = %s", (site_id,))
    position = outbox.start(owner)
    with psycopg.connect(database_url, autocommit=True) as later:
        later.execute("SELECT 1")
    outbox.save_cursor(owner, "purge-test", outbox.Position(position.until, position.until))
    try:
        done = outbox.purge(database_url, timedelta(days=30))
        assert done.events >= 1
        left = owner.execute(
            "SELECT count(*) FROM resorption.outbox WHERE item_id = %s AND at < now() - interval '30 days'",
            (site_id,),
        ).fetchone()[0]
        assert left == 0
    finally:
        owner.execute("DELETE FROM resorption.outbox_cursors WHERE name = 'purge-test'")
