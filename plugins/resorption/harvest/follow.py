"""Following a remote Résorption as it changes: its Server-Sent Events, then the harvest.

`follow` first catches up with an (incremental) harvest, then listens to the remote
collection's stream of changes (`…/collections/<id>/events`, the same credentials as the
harvest) and, for each burst of changes, runs the incremental harvest again: within a second
or two the changed sites are read (under the harvester's rights on the remote side) and
applied through the one write path, with their provenance, conflicts and report as for any
harvest. A deletion asks for a complete reading (only a complete one tells what the source no
longer has).

The remote stream ends every few seconds (its bounded connections): the follower reconnects
with the Last-Event-ID it got and misses nothing. When the stream cannot be resumed (the remote
refused the position, the connection was lost), it falls back to the incremental harvest by
`updated_at` (its margin covers the gap), then listens again — and harvests once more as soon
as the stream is back, since a harvest tried while the source was down read nothing.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from resorption.catalog import Collection
from resorption.errors import Conflict, ResorptionError
from resorption.harvest.remote import SourceUnavailable
from resorption.harvest.runs import RunReport, harvest
from resorption.harvest.sources import Source

# How long to gather a burst of changes before harvesting them together.
BURST_SECONDS = 0.3
RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Change:
    """One event of the remote stream (or a gap in it)."""

    operation: str
    item: str | None
    gap: bool = False


def events_url(source: Source) -> str:
    """The remote collection's stream of changes, beside its items."""
    return source.items_url.rstrip("/").removesuffix("/items") + "/events"


def read_stream(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any] | None]]:
    """The (id, data) of each event of a text/event-stream (comments and retry lines skipped)."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                try:
                    body = json.loads("\n".join(data))
                except ValueError:
                    body = None
                yield event_id, body if isinstance(body, dict) else None
            data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "data":
            data.append(value)


class Listener(threading.Thread):
    """Reads the remote stream, reconnecting with Last-Event-ID; puts changes (and gaps) in a queue."""

    def __init__(self, source: Source, changes: queue.Queue[Change], stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"suivi-{source.name}")
        self.source = source
        self.changes = changes
        self.stop = stop
        self.last_id: str | None = None
        self.connected = threading.Event()
        # set after a gap: once the stream is back, one more catch-up harvest (the ones made
        # while the source was down failed, and the new stream starts from now)
        self.behind = False

    def run(self) -> None:
        headers, auth = (
            ({}, None)
            if self.source.credentials is None
            else self.source.credentials.headers_and_auth(self.source.name)
        )
        with requests.Session() as session:
            session.headers.update(
                {"Accept": "text/event-stream", "User-Agent": "resorption-suivi", **headers}
            )
            session.auth = auth
            while not self.stop.is_set():
                try:
                    self._listen(session)
                except (requests.RequestException, SourceUnavailable):
                    self.last_id = None
                    self.behind = True
                    self.changes.put(Change("gap", None, gap=True))
                    self.stop.wait(RETRY_SECONDS)

    def _listen(self, session: requests.Session) -> None:
        extra = {"Last-Event-ID": self.last_id} if self.last_id else {}
        with session.get(events_url(self.source), headers=extra, stream=True, timeout=(10, 60)) as response:
            if response.status_code != 200:
                raise SourceUnavailable(
                    f"Source « {self.source.name} » : le flux des changements répond {response.status_code}."
                )
            self.connected.set()
            if self.behind:
                # listening again before catching up: no change falls in between
                self.behind = False
                self.changes.put(Change("gap", None, gap=True))
            for event_id, body in read_stream(response.iter_lines(decode_unicode=True)):
                if self.stop.is_set():
                    return
                if event_id:
                    self.last_id = event_id
                if body is not None:
                    item = body.get("item")
                    self.changes.put(Change(str(body.get("operation")), None if item is None else str(item)))


def follow(
    database_url: str,
    source: Source,
    sites: Collection,
    stop: threading.Event,
    on_report: Callable[[RunReport], None] | None = None,
) -> None:
    """Harvest `source`, then again at each burst of its changes, until `stop` is set."""
    changes: queue.Queue[Change] = queue.Queue()
    listener = Listener(source, changes, stop)
    listener.start()
    listener.connected.wait(10)  # listening before catching up: no change falls in between
    while not _harvest(database_url, source, sites, False, on_report) and not stop.is_set():
        stop.wait(RETRY_SECONDS)
    while not stop.is_set():
        try:
            first = changes.get(timeout=0.5)
        except queue.Empty:
            continue
        burst = [first]
        deadline = time.monotonic() + BURST_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            try:
                burst.append(changes.get(timeout=left))
            except queue.Empty:
                break
        full = any(c.operation == "delete" for c in burst)
        # Another run of the source (the schedule's) may have read its pages before these
        # changes: the burst waits for it to end, then is harvested, never dropped.
        while not _harvest(database_url, source, sites, full, on_report) and not stop.is_set():
            stop.wait(RETRY_SECONDS)
    listener.join(timeout=5)


def _harvest(
    database_url: str,
    source: Source,
    sites: Collection,
    full: bool,
    on_report: Callable[[RunReport], None] | None,
) -> bool:
    """Harvest once; False when another run of the source holds it."""
    try:
        report = harvest(database_url, source, sites, full=full)
    except Conflict:
        return False
    except ResorptionError:
        return True  # refused for good (the report of a failing source is recorded): next burst
    if on_report:
        on_report(report)
    return True
