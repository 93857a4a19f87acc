"""OGC API – Publish-Subscribe discovery: the AsyncAPI 3.0 document and the broker's link.

Like pygeoapi's own pub/sub (OGC API – EDR Part 2, the Publish-Subscribe workflow), the landing
page links to the broker (`rel: hub`, with its channel) and to the AsyncAPI document
(`service-desc` in JSON, `service-doc` in HTML, at `/asyncapi`); each collection that has a
stream of changes links to its channel on the broker and to its Server-Sent Events.

pygeoapi publishes every write of its own to its broker, with no access control, when it has a
pub/sub client: `BrokerLink` takes the place of that client only to declare our broker on the
landing page. It publishes nothing: our publisher does (publisher.py), per territory, and the
broker's access lists follow the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from resorption import broker, notifications, outbox
from resorption.catalog import Collection
from resorption.policy import Policy
from resorption.settings import Settings

TOPIC_ROOT = broker.TOPIC_ROOT
STREAMED = outbox.COLLECTIONS
mqtt_public_url = broker.public_url


@dataclass(frozen=True, slots=True)
class BrokerLink:
    """What pygeoapi reads of a pub/sub client to link the broker from the landing page. It
    publishes nothing (see the module's docstring)."""

    broker_safe_url: str
    name: str = "MQTT"
    channel: str = TOPIC_ROOT
    hidden: bool = False

    def connect(self) -> None:
        """pygeoapi's own publication (job results): not through this link."""

    def pub(self, channel: str, message: str, qos: int = 1) -> bool:
        """pygeoapi's own publication: refused, our publisher is the only one (filtered)."""
        return False


def collection_links(public_url: str, collection_id: str) -> list[dict[str, str]]:
    """A streamed collection's links to its changes: MQTT channel and Server-Sent Events."""
    return [
        {
            "rel": "hub",
            "type": "application/json",
            # pygeoapi keeps only type, rel, title and href of a collection's links: the channel
            # is named in the title (the AsyncAPI document describes it)
            "title": f"Changements en temps réel (MQTT) : {TOPIC_ROOT}/{collection_id}/departement/"
            "{departement}/#",
            "href": mqtt_public_url(),
        },
        {
            "rel": "related",
            "type": "text/event-stream",
            "title": "Changements en temps réel (Server-Sent Events)",
            "href": f"{public_url.rstrip('/')}/collections/{collection_id}/events",
        },
    ]


MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Un changement : identifiants et noms de champs, jamais de valeurs. L'abonné lit l'objet "
        "par l'API, sous ses propres droits (« notifier, puis lire »)."
    ),
    "required": ["id", "time", "collection", "item", "operation", "fields", "links"],
    "properties": {
        "id": {"type": "string", "description": "Identifiant de l'évènement (croissant)."},
        "time": {"type": "string", "format": "date-time", "description": "Instant du changement."},
        "collection": {"type": "string", "enum": list(STREAMED)},
        "item": {"type": "integer", "description": "Identifiant de l'objet changé."},
        "operation": {"type": "string", "enum": ["create", "update", "delete"]},
        "fields": {
            "type": "array",
            "items": {"type": "string"},
            "description": (
                "Champs changés, parmi ceux que le destinataire peut lire (sur MQTT : ceux "
                "qu'aucun groupe sensible ne protège, et ceux des groupes du sujet sous "
                "`groupes/`) ; `actors`, `indicators`, `finances` "
                "pour les intervenants d'un site, les indicateurs et les financements d'une action."
            ),
        },
        "departement": {"type": "string", "description": "Département du sujet (MQTT seulement)."},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rel", "href"],
                "properties": {
                    "rel": {"type": "string", "enum": ["item", "version-history", "up"]},
                    "type": {"type": "string"},
                    "href": {"type": "string", "format": "uri"},
                },
            },
        },
    },
}


def document(settings: Settings, catalog: Mapping[str, Collection], policy: Policy) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of our channels (MQTT and Server-Sent Events)."""
    mqtt = urlsplit(mqtt_public_url())
    public = urlsplit(settings.public_url)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for collection_id in STREAMED:
        collection = catalog.get(collection_id)
        if collection is None:
            continue
        title = collection.title.get("fr")
        channels[f"{collection_id}-mqtt"] = {
            "address": f"{TOPIC_ROOT}/{collection_id}/departement/{{departement}}/{{item}}",
            "title": f"{title} (MQTT)",
            "description": (
                f"Chaque changement d'un objet de « {title} », dans chacun de ses départements. "
                "On ne s'abonne qu'aux départements de son territoire ; `item` vaut `last` pour "
                "le dernier changement du département, conservé (retained) par le broker. QoS 1."
            ),
            "servers": [{"$ref": "#/servers/mqtt"}],
            "parameters": {
                "departement": {"description": "Code du département (33, 2A, 971…)."},
                "item": {"description": "Identifiant de l'objet, ou `last`."},
            },
            "messages": {"change": {"$ref": "#/components/messages/change"}},
        }
        kinds = ["mqtt", "sse"]
        tiers = notifications.tiers(policy, collection)[1:]
        if tiers:
            kinds.append("mqtt-groupes")
            channels[f"{collection_id}-mqtt-groupes"] = {
                "address": f"{TOPIC_ROOT}/groupes/{{groupes}}/{collection_id}/departement/"
                "{departement}/{item}",
                "title": f"{title} (MQTT, lecteurs de groupes sensibles)",
                "description": (
                    "Les mêmes changements pour ceux qui lisent des groupes sensibles de la "
                    "collection : leurs messages nomment aussi les champs de ces groupes. "
                    "`groupes` est exactement l'ensemble des groupes sensibles de la collection que "
                    "le lecteur lit, séparés par des virgules (seul sujet de ce type qui lui soit "
                    "ouvert)."
                ),
                "servers": [{"$ref": "#/servers/mqtt"}],
                "parameters": {
                    "groupes": {"enum": tiers, "description": "Groupes sensibles lus."},
                    "departement": {"description": "Code du département (33, 2A, 971…)."},
                    "item": {"description": "Identifiant de l'objet, ou `last`."},
                },
                "messages": {"change": {"$ref": "#/components/messages/change"}},
            }
        channels[f"{collection_id}-sse"] = {
            "address": f"/collections/{collection_id}/events",
            "title": f"{title} (Server-Sent Events)",
            "description": (
                "Les mêmes changements, filtrés pour l'appelant au moment de l'envoi ; reprise "
                "avec l'en-tête Last-Event-ID ; chaque connexion dure au plus "
                f"{settings.sse_max_seconds} s, le client se reconnecte seul."
            ),
            "servers": [{"$ref": "#/servers/sse"}],
            "messages": {"change": {"$ref": "#/components/messages/change"}},
        }
        for kind in kinds:
            operations[f"receive-{collection_id}-{kind}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{collection_id}-{kind}"},
                "messages": [{"$ref": f"#/channels/{collection_id}-{kind}/messages/change"}],
            }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:resorption:changes",
        "defaultContentType": "application/json",
        "info": {
            "title": "Résorption : changements en temps réel",
            "version": "1",
            "description": (
                "Les changements des sites, des actions et de leurs journaux, au moment où ils "
                "sont enregistrés, sous les mêmes règles d'accès que l'API : MQTT (un sujet par "
                "collection et département ; identifiant et jeton d'API de l'utilisateur) et "
                "Server-Sent Events (GET /events, /collections/{id}/events)."
            ),
        },
        "servers": {
            "mqtt": {
                "host": f"{mqtt.hostname}:{mqtt.port or 1883}",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": (
                    "Broker Mosquitto ; identifiant : le nom d'utilisateur, mot de passe : son jeton d'API."
                ),
                "security": [{"$ref": "#/components/securitySchemes/token"}],
            },
            "sse": {
                "host": public.netloc,
                "pathname": public.path or "/",
                "protocol": public.scheme or "http",
                "description": "Server-Sent Events (text/event-stream) du service.",
                "security": [
                    {"$ref": "#/components/securitySchemes/bearer"},
                    {"$ref": "#/components/securitySchemes/basic"},
                ],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                "change": {
                    "name": "change",
                    "title": "Changement",
                    "contentType": "application/json",
                    "payload": MESSAGE_SCHEMA,
                }
            },
            "securitySchemes": {
                "token": {
                    "type": "userPassword",
                    "description": "Nom d'utilisateur et jeton d'API (le dernier émis).",
                },
                "bearer": {"type": "http", "scheme": "bearer", "description": "Jeton d'API."},
                "basic": {"type": "http", "scheme": "basic", "description": "Identifiant et mot de passe."},
            },
        },
    }
