"""Glyphs for map labels: signed-distance-field (SDF) PBF ranges made from the DSFR's Marianne font.

A MapLibre style draws text only with glyphs fetched from its `glyphs` URL
(`…/{fontstack}/{range}.pbf`, 256 code points a file). Our users' networks reach no font
server, so we make these files ourselves from Marianne (the State's font, in `@gouvfr/dsfr`)
when the front-end files are vendored (`vendor.py`), and `api/map_styles.py` serves them.

The files follow the format MapLibre and QGIS read (mapbox/glyph-pbf `glyphs.proto`): for each
glyph its id, its bitmap, width, height, left, top and advance, rendered at 24 px with a
3-pixel buffer, distances up to 8 pixels and the 0.25 cut-off, as Mapbox's tiny-sdf and
MapLibre's own local glyphs do. Pillow (FreeType) rasterises the glyph; a Euclidean distance
transform (Felzenszwalb & Huttenlocher) turns its coverage into distances.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from PIL import ImageFont

SIZE = 24
BUFFER = 3
RADIUS = 8
CUTOFF = 0.25
# MapLibre places a glyph's `top` from an origin above the em box: this is the shift it applies
# to its own glyphs to line them up with server-made ones (maplibre-gl-js, glyph_manager).
TOP_ADJUSTMENT = 27
INF = 1e20
# The code points we make: Latin-1, Latin Extended-A (œ, Œ, ÿ…) and general punctuation
# (’, –, —, …), enough for every French place name; other ranges are served empty.
RANGES = (0, 256, 8192)
# Fontstack name → the font file's name in the DSFR's fonts folder.
FONTS = {"Marianne Regular": "Marianne-Regular.woff2"}


def range_name(start: int) -> str:
    """`0-255`, `256-511`…: the name MapLibre asks for."""
    return f"{start}-{start + 255}"


# -- the distance transform -------------------------------------------------------------------


def _edt_1d(f: list[float], n: int) -> list[float]:
    """Squared distances along one line (Felzenszwalb & Huttenlocher, as in tiny-sdf)."""
    v = [0] * n
    z = [0.0] * (n + 1)
    z[0], z[1] = -INF, INF
    k = 0
    for q in range(1, n):
        while True:
            r = v[k]
            s = (f[q] - f[r] + q * q - r * r) / (q - r) / 2
            if s <= z[k]:
                k -= 1
                if k > -1:
                    continue
            break
        k += 1
        v[k], z[k], z[k + 1] = q, s, INF
    d = [0.0] * n
    k = 0
    for q in range(n):
        while z[k + 1] < q:
            k += 1
        r = v[k]
        d[q] = f[r] + (q - r) * (q - r)
    return d


def _edt(grid: list[float], width: int, height: int) -> None:
    """2D squared distance transform in place: columns, then rows."""
    for x in range(width):
        column = _edt_1d([grid[y * width + x] for y in range(height)], height)
        for y in range(height):
            grid[y * width + x] = column[y]
    for y in range(height):
        grid[y * width : (y + 1) * width] = _edt_1d(grid[y * width : (y + 1) * width], width)


def sdf(coverage: bytes, width: int, height: int) -> bytes:
    """The SDF bitmap (width + 2·BUFFER by height + 2·BUFFER) of a glyph's coverage (0–255)."""
    w, h = width + 2 * BUFFER, height + 2 * BUFFER
    outer = [INF] * (w * h)
    inner = [0.0] * (w * h)
    for y in range(height):
        for x in range(width):
            a = coverage[y * width + x] / 255
            if a == 0:
                continue
            j = (y + BUFFER) * w + x + BUFFER
            if a == 1:
                outer[j], inner[j] = 0.0, INF
            else:
                d = 0.5 - a
                outer[j] = d * d if d > 0 else 0.0
                inner[j] = d * d if d < 0 else 0.0
    _edt(outer, w, h)
    _edt(inner, w, h)
    out = bytearray(w * h)
    for i in range(w * h):
        d = math.sqrt(outer[i]) - math.sqrt(inner[i])
        out[i] = max(0, min(255, round(255 - 255 * (d / RADIUS + CUTOFF))))
    return bytes(out)


# -- protobuf (glyphs.proto), written by hand: seven fields are not worth a dependency ----------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _uint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _sint(field: int, value: int) -> bytes:
    return _uint(field, (value << 1) ^ (value >> 63))  # zigzag


def _bytes(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


def glyph_message(
    code: int, bitmap: bytes, width: int, height: int, left: int, top: int, advance: int
) -> bytes:
    """One `glyph` message (id, bitmap, width, height, left, top, advance)."""
    body = _uint(1, code)
    if bitmap:
        body += _bytes(2, bitmap)
    body += _uint(3, width) + _uint(4, height) + _sint(5, left) + _sint(6, top) + _uint(7, advance)
    return body


def glyphs_file(fontstack: str, start: int, glyphs: Iterable[bytes]) -> bytes:
    """A `glyphs` message with one `fontstack` of the range starting at `start`."""
    stack = _bytes(1, fontstack.encode()) + _bytes(2, range_name(start).encode())
    for glyph in glyphs:
        stack += _bytes(3, glyph)
    return _bytes(1, stack)


# -- rendering ----------------------------------------------------------------------------------


def render(font: ImageFont.FreeTypeFont, code: int) -> bytes:
    """The `glyph` message of one code point, drawn with `font` (at SIZE pixels)."""
    char = chr(code)
    advance = round(font.getlength(char))
    mask, (offset_x, offset_y) = font.getmask2(char, mode="L", anchor="ls")
    width, height = mask.size
    coverage = bytes(mask)
    # Pillow's mask starts at the pen position: leave out the empty columns of the bearing.
    columns = [x for x in range(width) if any(coverage[y * width + x] for y in range(height))]
    if not columns or not height:
        return glyph_message(code, b"", 0, 0, 0, 0, advance)
    first, last = columns[0], columns[-1]
    cut = bytes(coverage[y * width + x] for y in range(height) for x in range(first, last + 1))
    cut_width = last - first + 1
    top = -offset_y  # above the baseline, in pixels
    return glyph_message(
        code, sdf(cut, cut_width, height), cut_width, height, offset_x + first, top - TOP_ADJUSTMENT, advance
    )


def build(fonts_dir: Path, out_dir: Path) -> list[Path]:
    """Write `out_dir/{fontstack}/{range}.pbf` for FONTS and RANGES; returns the files written."""
    written: list[Path] = []
    for fontstack, filename in FONTS.items():
        # Basic layout: one code point at a time, no shaping (and no raqm failing on separators).
        font = ImageFont.truetype(str(fonts_dir / filename), SIZE, layout_engine=ImageFont.Layout.BASIC)
        # A code point the font lacks is drawn as its .notdef box: left out of the files.
        notdef = font.getmask2("\uffff", mode="L", anchor="ls")
        missing = (bytes(notdef[0]), notdef[0].size)
        folder = out_dir / fontstack
        folder.mkdir(parents=True, exist_ok=True)
        for start in RANGES:
            messages = []
            for code in range(start, start + 256):
                if code < 32 or 127 <= code < 160 or 0xD800 <= code < 0xE000:
                    continue  # controls and surrogates: nothing to draw
                mask = font.getmask2(chr(code), mode="L", anchor="ls")[0]
                if code != 32 and (bytes(mask), mask.size) == missing:
                    continue
                messages.append(render(font, code))
            path = folder / f"{range_name(start)}.pbf"
            path.write_bytes(glyphs_file(fontstack, start, messages))
            written.append(path)
    return written
