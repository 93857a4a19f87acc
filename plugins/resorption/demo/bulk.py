"""Bulk writing: rows streamed with COPY, and ids reserved ahead from a table's identity."""

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from resorption import statements

SQL = statements.load("demo_bulk")


def copy_rows(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    schema: str | None = "resorption",
) -> None:
    """Stream rows into a table with COPY."""
    target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    statement = SQL.copy_rows.format(table=target, columns=sql.SQL(", ").join(map(sql.Identifier, columns)))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def reserve_ids(conn: psycopg.Connection, table: str, n: int) -> list[int]:
    """Take `n` ids from a table's identity, so that children can refer to rows not yet sent."""
    return sorted(row[0] for row in conn.execute(SQL.reserve_ids, (f"resorption.{table}", n)))
