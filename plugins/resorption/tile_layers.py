"""What our vector tiles show, layer by layer, and their grid.

The statement that builds a tile from these layers and the catalog is composed by the
reader, `resorption.query.tile_statement`; no SQL is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Tile coordinates per side (the MVT default) and the margin kept around a tile so that
# lines and symbols drawn across its edge meet their neighbours.
EXTENT = 4096
BUFFER = 64
# Clustered sites are grouped on this grid of tile units: 8 × 8 cells per tile (32 pixels
# on a 256-pixel tile), each cluster drawn at the mean position of its sites.
CLUSTER_CELL = 512
# Above this zoom, territories are drawn as stored: simplifying would cost more than it saves.
SIMPLIFY_UNTIL = 12
# The highest zoom level (tile matrix) of WebMercatorQuad.
MAX_ZOOM = 24


@dataclass(frozen=True, slots=True)
class Layer:
    """What the tiles of one collection show."""

    collection: str
    # Catalog fields shown, for styling and a tooltip; cut down to what the caller may read.
    properties: tuple[str, ...]
    # 0 for points, 2 for surfaces (OGC tileset metadata).
    geometry_dimension: int
    # Below this zoom a tile is empty (204): too many features to be of use.
    min_zoom: int = 0
    # Below this zoom, points are grouped into clusters (count, population, dominant status).
    cluster_below: int | None = None
    # The column given as each feature's MVT id (an integer), when there is one.
    feature_id: str | None = None
    # A second MVT layer of the tile, from this zoom: one point inside each surface
    # (ST_PointOnSurface) with LABEL_PROPERTIES, where a map writes the name once (a surface cut
    # by the tiles' edges would otherwise be labelled once per tile it crosses).
    labels_from: int | None = None

    @property
    def label_layer(self) -> str:
        """The name of the label points' MVT layer: `communes_noms`."""
        return f"{self.collection}_noms"


LAYERS: dict[str, Layer] = {
    "sites": Layer(
        "sites", ("id", "name", "status", "population_total"), 0, cluster_below=9, feature_id="id"
    ),
    "actions": Layer("actions", ("id", "name", "place_type"), 2, feature_id="id"),
    "regions": Layer("regions", ("code", "name"), 2),
    "departements": Layer("departements", ("code", "name"), 2),
    "communes": Layer("communes", ("code", "name", "departement_code"), 2, min_zoom=8, labels_from=10),
}

# What a label point carries (when the caller may read them).
LABEL_PROPERTIES = ("code", "name")

# What a cluster carries: these names never clash with a site's own properties.
CLUSTER_PROPERTIES = ("count", "population", "status")
