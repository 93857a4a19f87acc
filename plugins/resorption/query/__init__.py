"""The one reader: every read of features is composed here, from the catalog.

The features API, the geographic files and spreadsheets, the statistics and the vector tiles
all read through these builders, so that a read of a collection is written once:

- `features`: a parsed request (`FeatureQuery`) as one statement, its GeoJSON built by
  PostgreSQL (`items_statement`, `item_statement`, `count_statement`), its rows as plain
  columns (`rows_statement`), its conditions for a statement that adds its own
  (`condition`, `where_clause`), and the table it reads (`source`, `history_source`);
- `tiles`: the one statement of a Mapbox vector tile (`tile_statement`).

Names are `psycopg.sql.Identifier`s or trusted catalog expressions; values are always
parameters (`Params`). Fixed statements that are not composed from the catalog live in
`sql/statements/*.sql` (`resorption.statements`).
"""

from resorption.query.features import (
    SCOPE_COLUMNS,
    SCOPE_VIEWS,
    SEARCH_CONFIG,
    Bbox,
    FeatureQuery,
    Interval,
    Params,
    condition,
    count_statement,
    history_source,
    item_statement,
    items_statement,
    order_clause,
    rows_statement,
    source,
    where_clause,
)
from resorption.query.tiles import tile_statement

__all__ = [
    "SCOPE_COLUMNS",
    "SCOPE_VIEWS",
    "SEARCH_CONFIG",
    "Bbox",
    "FeatureQuery",
    "Interval",
    "Params",
    "condition",
    "count_statement",
    "history_source",
    "item_statement",
    "items_statement",
    "order_clause",
    "rows_statement",
    "source",
    "tile_statement",
    "where_clause",
]
