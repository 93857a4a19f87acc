"""The coordinate reference systems we serve, by OGC URI, with their axis order."""

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from pyproj import CRS, Transformer

from resorption.errors import InvalidParameter

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"


@dataclass(frozen=True, slots=True)
class Crs:
    """A CRS clients may ask for: its URI, SRID, axis order and output precision."""

    uri: str
    srid: int
    # EPSG:4326 is latitude first by definition; PostGIS stores longitude first.
    lat_first: bool
    decimals: int
    label: str


SUPPORTED: tuple[Crs, ...] = (
    Crs(CRS84, 4326, False, 7, "WGS 84 (longitude, latitude)"),
    Crs(EPSG_URI.format(4326), 4326, True, 7, "WGS 84 (latitude, longitude)"),
    Crs(EPSG_URI.format(3857), 3857, False, 2, "Pseudo-Mercator"),
    Crs(EPSG_URI.format(2154), 2154, False, 2, "RGF93 v1 / Lambert-93 (métropole)"),
    Crs(EPSG_URI.format(2972), 2972, False, 2, "RGFG95 / UTM 22N (Guyane)"),
    Crs(EPSG_URI.format(5490), 5490, False, 2, "RGAF09 / UTM 20N (Guadeloupe, Martinique)"),
    Crs(EPSG_URI.format(2975), 2975, False, 2, "RGR92 / UTM 40S (La Réunion)"),
    Crs(EPSG_URI.format(4471), 4471, False, 2, "RGM04 / UTM 38S (Mayotte)"),
)
BY_URI = {c.uri: c for c in SUPPORTED}
DEFAULT = BY_URI[CRS84]
URIS = [c.uri for c in SUPPORTED]


def parse_crs(value: str | None, parameter: str) -> Crs:
    """The CRS named by `value` (OGC URI, `EPSG:n` or `[EPSG:n]`); CRS84 when absent."""
    if value is None or value == "":
        return DEFAULT
    text = value.strip().strip("[]")
    if text in BY_URI:
        return BY_URI[text]
    lowered = text.lower()
    if lowered in ("crs84", "ogc:crs84", "urn:ogc:def:crs:ogc:1.3:crs84"):
        return DEFAULT
    for prefix in ("epsg:", "urn:ogc:def:crs:epsg::", "http://www.opengis.net/def/crs/epsg/0/"):
        if lowered.startswith(prefix) and lowered[len(prefix) :].isdigit():
            uri = EPSG_URI.format(int(lowered[len(prefix) :]))
            if uri in BY_URI:
                return BY_URI[uri]
    raise InvalidParameter(
        f"Le système de coordonnées « {value} » ({parameter}) n'est pas pris en charge. "
        f"Systèmes disponibles : {', '.join(URIS)}."
    )


@functools.cache
def lonlat_domain(srid: int) -> tuple[float, float, float, float] | None:
    """Where features can be projected to a transverse Mercator (UTM) CRS, in longitude/latitude.

    PROJ's transverse Mercator fails some 95° away from its central meridian ("outside of
    projection domain"), and is meaningless long before: Guyane has no place in Mayotte's UTM
    zone. Conic and Mercator CRSs (Lambert-93, Pseudo-Mercator) project everything we hold.
    """
    operation = CRS.from_epsg(srid).coordinate_operation
    if operation is None or operation.method_name != "Transverse Mercator":
        return None
    meridian = next(p.value for p in operation.params if p.name == "Longitude of natural origin")
    return max(meridian - 90, -180.0), -85.0, min(meridian + 90, 180.0), 85.0


@functools.cache
def domain(srid: int) -> tuple[float, float, float, float] | None:
    """Where coordinates given in a projected CRS make sense: its area of use, widened generously.

    Coordinates outside are refused with a 400 that says so, instead of a database error.
    """
    if srid == 4326:
        return None
    west, south, east, north = CRS.from_epsg(srid).area_of_use.bounds
    west, south = max(west - 20, -180.0), max(south - 20, -85.0)
    east, north = min(east + 20, 180.0), min(north + 20, 85.0)
    to_crs = Transformer.from_crs("EPSG:4326", f"EPSG:{srid}", always_xy=True)
    xmin, ymin, xmax, ymax = to_crs.transform_bounds(west, south, east, north, densify_pts=21)
    dx, dy = (xmax - xmin) * 0.1, (ymax - ymin) * 0.1
    return xmin - dx, ymin - dy, xmax + dx, ymax + dy


def check_in_domain(crs: Crs, points: Iterable[tuple[float, float]], parameter: str) -> None:
    """Refuse coordinates that `crs` cannot turn back into longitudes and latitudes."""
    box = domain(crs.srid)
    if box is None:
        return
    xmin, ymin, xmax, ymax = box
    for x, y in points:
        if not (xmin <= x <= xmax and ymin <= y <= ymax):
            raise InvalidParameter(
                f"{parameter} : le point ({x:g}, {y:g}) sort du domaine de {crs.label} "
                f"(x de {xmin:.0f} à {xmax:.0f}, y de {ymin:.0f} à {ymax:.0f})."
            )
