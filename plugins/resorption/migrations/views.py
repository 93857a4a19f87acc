"""What revisions share: an object defined again from its file of `sql/`, so that the revision
and the file cannot differ."""

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
