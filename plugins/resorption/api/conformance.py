"""The conformance classes we implement beyond those pygeoapi declares for feature providers.

pygeoapi declares Features Parts 1–4 core classes, queryables and CQL2 text/basic. Our own
items route (`api/features.py`, `cql.py`) does more, and a client reads `/conformance` before
it sends a filter (QGIS 3.28 and later look for `…/features-3/1.0/conf/filter` and
`…/conf/features-filter`): each class below is backed by a test in tests/test_conformance.py
that uses it.
"""

from __future__ import annotations

import pygeoapi.api as core_api

FEATURES_3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"

CONFORMANCE_CLASSES = [
    # OGC API – Features – Part 3: Filtering (OGC 19-079r2).
    f"{FEATURES_3}/filter",
    f"{FEATURES_3}/features-filter",
    # CQL2 (OGC 21-065r2): the classes our compiler (resorption.cql) implements.
    *(
        f"{CQL2}/{name}"
        for name in (
            "cql2-text",
            "cql2-json",
            "basic-cql2",
            "advanced-comparison-operators",
            "case-insensitive-comparison",
            "accent-insensitive-comparison",
            "basic-spatial-functions",
            "basic-spatial-functions-plus",
            "spatial-functions",
            "temporal-functions",
            "array-functions",
            "property-property",
            "functions",
        )
    ),
]


def register() -> None:
    """Add our classes to pygeoapi's list once, whatever the number of apps built."""
    missing = [c for c in CONFORMANCE_CLASSES if c not in core_api.CONFORMANCE_CLASSES]
    core_api.CONFORMANCE_CLASSES.extend(missing)
