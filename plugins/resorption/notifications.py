"""What a subscriber is told of an event: ids, field names it may read, links — never values.

Shared by the MQTT publisher (`publisher.py`) and the Server-Sent Events (`api/events.py`).
"Notify, then fetch": a subscriber fetches the item through the API under its own rights.

Field names are filtered for their reader. On MQTT the topics are per territory, not per
person: an event there names only the fields that everyone reading the collection reads (no
sensitive group), and goes there only when everyone reading the collection in the territory
reads the item (a journal message of restricted visibility does not). Server-Sent Events are
per caller: the names the caller's role reads, and only for items its own reader returns.
An update that changed none of the names a reader may see is no event for that reader.
"""

from __future__ import annotations

from collections.abc import Collection as Names
from collections.abc import Mapping
from typing import Any

from resorption.catalog import Collection
from resorption.identity import Principal
from resorption.outbox import Event
from resorption.policy import Policy

# The parts of a site or an action an event may name, and the sensitive table behind each.
PARTS = {"actors": None, "indicators": None, "finances": "action_finances"}
# The history collection each collection's versions are read from.
VERSIONS = {"sites": "site_changes", "actions": "action_changes"}


def public_names(collection: Collection) -> frozenset[str]:
    """The names of `collection` that everyone who reads it reads (no sensitive group)."""
    names = {f.name for f in collection.fields.values() if f.group.sensitive is None}
    return frozenset({*names, collection.geometry_column, *(p for p, t in PARTS.items() if t is None)})


def readable_names(policy: Policy, principal: Principal, collection: Collection) -> frozenset[str]:
    """The names of `collection` the principal's role reads (its sensitive groups included)."""
    names = {f.name for f in policy.readable_fields(principal, collection)}
    groups = policy.readable_groups(principal)
    parts = {
        part
        for part, table in PARTS.items()
        if table is None
        or all(g in groups for g, tables in policy.sensitive_tables.items() if table in tables)
    }
    return frozenset({*names, collection.geometry_column, *parts})


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
