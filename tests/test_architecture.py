"""The house rules that a reader of the code relies on, checked on the source itself."""

from __future__ import annotations

import ast
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
