"""Server-Sent Events: `GET /events` and `GET /collections/{id}/events`.

The same events as MQTT (the outbox, sql/210_outbox.sql), for browsers and simple clients,
filtered by the caller's scope AT DELIVERY: before each batch, the caller's account is read again
(deactivated, or with another role, area or options, the stream ends: the reconnection is
authenticated anew); each batch of events is checked against what the caller's own reader
returns now (one query of the ids per collection, as the caller: its role,
row-level security), and an event whose item the caller cannot read is not sent, nor its id. A
deleted item is announced to those whose scope covers its département, when everyone there
could read it (`open`). Field names are filtered by the caller's role (notifications.py).

Resumable: an event's `id` is the stream's position, sealed (sql/215_stream_key.sql: in clear it
would count every territory's changes); a client reconnecting sends it back as
`Last-Event-ID` (EventSource does so itself) and gets everything committed since, exactly
once. A connection lasts at most RESORPTION_SSE_MAX_SECONDS (it holds one of its worker's
threads, so it ends well before gunicorn's timeout); the client reconnects after `retry` ms. A
worker holds at most RESORPTION_SSE_MAX_STREAMS streams (503 with Retry-After beyond: its
other threads stay for ordinary requests). An idle stream waits for a commit (commit_signal: one
LISTEN per process) and sends a comment line every second: proxies keep the connection open,
and a client that went away is noticed when it writes, so its thread is free within a second.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request
from psycopg import sql

from resorption import notifications, outbox, sealing, statements
from resorption.authentication import principal_of_user
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.commit_signal import commit_signal
from resorption.errors import InvalidParameter, NotFound, TooManyStreams, Unauthorized
from resorption.identity import Principal

SQL = statements.load("api_events")
blueprint = Blueprint("events", __name__)
# An idle stream reads the outbox when a commit wakes it (commit_signal), and at least this
# often (an event may become readable without a NOTIFY, see commit_signal).
POLL_SECONDS = 1.0
KEEP_ALIVE_SECONDS = 1.0
RETRY_MS = 1000
_streams: dict[int, threading.BoundedSemaphore] = {}
_streams_lock = threading.Lock()


def _stream_slots(limit: int) -> threading.BoundedSemaphore:
    """This process's stream slots (after gunicorn's fork)."""
    with _streams_lock:
        return _streams.setdefault(os.getpid(), threading.BoundedSemaphore(limit))


class _Held:
    """A stream's body that gives its slot back when the server closes it (end, or the client
    gone), even if it was never started."""

    def __init__(self, body: Iterator[str], slot: threading.BoundedSemaphore) -> None:
        self._body = body
        self._slot: threading.BoundedSemaphore | None = slot

    def __iter__(self) -> Iterator[str]:
        return self._body

    def close(self) -> None:
        try:
            self._body.close()  # type: ignore[attr-defined]
        finally:
            if self._slot is not None:
                self._slot.release()
                self._slot = None


@blueprint.get("/events")
def all_events() -> Response:
    """Every readable collection's changes, as they happen."""
    caller = Caller.of_request()
    if caller.principal.is_anonymous:
        raise Unauthorized("Authentification requise pour suivre les changements.")
    collections = [
        caller.catalog[c]
        for c in outbox.COLLECTIONS
        if c in caller.catalog and caller.may_read(caller.catalog[c])
    ]
    return _stream(caller, collections)


@blueprint.get("/collections/<collection_id>/events")
def collection_events(collection_id: str) -> Response:
    """One collection's changes, as they happen (app._guard answered for unreadable ones)."""
    caller = Caller.of_request()
    collection = caller.catalog.get(collection_id)
    if collection is None or collection_id not in outbox.COLLECTIONS:
        raise NotFound(f"La collection « {collection_id} » n'a pas de flux de changements.")
    if caller.principal.is_anonymous:
        raise Unauthorized("Authentification requise pour suivre les changements.")
    return _stream(caller, [collection])


def _stream(caller: Caller, collections: list[Collection]) -> Response:
    unknown = sorted(set(request.args) - {"lastEventId"})
    if unknown:
        # A stream takes no filter: a parameter it would silently ignore is refused at once.
        raise InvalidParameter(
            f"Paramètre inconnu pour un flux de changements : {', '.join(unknown)[:200]} "
            "(seul lastEventId est accepté ; filtrez à la réception, ou lisez les objets par l'API)."
        )
    raw = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    with caller.following_changes() as conn:
        secret = sealing.secret_of(conn, caller.settings.database_url)
        position = _position(secret, raw)
        if raw and position is None:
            raise InvalidParameter(
                "Last-Event-ID illisible : renvoyez l'identifiant du dernier évènement reçu, tel quel."
            )
        if position is None:
            position = outbox.start(conn)
    settings = caller.settings
    slot = _stream_slots(settings.sse_max_streams)
    if not slot.acquire(blocking=False):
        # Every stream slot of this process is taken: the threads left serve ordinary requests.
        raise TooManyStreams()
    body = _events(caller, {c.id: c for c in collections}, position, settings.sse_max_seconds, secret)
    response = Response(_Held(body, slot), status=HTTPStatus.OK, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _position(secret: str, raw: str | None) -> outbox.Position | None:
    """The position an event's id holds; None for anything this database did not seal."""
    token = sealing.unseal(secret, raw)
    try:
        return None if token is None else outbox.Position.parse(token)
    except ValueError:
        return None


def _events(
    caller: Caller,
    collections: Mapping[str, Collection],
    position: outbox.Position,
    max_seconds: int,
    secret: str,
) -> Iterator[str]:
    names = {
        c: notifications.readable_names(caller.policy, caller.principal, col)
        for c, col in collections.items()
    }
    public_url = caller.settings.public_url
    signal = commit_signal(caller.settings.app_database_url or caller.settings.database_url)
    deadline = time.monotonic() + max_seconds
    keep_alive = KEEP_ALIVE_SECONDS
    last_sent = time.monotonic()
    yield f"retry: {RETRY_MS}\n: flux de {', '.join(collections)}\n\n"
    while time.monotonic() < deadline:
        woken = signal.seen  # before reading: a commit during the read wakes the wait below
        with caller.following_changes() as conn:
            events, after = outbox.read(conn, position, limit=200)
        wanted = [e for e in events if e.collection in collections]
        if wanted and not _same_rights(caller):
            # deactivated, or another role, area or options since the stream began: it ends,
            # and the client's reconnection is authenticated (and filtered) anew
            yield ": droits changés, reconnexion\n\n"
            return
        readable = _readable(caller, collections, wanted)
        for event in wanted:
            fields = notifications.shown_fields(event, names[event.collection])
            if fields is None or not _deliverable(caller, event, readable):
                continue
            data = json.dumps(notifications.payload(event, fields, public_url), separators=(",", ":"))
            # sealed: outbox and transaction ids count the changes of every territory
            sealed = sealing.seal(secret, event.position.token)
            yield f"id: {sealed}\nevent: change\ndata: {data}\n\n"
            last_sent = time.monotonic()
        # Past the events skipped too: the client's Last-Event-ID stays at the last one it got
        # (resuming there re-checks the skipped ones, and sends them no more than now).
        position = after
        if events:
            continue  # more may be waiting: no pause
        if time.monotonic() - last_sent >= keep_alive:
            # A comment: the connection stays open through proxies.
            yield ": …\n\n"
            last_sent = time.monotonic()
        signal.wait(woken, min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _rights(principal: Principal) -> tuple[Any, ...]:
    return (
        principal.role,
        principal.options,
        principal.area_level,
        principal.area_code,
        principal.area_departements,
        principal.organisation_id,
    )


def _same_rights(caller: Caller) -> bool:
    """Whether the caller's account is still active with the rights the stream began with."""
    now = principal_of_user(caller.principal.username, caller.settings, caller.principal.method or "sse")
    return now is not None and _rights(now) == _rights(caller.principal)


def _readable(
    caller: Caller, collections: Mapping[str, Collection], events: list[outbox.Event]
) -> dict[str, set[int]]:
    """The ids among the events' items that the caller's reader returns now, per collection."""
    ids: dict[str, set[int]] = defaultdict(set)
    for event in events:
        if event.operation != "delete":
            ids[event.collection].add(event.item_id)
    found: dict[str, set[int]] = defaultdict(set)
    if not ids:
        return found
    with caller.reading() as conn:
        for collection_id, wanted in ids.items():
            collection = collections[collection_id]
            statement = SQL.readable_ids.format(
                sql.Identifier(*collection.table.split(".")), sql.Identifier(collection.id_field)
            )
            found[collection_id] = {row[0] for row in conn.execute(statement, (sorted(wanted),))}
    return found


def _deliverable(caller: Caller, event: outbox.Event, readable: Mapping[str, set[int]]) -> bool:
    if event.operation != "delete":
        return event.item_id in readable.get(event.collection, set())
    scope = caller.scope(event.collection)
    return event.open and any(scope.contains(code) for code in event.departements)


def openapi_paths() -> dict[str, Any]:
    """The streams of changes in our OpenAPI document (the AsyncAPI document at /asyncapi
    describes their messages)."""
    exception = {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    responses = {
        "400": {"$ref": "#/components/responses/InvalidParameter"},
        "401": {"description": "Authentification requise pour suivre les changements.", "content": exception},
        "503": {
            "description": "Trop de flux ouverts, ou base indisponible : réessayer après `Retry-After`.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": exception,
        },
    }
    last_event_id = {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "description": "L'identifiant du dernier évènement reçu, tel quel : le flux reprend juste après.",
        "schema": {"type": "string"},
    }

    def operation(op_id: str, summary: str, parameters: list[Any]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": op_id,
                "summary": summary,
                "tags": ["Changements en direct"],
                "parameters": [*parameters, last_event_id],
                "responses": {
                    "200": {
                        "description": "Flux Server-Sent Events (`event: change`, `data` : l'évènement en "
                        "JSON, décrit par /asyncapi) ; la connexion se termine après quelques secondes et "
                        "le client se reconnecte avec `Last-Event-ID`.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **responses,
                },
            }
        }

    collection = {
        "name": "collectionId",
        "in": "path",
        "required": True,
        "description": "La collection suivie.",
        "schema": {"type": "string", "enum": list(outbox.COLLECTIONS)},
    }
    return {
        "/events": operation("getEvents", "Changements de toutes les collections lisibles, en direct", []),
        "/collections/{collectionId}/events": operation(
            "getCollectionEvents", "Changements d'une collection, en direct", [collection]
        ),
    }
