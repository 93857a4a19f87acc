"""Geometries as hex EWKB, packed by hand: exact coordinates, no round trip through text."""

import math
import random
import struct


def point_ewkb(x: float, y: float) -> str:
    """Hex EWKB of a WGS 84 point: exact, unlike a decimal text form."""
    return struct.pack("<BIIdd", 1, 0x20000001, 4326, x, y).hex()


def outline_ewkb(rng: random.Random, x: float, y: float, radius: float) -> str:
    """Hex EWKB of a small star-shaped MultiPolygon around a point, `radius` metres wide.

    Vertices at increasing angles around the point make a simple polygon that
    contains the point, so it is always valid.
    """
    n = rng.randint(6, 10)
    metres_x = 111_320 * math.cos(math.radians(y))
    ring = []
    for i in range(n):
        angle = 2 * math.pi * (i + rng.uniform(-0.3, 0.3)) / n
        r = radius * rng.uniform(0.6, 1.0)
        ring.append((x + r * math.cos(angle) / metres_x, y + r * math.sin(angle) / 110_540))
    ring.append(ring[0])
    head = struct.pack("<BIII", 1, 0x20000006, 4326, 1) + struct.pack("<BIII", 1, 3, 1, len(ring))
    return (head + b"".join(struct.pack("<dd", px, py) for px, py in ring)).hex()
