"""The scheduler of `resorption moissonner --planifie`: each source when its schedule is due.

A source is due when it was never harvested or when its last real run (successful or
not) started at least its period ago: a failing source is retried once per period, not
in a tight loop. A cron job or a systemd timer running `resorption moissonner` does the
same without a resident process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from resorption.harvest.sources import Source

# The longest sleep between two looks at the schedule (a source added meanwhile waits this much).
TICK = timedelta(seconds=60)


def due(sources: Mapping[str, Source], last_starts: Mapping[str, datetime], now: datetime) -> list[Source]:
    """The scheduled sources to harvest now, in name order."""
    return [
        s
        for name, s in sorted(sources.items())
        if s.every is not None and (name not in last_starts or last_starts[name] + s.every <= now)
    ]


def next_wake(sources: Mapping[str, Source], last_starts: Mapping[str, datetime], now: datetime) -> datetime:
    """When to look again: the next due time, at most one tick away."""
    times = [
        last_starts[name] + s.every
        for name, s in sources.items()
        if s.every is not None and name in last_starts
    ]
    return min([now + TICK, *times])


def run_forever(
    sources: Mapping[str, Source],
    last_starts: Callable[[], Mapping[str, datetime]],
    harvest_one: Callable[[Source], None],
) -> None:
    """Harvest each due source, then sleep until the next one is due; stops on Ctrl-C or SIGTERM."""
    while True:
        now = datetime.now(UTC)
        starts = last_starts()
        for source in due(sources, starts, now):
            harvest_one(source)
        now = datetime.now(UTC)
        time.sleep(max(1.0, (next_wake(sources, last_starts(), now) - now).total_seconds()))
