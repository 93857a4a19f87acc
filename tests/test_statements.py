"""Named statements: every `.sql` file of statements parses, and every name the code asks for exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from resorption import statements

PACKAGE = Path(statements.__file__).parent


def test_a_file_gives_its_statements_by_name() -> None:
    parsed = statements.parse(
        "x.sql",
        "-- The statements of x.\n\n-- name: first\n-- What it does.\nSELECT 1;\n\n-- name: second\nSELECT {}\n",
    )
    assert parsed.names() == ("first", "second")
    assert parsed.first.as_string(None) == "SELECT 1"
    assert parsed["second"].as_string(None) == "SELECT {}"
    with pytest.raises(AttributeError, match="no statement named 'third'"):
        parsed.third  # noqa: B018


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 1\n-- name: a\nSELECT 2", "before the first"),
        ("-- name: a\nSELECT 1\n-- name: a\nSELECT 2", "defined twice"),
        ("-- name: a\n-- nothing\n", "is empty"),
    ],
)
def test_a_malformed_file_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        statements.parse("x.sql", text)


def _asked_for() -> set[tuple[str, str]]:
    """(file, name) for every `statements.load("file").name` written in the package."""
    asked: set[tuple[str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        loaded: dict[str, str] = {}
        for node in ast.walk(tree):
            # NAME = statements.load("file")  /  NAME = load("file")
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                call = node.value
                func = call.func
                is_load = (isinstance(func, ast.Attribute) and func.attr == "load") or (
                    isinstance(func, ast.Name) and func.id == "load"
                )
                if is_load and call.args and isinstance(call.args[0], ast.Constant):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            loaded[target.id] = call.args[0].value
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in loaded:
                asked.add((loaded[node.value.id], node.attr))
    return asked


def test_every_statement_the_code_asks_for_exists() -> None:
    files = {path.stem for path in statements.DIRECTORY.glob("*.sql")}
    for path in statements.DIRECTORY.glob("*.sql"):
        statements.load(path.stem)  # parses
    missing = [
        f"{file}.{name}"
        for file, name in sorted(_asked_for())
        if file not in files or name not in statements.load(file).names()
    ]
    assert not missing, f"statements asked for but not written: {missing}"


def test_each_module_reads_its_own_file_and_each_file_is_read() -> None:
    """`sql/statements/harvest_runs.sql` belongs to `harvest/runs.py`: one file per module."""
    loaded: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        module = "_".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "statements"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                loaded[str(path.relative_to(PACKAGE))] = node.args[0].value
                assert node.args[0].value == module, f"{path.relative_to(PACKAGE)} reads {node.args[0].value}.sql"
    files = {path.stem for path in statements.DIRECTORY.glob("*.sql")}
    assert files == set(loaded.values()), f"files nobody reads: {files - set(loaded.values())}"
