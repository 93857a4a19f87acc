"""The coordinate reference systems we serve, by OGC URI, with their axis order."""

from dataclasses import dataclass

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
