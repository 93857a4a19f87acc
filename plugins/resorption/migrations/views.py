"""What revisions share: an object defined again from its file of `sql/`, so that the revision
and the file cannot differ."""

import re
from importlib.resources.abc import Traversable

from resorption.migrate import run_sql


def definition(path: Traversable, head: str) -> str:
    """The statement of the file at `path` that begins with `head`, up to its semicolon (the one
    after its `$$` body, for a function)."""
    text = path.read_text(encoding="utf-8")
    start = text.index(head)
    end = text.index(";\n", start)
    body = text.find("$$", start)
    if body != -1 and body < end:  # a function: its body holds semicolons of its own
        end = text.index(";\n", text.index("$$", body + 2) + 2)
    return text[start : end + 1]


def replace_view(path: Traversable, view: str) -> None:
    """Inside a revision: define `view` again as the file at `path` defines it now (its columns
    unchanged)."""
    run_sql("CREATE OR REPLACE VIEW" + definition(path, f"CREATE VIEW {view} ").removeprefix("CREATE VIEW"))


def replace_function(path: Traversable, function: str) -> None:
    """Inside a revision: define `function` (its qualified name) again as the file at `path`
    defines it now (its arguments and result unchanged)."""
    text = definition(path, f"CREATE FUNCTION {function}(")
    run_sql(text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))


def read_policy(path: Traversable, table: str, name: str = "read") -> str:
    """The statement of the read policy `name` of `table` as the file at `path` defines it now,
    to drop and create again."""
    found = re.search(
        rf"^CREATE POLICY {name} ON resorption\.{table} FOR SELECT( TO \w+)?\n.*?;\n",
        path.read_text(encoding="utf-8"),
        re.MULTILINE | re.DOTALL,
    )
    if found is None:
        raise LookupError(f"politique de lecture {name} de {table} introuvable dans {path.name}")
    return f"DROP POLICY IF EXISTS {name} ON resorption.{table};\n" + found.group(0)
