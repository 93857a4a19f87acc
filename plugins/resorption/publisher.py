"""The publisher: the outbox's events to the MQTT broker, and the broker's access lists kept in
step with the accounts.

One process (`resorption publish`). It reads the outbox as the owner, by windows of
transaction ids (outbox.py), publishes each event with QoS 1 and waits for the broker's
acknowledgements before recording its position in `outbox_cursors`: killed at any moment, it
resumes at the last position it confirmed, so every committed event reaches the broker at
least once (a subscriber may see an event twice after a restart; its `id` tells). It sleeps on
LISTEN: the triggers' NOTIFY, delivered at commit, wakes it at once.

Topics: ``resorption/v1/<collection>/departement/<code>/<id>`` (one message per département of
the item), and a retained copy of the last change of each territory in
``resorption/v1/<collection>/departement/<code>/last``; the same under
``resorption/v1/groupes/<groups>/`` for the readers of sensitive groups, whose messages name
the changed fields of these groups too (notifications.py) — for the tiers some account reads
(the retained last change of a tier appears with its first event once someone reads it).

Account events (users and API tokens changed by any path) re-derive the user's client and role
in the broker's dynamic security (broker.py): enabled only while active and while the token that
is their broker password is live, allowed to subscribe to the topics of the collections and
départements the policy lets them read. Every account is checked again at start, every
RESYNC_SECONDS, and when a live token expires (an expiry writes nothing, hence no event).

The daily work of the open data rides on the same loop, since this process runs all the time
as the owner: every OPEN_DATA_CHECK_SECONDS it looks whether the snapshot of the open-data
figures is older than today in Paris, and refreshes it then (open_figures.py; events wait
meanwhile: about 8 s at 1,000,000 sites, once a day, just after midnight).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from psycopg.rows import dict_row

from resorption import broker, notifications, open_figures, outbox, statements
from resorption.authentication import principal_from_row
from resorption.catalog import Collection, load_catalog
from resorption.policy import Policy, load_policy
from resorption.settings import Settings

SQL = statements.load("publisher")
CURSOR = "mqtt"
# Tokens expire without any write: every account is checked again this often.
RESYNC_SECONDS = 600
# How often the open-data snapshot's day is compared with today in Paris (one cheap query).
OPEN_DATA_CHECK_SECONDS = 60
log = logging.getLogger("resorption.publisher")


def topic(collection: str, departement: str, item: int | str, tier: str = "") -> str:
    """The topic of an item's events in one of its départements, for the readers of `tier`
    (notifications.tiers; '' for the readers of no sensitive group)."""
    return f"{broker.tier_root(tier)}/{collection}/departement/{departement}/{item}"


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to publish."""

    topic: str
    body: dict[str, Any]
    retain: bool = False


def messages(
    event: outbox.Event,
    catalog: Mapping[str, Collection],
    policy: Policy,
    public_url: str,
    in_use: Mapping[str, Set[str]] | None = None,
) -> list[Message]:
    """The messages of a data event, per tier of readers (those `in_use` when given, and the
    tier of no sensitive group): none when not everyone reading its territory may see it; none
    in a tier that reads none of the changed fields."""
    collection = catalog.get(event.collection)
    if collection is None or not event.open:
        return []
    found = []
    for tier in notifications.tiers(policy, collection):
        if tier and in_use is not None and tier not in in_use.get(event.collection, ()):
            continue
        groups = frozenset(tier.split(",")) if tier else frozenset()
        fields = notifications.shown_fields(event, notifications.names_for(policy, collection, groups))
        if fields is None:
            continue
        for code in event.departements:
            body = notifications.payload(event, fields, public_url, code)
            found.append(Message(topic(event.collection, code, event.item_id, tier), body))
            found.append(Message(topic(event.collection, code, "last", tier), body, retain=True))
    return found


class Publisher:
    """Reads the outbox, publishes to the broker, syncs the broker's accounts."""

    def __init__(self, settings: Settings, broker_url: str, name: str = CURSOR) -> None:
        self.settings = settings
        self.address = broker.BrokerAddress.parse(broker_url)
        self.name = name
        self.policy: Policy = load_policy(settings.policy_path, settings.collections_dir)
        self.catalog = load_catalog(settings.collections_dir)
        self.usernames: dict[int, str] = {}
        # the tiers (notifications.tiers) some account reads, per collection: only these are
        # published (a tier nobody reads would only cost messages)
        self.in_use: dict[str, set[str]] = {}
        # when the first live token expires: its user is checked again then
        self.next_expiry: datetime | None = None
        self.published = 0

    # -- accounts ------------------------------------------------------------------------

    def _account(self, row: dict[str, Any]) -> broker.Account:
        principal = principal_from_row(row, "mqtt")
        scopes: dict[str, frozenset[str] | None] = {}
        tiers: dict[str, str] = {}
        for collection_id in outbox.COLLECTIONS:
            collection = self.catalog.get(collection_id)
            if collection is None or not self.policy.may_read(principal, collection):
                continue
            scope = self.policy.scope(principal, collection_id)
            if scope.is_empty:
                continue
            scopes[collection_id] = None if scope.nation else scope.departements
            tiers[collection_id] = notifications.tier(self.policy, principal, collection)
            self.in_use.setdefault(collection_id, set()).add(tiers[collection_id])
        return broker.Account(
            principal.username,
            bool(row["active"]),
            frozenset(row["live_tokens"]),
            tuple(broker.subscribe_topics(scopes, tiers)),
        )

    def sync_accounts(
        self, conn: psycopg.Connection[Any], dynsec: broker.DynamicSecurity, user_id: int | None
    ) -> None:
        """Make the broker's clients match the accounts (all of them, or one user's)."""
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(SQL.accounts, {"user_id": user_id}).fetchall()
        if user_id is None:
            self.next_expiry = None
            self.in_use = {}
        for row in rows:
            self.usernames[row["user_id"]] = row["username"]
            broker.sync_account(dynsec, self._account(row))
            if row["next_expiry"] is not None:
                self.next_expiry = min(filter(None, (self.next_expiry, row["next_expiry"])))
        if user_id is not None and not rows and user_id in self.usernames:
            broker.remove_account(dynsec, self.usernames.pop(user_id))

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, on_batch: Callable[[int], None] | None = None) -> None:
        """Publish until `stop` is set (forever without one)."""
        stop = stop or threading.Event()
        client = broker.connect(self.address, client_id=f"resorption-publisher-{self.name}")
        try:
            dynsec = broker.DynamicSecurity(client)
            if broker.ensure_publisher_acl(dynsec, self.address.username):
                raise broker.BrokerError("droit de publication ajouté au broker : reconnexion")
            with (
                outbox.owner_connection(self.settings.database_url, autocommit=True) as conn,
                outbox.owner_connection(self.settings.database_url, autocommit=True) as listener,
            ):
                listener.execute(outbox.SQL.listen)
                self.sync_accounts(conn, dynsec, None)
                position = outbox.load_cursor(conn, self.name)
                outbox.save_cursor(conn, self.name, position)
                synced = time.monotonic()
                checked: float | None = None
                while not stop.is_set():
                    if checked is None or time.monotonic() - checked > OPEN_DATA_CHECK_SECONDS:
                        open_figures.refresh_if_stale(conn)
                        checked = time.monotonic()
                    if time.monotonic() - synced > RESYNC_SECONDS or self._token_expired():
                        self.sync_accounts(conn, dynsec, None)
                        synced = time.monotonic()
                    events, after = outbox.read(conn, position, accounts=True)
                    if events:
                        self._publish(client, conn, dynsec, events)
                    if after != position:
                        outbox.save_cursor(conn, self.name, after)
                        position = after
                        if on_batch:
                            on_batch(len(events))
                    if not events:
                        # Woken by a commit's NOTIFY, or after a second (the horizon may have
                        # moved when a transaction that wrote no event ended).
                        for _ in listener.notifies(timeout=1.0, stop_after=1):
                            pass
        finally:
            client.disconnect()
            client.loop_stop()

    def _token_expired(self) -> bool:
        return self.next_expiry is not None and datetime.now(UTC) >= self.next_expiry

    def _publish(
        self,
        client: mqtt.Client,
        conn: psycopg.Connection[Any],
        dynsec: broker.DynamicSecurity,
        events: list[outbox.Event],
    ) -> None:
        pending: list[mqtt.MQTTMessageInfo] = []
        for event in events:
            if event.collection == "accounts":
                self.sync_accounts(conn, dynsec, event.item_id)
                continue
            for message in messages(event, self.catalog, self.policy, self.settings.public_url, self.in_use):
                body = json.dumps(message.body, separators=(",", ":"))
                pending.append(client.publish(message.topic, body, qos=1, retain=message.retain))
        for info in pending:  # QoS 1: the broker has them before the position moves on
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                raise broker.BrokerError(
                    "Le broker MQTT n'a pas accusé réception : publication reprise au redémarrage."
                )
        self.published += len(pending)


def run_forever(settings: Settings, broker_url: str) -> None:
    """`resorption publish`: publish, reconnecting after a failure of the broker or the database."""
    while True:
        try:
            Publisher(settings, broker_url).run()
        except (broker.BrokerError, psycopg.OperationalError) as exc:
            log.warning("publication interrompue (%s) : reprise dans 2 s", exc)
            time.sleep(2)
