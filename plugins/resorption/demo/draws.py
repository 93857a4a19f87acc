"""Random draws: days, moments, yes-or-no answers, weighted choices and splits.

Each takes the run's one `random.Random`, so that a seed gives the same data.
"""

import math
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta


def weighted[T](rng: random.Random, choices: Sequence[tuple[T, float]]) -> T:
    """One value drawn from (value, weight) pairs."""
    values = [value for value, _ in choices]
    return rng.choices(values, [weight for _, weight in choices])[0]


def day(rng: random.Random, start: date, end: date) -> date:
    """A day between start and end, both included."""
    return start + timedelta(days=rng.randrange(max(0, (end - start).days) + 1))


def maybe(rng: random.Random, known: float, true: float) -> bool | None:
    """An answer that is known with probability `known`, then true with probability `true`."""
    if rng.random() >= known:
        return None
    return rng.random() < true


def stamp(rng: random.Random, day: date) -> datetime:
    """A moment in office hours of that day, in UTC."""
    return datetime.combine(day, time(rng.randint(7, 16), rng.randrange(60)), tzinfo=UTC)


def split(rng: random.Random, total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in parts proportional to `weights`; the parts sum to `total`."""
    scale = sum(weights)
    parts = [math.floor(total * w / scale) for w in weights]
    for _ in range(total - sum(parts)):
        parts[rng.randrange(len(parts))] += 1
    return parts
