"""What revisions share: a view defined again from its file of `sql/`."""

from importlib.resources.abc import Traversable

from resorption.migrate import run_sql


def replace_view(path: Traversable, view: str) -> None:
    """Inside a revision: define `view` again as the file at `path` defines it now (its columns
    unchanged), so that the revision and the file cannot differ."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"CREATE VIEW {view} ")
    end = text.index(";\n", start)
    run_sql("CREATE OR REPLACE VIEW" + text[start + len("CREATE VIEW") : end + 1])
