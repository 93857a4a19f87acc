"""What a subscriber is told of an event: ids, field names it may read, links — never values.

Shared by the MQTT publisher (`publisher.py`) and the Server-Sent Events (`api/events.py`).
"Notify, then fetch": a subscriber fetches the item through the API under its own rights.

Field names are filtered for their reader. On MQTT the topics are per territory, not per
person, and per *tier*: the sensitive groups of the collection a reader reads (`tiers`). The
topics of the empty tier name only the fields that no sensitive group protects; those of a tier
(`resorption/v1/groupes/justice,owner/sites/…`) name the fields of its groups too, and only the
readers of exactly these groups may subscribe to them. An event goes to MQTT only when everyone
reading the collection in the territory reads the item (a journal message of restricted
visibility does not). Server-Sent Events are per caller: the names the caller's role reads, and
only for items its own reader returns. An update that changed none of the names a reader may
see is no event for that reader.
"""

from __future__ import annotations

from collections.abc import Collection as Names
from collections.abc import Mapping
from itertools import combinations
from typing import Any

from resorption import outbox
from resorption.catalog import Collection
from resorption.identity import Principal
from resorption.outbox import Event
from resorption.policy import Policy

# The parts of a site or an action an event may name, and the sensitive table behind each.
PARTS = {"actors": None, "indicators": None, "finances": "action_finances"}
# The history collection each collection's versions are read from.
VERSIONS = {"sites": "site_changes", "actions": "action_changes"}


def _part_groups(policy: Policy, collection: Collection) -> dict[str, frozenset[str]]:
    """The parts an event of `collection` may name, and the sensitive groups each needs."""
    return {
        part: frozenset(g for g, tables in policy.sensitive_tables.items() if table in tables)
        for part, table in PARTS.items()
        if outbox.PARTS[part] == collection.id
    }


def names_for(policy: Policy, collection: Collection, groups: frozenset[str]) -> frozenset[str]:
    """The names of `collection` a reader of the sensitive `groups` reads."""
    names = {f.name for f in collection.fields.values() if f.group.sensitive in (None, *groups)}
    parts = {p for p, needs in _part_groups(policy, collection).items() if needs <= groups}
    return frozenset({*names, collection.geometry_column, *parts})


def readable_names(policy: Policy, principal: Principal, collection: Collection) -> frozenset[str]:
    """The names of `collection` the principal's role reads (its sensitive groups included)."""
    return names_for(policy, collection, policy.readable_groups(principal))


def collection_groups(policy: Policy, collection: Collection) -> frozenset[str]:
    """The sensitive groups that protect some name of `collection`."""
    fields = {f.group.sensitive for f in collection.fields.values() if f.group.sensitive}
    return frozenset(fields.union(*_part_groups(policy, collection).values()))


def tier(policy: Policy, principal: Principal, collection: Collection) -> str:
    """The principal's MQTT tier of `collection`: the sensitive groups of it they read,
    comma-separated ('' for none)."""
    return ",".join(sorted(policy.readable_groups(principal) & collection_groups(policy, collection)))


def tiers(policy: Policy, collection: Collection) -> list[str]:
    """Every MQTT tier of `collection`: '' and each non-empty set of its sensitive groups."""
    groups = sorted(collection_groups(policy, collection))
    found = [""]
    for size in range(1, len(groups) + 1):
        found += [",".join(c) for c in combinations(groups, size)]
    return found


def shown_fields(event: Event, names: Names[str]) -> tuple[str, ...] | None:
    """The changed fields a reader of `names` sees; None when the event is none of theirs."""
    shown = tuple(f for f in event.fields if f in names)
    if event.fields and not shown:
        return None
    return shown


def payload(
    event: Event, fields: tuple[str, ...], public_url: str, departement: str | None = None
) -> dict[str, Any]:
    """The message of an event: what changed (names) and where to fetch it."""
    base = public_url.rstrip("/")
    links = []
    if event.operation != "delete":
        links.append(
            {
                "rel": "item",
                "type": "application/geo+json",
                "href": f"{base}/collections/{event.collection}/items/{event.item_id}",
            }
        )
    if event.version_id is not None and event.collection in VERSIONS:
        links.append(
            {
                "rel": "version-history",
                "type": "application/geo+json",
                "href": f"{base}/collections/{VERSIONS[event.collection]}/items/{event.version_id}",
            }
        )
    parent = {"site_comments": "sites", "action_comments": "actions"}.get(event.collection)
    if parent and event.parent_id is not None:
        links.append(
            {
                "rel": "up",
                "type": "application/geo+json",
                "href": f"{base}/collections/{parent}/items/{event.parent_id}",
            }
        )
    body: dict[str, Any] = {
        "id": str(event.id),
        "time": event.at.isoformat(),
        "collection": event.collection,
        "item": event.item_id,
        "operation": event.operation,
        "fields": list(fields),
        "links": links,
    }
    if departement is not None:
        body["departement"] = departement
    return body


def catalog_of(catalog: Mapping[str, Collection], event: Event) -> Collection | None:
    """The catalog's collection of an event (None for a collection the catalog lacks)."""
    return catalog.get(event.collection)
