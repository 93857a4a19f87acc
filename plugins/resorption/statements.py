"""Named SQL statements, kept in `.sql` files rather than in Python strings.

A module's fixed statements live in `sql/statements/<module>.sql`, each after a
`-- name: <name>` line (the comments under it say what it does), the way yesql and
aiosql keep them:

    -- name: session_of
    -- The live session of a token hash, with its account.
    SELECT ... WHERE token_hash = %(token_hash)s

`load("sessions").session_of` is a `psycopg.sql.SQL`, ready for `conn.execute`; a statement
that needs names (a table, a column) carries `{}` placeholders filled with
`.format(sql.Identifier(...))`. Statements composed from the catalog (features, writes,
tiles) are built by `query.py` and `editing.py`, not written here.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from psycopg import sql

DIRECTORY = Path(__file__).parent / "sql" / "statements"
_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Statements:
    """The statements of one file, by name (`statements.name` or `statements["name"]`)."""

    def __init__(self, source: str, by_name: dict[str, sql.SQL]) -> None:
        self._source = source
        self._by_name = by_name

    def __getattr__(self, name: str) -> sql.SQL:
        try:
            return self._by_name[name]
        except KeyError:
            raise AttributeError(f"{self._source}: no statement named {name!r}") from None

    def __getitem__(self, name: str) -> sql.SQL:
        return getattr(self, name)

    def names(self) -> tuple[str, ...]:
        """The names of the statements, in file order."""
        return tuple(self._by_name)


def parse(source: str, text: str) -> Statements:
    """The statements of `text` (the contents of the file `source`)."""
    parts = _HEADER.split(text)
    if parts[0].strip() and not all(line.startswith("--") for line in parts[0].strip().splitlines()):
        raise ValueError(f"{source}: SQL before the first `-- name:` line")
    by_name: dict[str, sql.SQL] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        statement = "\n".join(lines).strip().rstrip(";").strip()
        if name in by_name:
            raise ValueError(f"{source}: statement {name!r} defined twice")
        if not statement:
            raise ValueError(f"{source}: statement {name!r} is empty")
        by_name[name] = sql.SQL(statement)  # type: ignore[arg-type]  # text from our own files
    return Statements(source, by_name)


@functools.cache
def load(module: str) -> Statements:
    """The statements of `sql/statements/<module>.sql` (read once per process)."""
    path = DIRECTORY / f"{module}.sql"
    return parse(path.name, path.read_text(encoding="utf-8"))
