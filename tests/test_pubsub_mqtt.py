"""Real-time changes over MQTT: real clients (paho-mqtt) on the embedded Mosquitto, the
publisher as its own process, edits through the API or straight in the database."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from resorption import accounts, broker
from tests.fix_mqtt import MqttUser, PublisherProcess, Subscriber, make_mqtt_user, subscriber
from tests.fix_users import TestUser

GIRONDE = "resorption/v1/sites/departement/33/#"
SEINE_SAINT_DENIS = "resorption/v1/sites/departement/93/#"


@pytest.fixture(scope="module")
def gironde(database_url: str, publisher: PublisherProcess, mqtt_address: broker.BrokerAddress) -> MqttUser:
    return make_mqtt_user(database_url, "mqtt-operateur-33", "operator", "33", mqtt_address)


@pytest.fixture(scope="module")
def seine_saint_denis(
    database_url: str, publisher: PublisherProcess, mqtt_address: broker.BrokerAddress
) -> MqttUser:
    return make_mqtt_user(database_url, "mqtt-operateur-93", "operator", "93", mqtt_address)


@pytest.fixture
def subscribers() -> Iterator[list[Subscriber]]:
    made: list[Subscriber] = []
    yield made
    for s in made:
        s.close()


def _site_in(database_url: str, departement: str, offset: int = 0) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT id FROM resorption.sites WHERE departement_code = %s AND closed_at IS NULL "
            "ORDER BY id OFFSET %s LIMIT 1",
            (departement, offset),
        ).fetchone()[0]


def _patch(base_url: str, user: TestUser, site_id: int, properties: dict) -> float:
    url = f"{base_url}/collections/sites/items/{site_id}"
    etag = requests.get(url, headers=user.headers, timeout=60).headers["ETag"]
    r = requests.patch(
        url, json={"properties": properties}, headers={"If-Match": etag, **user.headers}, timeout=60
    )
    assert r.status_code in (200, 204), r.text
    return time.monotonic()


def test_an_edit_reaches_a_subscriber_of_its_departement_within_a_second(
    database_url: str,
    base_url: str,
    users: dict[str, TestUser],
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    gironde: MqttUser,
    seine_saint_denis: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    ours = subscriber(mqtt_address, gironde)
    theirs = subscriber(mqtt_address, seine_saint_denis)
    subscribers += [ours, theirs]
    assert [c.is_failure for c in ours.subscribe(GIRONDE)] == [False]
    assert [c.is_failure for c in theirs.subscribe(SEINE_SAINT_DENIS)] == [False]
    site_id = _site_in(database_url, "33")
    population = int(time.time()) % 5000 + 10
    done = _patch(base_url, users["correspondent-departement-33"], site_id, {"population_total": population})
    found = ours.wait_for(lambda m: m["item"] == site_id and "population_total" in m["fields"], 5)
    assert found is not None
    arrived, topic, body = found
    assert arrived - done < 1.0
    assert topic == f"resorption/v1/sites/departement/33/{site_id}"
    assert body["operation"] == "update" and body["departement"] == "33"
    # notify, then fetch: ids, names and links, no value
    assert str(population) not in str(body)
    assert body["links"][0]["href"].endswith(f"/collections/sites/items/{site_id}")
    assert any(link["rel"] == "version-history" for link in body["links"])
    time.sleep(0.5)
    assert [m for m in theirs.items() if m[2]["item"] == site_id] == []


def test_a_subscriber_of_another_departement_is_refused_the_subscription(
    mqtt_address: broker.BrokerAddress,
    publisher: PublisherProcess,
    seine_saint_denis: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    theirs = subscriber(mqtt_address, seine_saint_denis)
    subscribers.append(theirs)
    for topic in (GIRONDE, "resorption/#", "resorption/v1/+/departement/33/#", "#"):
        codes = theirs.subscribe(topic)
        assert [c.is_failure for c in codes] == [True], topic
        assert str(codes[0]) == "Not authorized"


def test_a_sensitive_field_is_never_named_and_a_restricted_message_never_published(
    database_url: str,
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    gironde: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    ours = subscriber(mqtt_address, gironde)
    subscribers.append(ours)
    ours.subscribe(GIRONDE)
    ours.subscribe("resorption/v1/site_comments/departement/33/#")
    site_id = _site_in(database_url, "33", 1)
    with psycopg.connect(database_url) as conn:
        sensitive = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'resorption' "
            "AND table_name = 'sites' AND column_name = 'justice_procedure'"
        ).fetchone()
        assert sensitive is not None
        conn.execute(
            "UPDATE resorption.sites SET justice_procedure = NOT coalesce(justice_procedure, false) "
            "WHERE id = %s",
            (site_id,),
        )
        restricted = conn.execute(
            "INSERT INTO resorption.site_comments (site_id, departement_code, message, visibility, audience_users) "
            "VALUES (%s, '33', 'réservé', 'chosen', '{someone}') RETURNING id",
            (site_id,),
        ).fetchone()[0]
        conn.execute(
            "UPDATE resorption.sites SET population_total = coalesce(population_total, 0) %% 9000 + 1 "
            "WHERE id = %s",
            (site_id,),
        )
    named = ours.wait_for(lambda m: m["item"] == site_id and "population_total" in m["fields"], 5)
    assert named is not None  # the later, visible change arrived: the earlier ones were handled
    everything = ours.items()
    assert not any("justice_procedure" in m[2]["fields"] for m in everything)
    assert not any(m[2]["collection"] == "site_comments" and m[2]["item"] == restricted for m in everything)


def test_a_deactivated_user_is_disconnected_and_refused(
    database_url: str, publisher: PublisherProcess, mqtt_address: broker.BrokerAddress
) -> None:
    user = make_mqtt_user(database_url, "mqtt-bientot-parti-33", "operator", "33")
    deadline = time.monotonic() + 5
    while True:  # the publisher syncs the new account from its outbox event
        try:
            s = subscriber(mqtt_address, user)
            if not s.subscribe(GIRONDE)[0].is_failure:
                break
            s.close()
        except broker.BrokerError:
            pass
        assert time.monotonic() < deadline, "le compte n'a jamais pu s'abonner"
        time.sleep(0.2)
    accounts.deactivate_user(database_url, user.username)
    deadline = time.monotonic() + 5
    while s.client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not s.client.is_connected()
    s.client.loop_stop()
    with pytest.raises(broker.BrokerError, match="refuse la connexion"):
        subscriber(mqtt_address, user)


def _edit_many(database_url: str, site_ids: list[int], rounds: int, per_transaction: int = 1) -> list[int]:
    """`rounds` edits of each site, straight in the database; the outbox ids they committed."""
    with psycopg.connect(database_url) as conn:
        first = conn.execute("SELECT coalesce(max(id), 0) FROM resorption.outbox").fetchone()[0]
        conn.commit()
        for r in range(rounds):
            for site_id in site_ids:
                conn.execute(
                    "UPDATE resorption.sites SET population_total = coalesce(population_total, 0) %% 9000 + 1 "
                    "WHERE id = %s",
                    (site_id,),
                )
            if r % per_transaction == 0:
                conn.commit()
        conn.commit()
        return [
            row[0]
            for row in conn.execute(
                "SELECT id FROM resorption.outbox WHERE id > %s AND collection = 'sites' "
                "AND item_id = ANY(%s) ORDER BY id",
                (first, site_ids),
            )
        ]


def test_a_publisher_killed_mid_stream_and_restarted_delivers_every_committed_event(
    database_url: str,
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    gironde: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    ours = subscriber(mqtt_address, gironde)
    subscribers.append(ours)
    ours.subscribe(GIRONDE)
    site_ids = [_site_in(database_url, "33", n) for n in range(2, 7)]
    committed: list[int] = []
    writer = threading.Thread(target=lambda: committed.extend(_edit_many(database_url, site_ids, 80)))
    writer.start()
    time.sleep(0.3)
    publisher.kill()  # in the middle of the stream
    time.sleep(0.5)
    publisher.start()
    writer.join()
    assert len(committed) == 400
    got: set[int] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not set(committed) <= got:
        got = {int(m[2]["id"]) for m in ours.items()}
        time.sleep(0.1)
    assert set(committed) - got == set()  # every one, at least once


def test_a_burst_of_a_thousand_edits_arrives_in_order_per_item(
    database_url: str,
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    gironde: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    ours = subscriber(mqtt_address, gironde)
    subscribers.append(ours)
    ours.subscribe(GIRONDE)
    site_ids = [_site_in(database_url, "33", n) for n in range(10, 20)]
    committed = _edit_many(database_url, site_ids, 100)
    assert len(committed) == 1000
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = [m[2] for m in ours.items() if int(m[2]["id"]) in set(committed)]
        if len({g["id"] for g in got}) == 1000:
            break
        time.sleep(0.1)
    by_item: dict[int, list[int]] = defaultdict(list)
    for body in got:
        by_item[body["item"]].append(int(body["id"]))
    assert sum(len(v) for v in by_item.values()) == 1000
    for ids in by_item.values():
        assert ids == sorted(ids)


def _connects(address: broker.BrokerAddress, username: str, token: str) -> bool:
    try:
        client = broker.connect(broker.BrokerAddress(address.host, address.port, username, token))
    except broker.BrokerError:
        return False
    client.disconnect()
    client.loop_stop()
    return True


def _eventually(check: Any, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_revoking_the_token_that_is_the_password_shuts_the_broker_even_with_another_token(
    database_url: str, publisher: PublisherProcess, mqtt_address: broker.BrokerAddress
) -> None:
    """The broker knows one password per user, their newest token: revoked, it must stop
    opening the broker even though an older token of theirs is still live (that one never
    was the password); a new token opens it again."""
    older = make_mqtt_user(database_url, "mqtt-deux-jetons-33", "operator", "33", mqtt_address)
    newest = accounts.issue_token(database_url, older.username, label="mqtt-2")
    assert _eventually(lambda: _connects(mqtt_address, older.username, newest.token))
    assert not _connects(mqtt_address, older.username, older.token)  # no longer the password
    connected = subscriber(mqtt_address, MqttUser(older.username, newest.token, "33"))
    try:
        accounts.revoke_token(database_url, str(newest.info.id))
        assert _eventually(lambda: not connected.client.is_connected())
    finally:
        connected.close()
    assert not _connects(mqtt_address, older.username, newest.token)
    assert not _connects(mqtt_address, older.username, older.token)
    third = accounts.issue_token(database_url, older.username, label="mqtt-3")
    assert _eventually(lambda: _connects(mqtt_address, older.username, third.token))


def test_a_user_moved_to_another_departement_loses_the_old_one_at_once(
    database_url: str,
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    subscribers: list[Subscriber],
) -> None:
    """A change of a user's territory (any path: the trigger on users) re-derives their access
    list: the open connection is cut, and the new one may subscribe only to the new territory."""
    user = make_mqtt_user(database_url, "mqtt-demenage-33", "operator", "33", mqtt_address)
    before = subscriber(mqtt_address, user)
    subscribers.append(before)
    assert not before.subscribe(GIRONDE)[0].is_failure
    cuts = before.disconnects
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE resorption.users SET area_code = '93' WHERE username = %s", (user.username,))
    # the broker cuts it (paho reconnects by itself a second later: the cut is counted)
    assert _eventually(lambda: before.disconnects > cuts, timeout=15)
    after = subscriber(mqtt_address, user)
    subscribers.append(after)
    assert after.subscribe(GIRONDE)[0].is_failure
    assert not after.subscribe(SEINE_SAINT_DENIS)[0].is_failure


def test_the_last_change_of_a_territory_is_retained_and_every_message_is_qos_1(
    database_url: str,
    base_url: str,
    users: dict[str, TestUser],
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    gironde: MqttUser,
    seine_saint_denis: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    """A subscriber arriving after a change gets the territory's last change at once (retained),
    QoS 1; another territory's subscriber cannot ask for it."""
    live = subscriber(mqtt_address, gironde)
    subscribers.append(live)
    live.subscribe(GIRONDE)
    site_id = _site_in(database_url, "33", 7)
    _patch(
        base_url,
        users["correspondent-departement-33"],
        site_id,
        {"population_total": int(time.time()) % 5000 + 7},
    )
    assert live.wait_for(lambda m: m["item"] == site_id, 5) is not None
    assert all(qos == 1 for _, _, qos in live.flags)
    latecomer = subscriber(mqtt_address, gironde)
    subscribers.append(latecomer)
    last = "resorption/v1/sites/departement/33/last"
    assert not latecomer.subscribe(last)[0].is_failure
    assert _eventually(lambda: any(t == last and retained for t, retained, _ in latecomer.flags))
    body = next(m[2] for m in latecomer.received if m[1] == last)
    assert body["item"] == site_id and body["departement"] == "33"
    assert [qos for t, _, qos in latecomer.flags if t == last] == [1]
    outsider = subscriber(mqtt_address, seine_saint_denis)
    subscribers.append(outsider)
    assert outsider.subscribe(last)[0].is_failure


def test_a_reader_of_justice_hears_of_justice_changes_in_its_own_tier_and_nobody_else_does(
    database_url: str,
    publisher: PublisherProcess,
    mqtt_address: broker.BrokerAddress,
    gironde: MqttUser,
    subscribers: list[Subscriber],
) -> None:
    """One broker message goes to every subscriber of its topic, whatever their role: the
    readers of sensitive groups have topics of their own (`resorption/v1/groupes/<groupes>/…`),
    open to exactly those who read these groups, whose messages name those fields too."""
    user = make_mqtt_user(database_url, "mqtt-justice-33", "operator", "33", mqtt_address)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.users SET options = '{access_justice}' WHERE username = %s", (user.username,)
        )
    tier = "resorption/v1/groupes/justice/sites/departement/33/#"
    reader: Subscriber | None = None

    def allowed() -> bool:
        nonlocal reader
        try:
            candidate = subscriber(mqtt_address, user)
        except broker.BrokerError:
            return False  # cut while its access list changes
        subscribers.append(candidate)
        reader = candidate
        try:
            return not candidate.subscribe(tier)[0].is_failure
        except broker.BrokerError:
            return False  # cut between its connection and its subscription, as its access list changed

    assert _eventually(allowed, timeout=20)  # a subscription cut by the change waits 5 s for its SUBACK
    assert reader is not None
    plain = subscriber(mqtt_address, gironde)
    subscribers.append(plain)
    plain.subscribe(GIRONDE)
    for forbidden in (tier, "resorption/v1/groupes/#", "resorption/v1/groupes/justice,owner/sites/#"):
        assert plain.subscribe(forbidden)[0].is_failure, forbidden
    assert reader.subscribe("resorption/v1/groupes/justice,owner/sites/departement/33/#")[0].is_failure
    site_id = _site_in(database_url, "33", 8)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.sites SET justice_procedure = NOT coalesce(justice_procedure, false) "
            "WHERE id = %s",
            (site_id,),
        )
        conn.commit()
        conn.execute(
            "UPDATE resorption.sites SET population_total = coalesce(population_total, 0) %% 9000 + 1 "
            "WHERE id = %s",
            (site_id,),
        )
    heard = reader.wait_for(lambda m: m["item"] == site_id and m["fields"] == ["justice_procedure"], 5)
    assert heard is not None and heard[1] == f"resorption/v1/groupes/justice/sites/departement/33/{site_id}"
    assert reader.wait_for(lambda m: m["item"] == site_id and m["fields"] == ["population_total"], 5)
    assert plain.wait_for(lambda m: m["item"] == site_id and "population_total" in m["fields"], 5)
    assert not any("justice_procedure" in m[2]["fields"] for m in plain.items())


def test_a_token_that_expires_closes_the_broker_without_any_write(
    database_url: str, publisher: PublisherProcess, mqtt_address: broker.BrokerAddress
) -> None:
    """An expiry writes nothing, hence no event: the publisher checks the account again when its
    first live token expires, and the broker then refuses the token."""
    user = make_mqtt_user(database_url, "mqtt-expire-33", "operator", "33", mqtt_address)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE resorption.api_tokens SET expires_at = now() + interval '3 seconds' "
            "WHERE user_id = (SELECT id FROM resorption.users WHERE username = %s)",
            (user.username,),
        )
    time.sleep(1)  # the publisher handled the token's event: still live, still open
    assert _connects(mqtt_address, user.username, user.token)
    assert _eventually(lambda: not _connects(mqtt_address, user.username, user.token), timeout=10)


def test_a_token_made_on_my_account_page_opens_the_broker(
    database_url: str, base_url: str, publisher: PublisherProcess, mqtt_address: broker.BrokerAddress
) -> None:
    """The other path that issues tokens (« Mon compte », lifecycle.create_token) gives the
    broker the new token too, and the broker lets its owner in."""
    user = make_mqtt_user(database_url, "mqtt-page-compte-33", "operator", "33", mqtt_address)
    password = "Cabane-Mqtt-2027?"
    accounts.set_password(database_url, user.username, password)
    made = requests.post(
        f"{base_url}/mon-compte/jetons",
        data={"libelle": "SIG départemental", "duree": "30"},
        auth=(user.username, password),
        timeout=60,
    )
    assert made.status_code == 200, made.text[:500]
    token = re.search(r'id="nouveau-jeton" readonly value="(rsp_[^"]+)"', made.text).group(1)
    assert _eventually(lambda: _connects(mqtt_address, user.username, token))
    assert not _connects(mqtt_address, user.username, user.token)  # revoked with the new password
