"""French time: the zone our users live in, and the date it is there.

Timestamps are stored in UTC; dates of the workflow (a date "in the future", a file's date)
and the times shown to people are French ones.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def today() -> dt.date:
    """Today's date in Paris."""
    return dt.datetime.now(PARIS).date()
