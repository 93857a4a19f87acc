"""The one reader: every read of features is composed by `resorption.query`, from the catalog.

The side readers (geographic files, the actions export, the statistics, the tiles, the sites
spreadsheet) write no SQL of their own: they compose through the builder, and their fixed
statements are named `.sql` files. French time and `Params` are defined once.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from resorption import query
from resorption.crs import DEFAULT
from resorption.query import FeatureQuery, Params, condition, history_source, rows_statement, tile_statement
from resorption.tile_layers import LAYERS
from tests.fix_users import CATALOG

PACKAGE = Path(query.__file__).resolve().parents[1]
# The modules that read features beside the features API.
SIDE_READERS = (
    "geoexport.py",
    "api/tiles.py",
    "tile_layers.py",
    "processes/export_actions.py",
    "processes/territory_statistics.py",
    "spreadsheets/export.py",
)
SQL_WORDS = ("SELECT ", "FROM ", "WHERE ", "ST_", "JOIN ")


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module but its docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize("module", SIDE_READERS)
def test_side_readers_write_no_sql(module: str) -> None:
    """Their SQL is composed by the builder or named in `sql/statements/*.sql`."""
    path = PACKAGE / module
    found = [(line, text) for line, text in _strings(path) if any(word in text for word in SQL_WORDS)]
    assert found == []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    composed = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "SQL"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sql"
    ]
    assert composed == []


@pytest.mark.parametrize("name", ["PARIS", "today", "Params"])
def test_defined_once(name: str) -> None:
    """French time lives in `resorption.clock`, query parameters in the builder."""
    places = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = (
                [t.id for t in node.targets if isinstance(t, ast.Name)]
                if isinstance(node, ast.Assign)
                else [node.target.id]
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                else [node.name]
                if isinstance(node, ast.FunctionDef | ast.ClassDef)
                else []
            )
            if name in targets:
                places.append(str(path.relative_to(PACKAGE)))
    assert places == (["clock.py"] if name != "Params" else ["query/features.py"])


def test_rows_are_plain_columns_in_the_requested_order() -> None:
    """Files get the geometry as WKB first, spreadsheets only the fields; both in id order."""
    sites = CATALOG["sites"]
    fields = tuple(sites.fields[n] for n in ("id", "name", "status"))
    fq = FeatureQuery(collection=sites, readable=fields)
    with_geometry, params = rows_statement(fq, geometry=DEFAULT)
    text = with_geometry.as_string(None)
    assert text.startswith(
        'SELECT ST_AsBinary(t."location"), t."id", t."name", t."status" FROM "resorption"."sites" t'
    )
    assert text.endswith('ORDER BY t."id"')
    assert params == {}
    plain, _ = rows_statement(fq)
    assert plain.as_string(None).startswith('SELECT t."id", t."name", t."status" FROM')


def test_conditions_serve_statements_that_add_their_own() -> None:
    """No condition reads TRUE; an equality on a catalog field becomes a parameter."""
    sites = CATALOG["sites"]
    params = Params(start="2020-01-01")
    assert condition(FeatureQuery(collection=sites, readable=()), params).as_string(None) == "TRUE"
    territory = FeatureQuery(collection=sites, readable=(), equals=((sites.fields["region_code"], "75"),))
    assert condition(territory, params).as_string(None) == 't."region_code" = %(p1)s'
    assert params == {"start": "2020-01-01", "p1": "75"}
    assert history_source(sites).as_string(None) == '"resorption"."sites_history"'
    with pytest.raises(ValueError):
        history_source(CATALOG["regions"])


@pytest.mark.parametrize("collection", sorted(LAYERS))
def test_tiles_read_the_catalog_table(collection: str) -> None:
    """The tile reads the collection's table and geometry column as the catalog names them."""
    c = CATALOG[collection]
    layer = LAYERS[collection]
    statement, params = tile_statement(c, layer, layer.properties, 10, 1, 2)
    text = statement.as_string(None)
    assert f"FROM {c.table_sql.as_string(None)} t" in text
    assert f"{c.geometry_expression.as_string(None)} && b.search" in text
    assert params["layer"] == collection
