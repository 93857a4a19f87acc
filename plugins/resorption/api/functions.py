"""`/functions`: the CQL2 functions we add to the standard ones (OGC API Features Part 3).

A client (or a person reading the API) learns here that filters may use `S_DWITHIN`, a
distance on the ellipsoid, with its arguments; the list itself lives beside the compiler
(`cql.FUNCTIONS`). It says nothing of the data: public, like `/conformance`.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from resorption.cql import FUNCTIONS

blueprint = Blueprint("functions", __name__)


@blueprint.get("/functions")
def functions() -> Response:
    """The list of our CQL2 functions, as JSON."""
    return jsonify({"functions": list(FUNCTIONS)})
