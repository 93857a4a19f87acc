"""MQTT fixtures: the embedded Mosquitto the project starts, the publisher as its own process
(`resorption publish`, killed and restarted by the tests), users with broker passwords, and a
subscriber that records what reaches it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from resorption import accounts, broker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mqtt_address() -> Iterator[broker.BrokerAddress]:
    """The embedded Mosquitto (its administrator's address), started by the project's own code;
    stopped at the end when the suite started it (a demo's broker keeps running)."""
    already = broker.is_running()
    yield broker.BrokerAddress.parse(broker.ensure_broker())
    if not already:
        broker.stop_broker()


class PublisherProcess:
    """`resorption publish` against the test database, as production runs it."""

    def __init__(self, database_url: str, public_url: str, log: Path) -> None:
        self.env = {**os.environ, "DATABASE_URL": database_url, "RESORPTION_PUBLIC_URL": public_url}
        self.env.pop("MQTT_URL", None)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; returns once it has synced the accounts and recorded its position."""
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            began = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            command = [str(Path(sys.executable).parent / "resorption"), "publish"]
            out = self.log.open("ab")
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if conn.execute(
                    "SELECT 1 FROM resorption.outbox_cursors WHERE name = 'mqtt' AND updated_at >= %s",
                    (began,),
                ).fetchone():
                    return
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("le publicateur n'a pas démarré :\n" + self.log.read_text())

    def kill(self) -> None:
        """SIGKILL: no chance to finish a batch or record its position."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    stop = kill


@pytest.fixture(scope="module")
def publisher(
    database_url: str,
    base_url: str,
    mqtt_address: broker.BrokerAddress,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PublisherProcess]:
    """The publisher, running for a module's tests."""
    process = PublisherProcess(database_url, base_url, tmp_path_factory.mktemp("publisher") / "publisher.log")
    process.start()
    yield process
    process.kill()


@dataclass
class MqttUser:
    """A user with a token, which the broker knows as their password."""

    username: str
    token: str
    departement: str | None


def make_mqtt_user(
    database_url: str,
    username: str,
    role: str,
    departement: str | None,
    address: broker.BrokerAddress | None = None,
) -> MqttUser:
    """A user created as the owner, and a token issued the normal way (accounts.issue_token).

    With `address` (and the publisher running), waits until the broker lets them in: the
    publisher enables the client once it has handled the account's events.
    """
    with psycopg.connect(database_url) as conn:
        org = conn.execute("SELECT id FROM resorption.organisations ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(
            "INSERT INTO resorption.users (username, organisation_id, role, area_level, area_code) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING",
            (username, org, role, "departement" if departement else "nation", departement),
        )
    issued = accounts.issue_token(database_url, username, label="mqtt")
    assert hashlib.sha256(issued.token.encode()).digest()  # a real token, hashed in the database
    user = MqttUser(username, issued.token, departement)
    deadline = time.monotonic() + 10
    while address is not None:
        try:
            client = broker.connect(broker.BrokerAddress(address.host, address.port, username, user.token))
        except broker.BrokerError:
            assert time.monotonic() < deadline, f"le broker refuse toujours « {username} »"
            time.sleep(0.2)
            continue
        client.disconnect()
        client.loop_stop()
        break
    return user


@dataclass
class Subscriber:
    """An MQTT client of a user, recording the messages that reach it (and when)."""

    client: mqtt.Client
    received: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    granted: dict[int, list[Any]] = field(default_factory=dict)
    # (topic, retain flag, QoS) of each message, in the order they arrived
    flags: list[tuple[str, bool, int]] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    # how many times the broker closed its connection (paho then reconnects by itself)
    disconnects: int = 0

    def subscribe(self, topic: str) -> list[Any]:
        """Subscribe with QoS 1; the broker's reason codes (SUBACK). No SUBACK (the broker cut
        the connection meanwhile, as it does when a client's access list changes) is a
        BrokerError, which the tests that wait for an access to open retry."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self.lock:
            if not self.lock.wait_for(lambda: mid in self.granted, timeout=5):
                raise broker.BrokerError(f"pas de réponse du broker à l'abonnement à {topic}")
            return self.granted[mid]

    def items(self) -> list[tuple[float, str, dict[str, Any]]]:
        """The item messages received so far (not the retained « last » of a territory)."""
        with self.lock:
            return [m for m in self.received if not m[1].endswith("/last")]

    def wait_for(self, predicate: Any, timeout: float) -> tuple[float, str, dict[str, Any]] | None:
        """The first item message matching `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for m in self.received:
                    if not m[1].endswith("/last") and predicate(m[2]):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def subscriber(address: broker.BrokerAddress, user: MqttUser) -> Subscriber:
    """A connected client of `user` (username + token)."""
    client = broker.connect(broker.BrokerAddress(address.host, address.port, user.username, user.token))
    sub = Subscriber(client)

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with sub.lock:
            sub.received.append((time.monotonic(), message.topic, json.loads(message.payload)))
            sub.flags.append((message.topic, bool(message.retain), message.qos))
            sub.lock.notify_all()

    def on_subscribe(_c: mqtt.Client, _u: Any, mid: int, codes: list[Any], _p: Any) -> None:
        with sub.lock:
            sub.granted[mid] = codes
            sub.lock.notify_all()

    def on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        with sub.lock:
            sub.disconnects += 1
            sub.lock.notify_all()

    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    return sub
