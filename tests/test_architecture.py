"""The house rules that a reader of the code relies on, checked on the source itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "resorption"
# The caller opens every transaction that touches data; the database module defines it.
TRANSACTION_OPENERS = {"caller.py", "database.py"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_only_the_caller_opens_transactions() -> None:
    """No module but `caller` imports or calls `database.transaction`: every transaction that
    touches data is a caller's (its role, its scopes), opened in one place."""
    offenders = []
    for path in _modules():
        if path.name in TRANSACTION_OPENERS and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            imports = (
                isinstance(node, ast.ImportFrom)
                and node.module == "resorption.database"
                and any(alias.name == "transaction" for alias in node.names)
            )
            calls = (
                isinstance(node, ast.Attribute)
                and node.attr == "transaction"
                and isinstance(node.value, ast.Name)
                and node.value.id == "database"
            )
            if imports or calls:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_no_module_sets_a_role_by_hand() -> None:
    """No statement outside the database module takes a role (`SET ROLE`, `set_config('role'`)."""
    offenders = []
    for path in _modules():
        if path.name == "database.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    text = " ".join(arg.value.upper().split())
                    if "SET ROLE" in text or "SET LOCAL ROLE" in text or "SET_CONFIG('ROLE'" in text:
                        offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_two_apps_with_their_own_settings_live_in_one_process(database_url: str) -> None:
    """`create_app(settings)` changes nothing global: each app answers with its own settings."""
    from dataclasses import replace

    from resorption.app import create_app
    from resorption.settings import Settings

    settings = Settings.from_env(database_url)
    first = create_app(replace(settings, public_url="https://premier.example.gouv.fr"))
    second = create_app(replace(settings, public_url="https://second.example.gouv.fr/resorption"))
    for app, url in (
        (first, "https://premier.example.gouv.fr"),
        (second, "https://second.example.gouv.fr/resorption"),
    ):
        body = app.test_client().get("/collections/regions/items?limit=1").get_json()
        assert all(link["href"].startswith(url) for link in body["links"]), body["links"]
        landing = app.test_client().get("/?f=json").get_json()
        ours = [link["href"] for link in landing["links"] if link["rel"] in ("self", "data", "conformance")]
        assert ours and all(href.startswith(url) for href in ours), ours


# -- layers ------------------------------------------------------------------------------
# Who may import whom: the core knows nothing of pygeoapi's plugins, the plugins nothing of
# the faces, the faces nothing of the app that wires them; the command line starts the app.
LAYERS = ("core", "plugins", "faces", "app", "cli")
FACES = ("api", "web")
PLUGINS = ("providers", "processes")
# The HTML helpers every page shares (pygeoapi's pages served by api/ included).
SHARED_HTML = {"resorption.web", "resorption.web.display", "resorption.web.vendor", "resorption.web.navigation"}
# Leaves: what every module may import, which imports (almost) nothing of ours.
LEAVES = {"resorption.errors": set(), "resorption.settings": {"resorption.errors"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def _layer(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top == "app":
        return "app"
    if top == "cli":
        return "cli"
    if top in FACES:
        return "faces"
    if top in PLUGINS:
        return "plugins"
    return "core"


def _ours(name: str) -> bool:
    relative = PACKAGE.parent.joinpath(*name.split("."))
    return relative.with_suffix(".py").exists() or (relative / "__init__.py").exists()


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "resorption":
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names if _ours(n)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "resorption"]
    return found


def test_imports_run_from_the_faces_to_the_core() -> None:
    """core ← plugins (providers/, processes/) ← faces (api/, web/) ← app ← cli: a module imports
    only from its own layer or those below; the two faces do not import each other (but for the
    HTML helpers of web/), and errors/settings import nothing of ours but each other."""
    offenders = []
    for path in _modules():
        module = _module_name(path)
        layer = _layer(module)
        for line, target in _imports(path):
            if target == module:
                continue
            target_layer = _layer(target)
            upward = LAYERS.index(target_layer) > LAYERS.index(layer)
            across = (
                layer == "faces"
                and target_layer == "faces"
                and target.split(".")[1] != module.split(".")[1]
                and target not in SHARED_HTML
            )
            leaf = module in LEAVES and target not in LEAVES[module]
            if upward or across or leaf:
                offenders.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    assert offenders == []


def test_no_private_name_is_imported_from_another_module() -> None:
    """`_name` is a module's own business: nobody imports it."""
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("resorption"):
                offenders += [
                    f"{path.relative_to(PACKAGE)}:{node.lineno} {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert offenders == []


# -- SQL text ----------------------------------------------------------------------------
# The builders compose statements from the catalog and the policy with psycopg.sql; every
# other statement is a named one in sql/statements/<module>.sql (resorption.statements).
SQL_BUILDERS = {"query", "cql.py", "editing.py", "privileges.py"}
SQL_TEXT = re.compile(
    r"(?is)^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|GRANT|REVOKE|LOCK|TRUNCATE|SET|"
    r"NOTIFY|LISTEN|COPY|VACUUM|ANALYZE)\s+\S|\bFROM\s+resorption\w*\."
)


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_sql_text_outside_the_builders_and_the_statement_files() -> None:
    """A statement is read where it is named (sql/statements/) or composed (the builders)."""
    offenders = []
    for path in _modules():
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in SQL_BUILDERS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
            if text is not None and id(node) not in docstrings and SQL_TEXT.search(text):
                offenders.append(f"{relative}:{node.lineno} {text.strip()[:60]!r}")
    assert offenders == []
