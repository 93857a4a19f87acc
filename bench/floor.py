"""The SQL floor: the exact statements our server issues for a request, as a pgbench script.

Rather than rewriting our SQL here, the bench runs our own code path once per request (the
token lookup, then the provider's page or item in its transaction, then the audit row when
sensitive fields were read) with psycopg's `execute` traced, and writes each statement with
its parameters inlined. Each of our transactions becomes BEGIN … COMMIT in the script, as
psycopg sends it. pgbench then runs that script as fast as PostgreSQL alone can.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
from werkzeug.datastructures import MultiDict


@contextlib.contextmanager
def traced() -> Iterator[list[list[str]]]:
    """Record every statement (literal SQL) by transaction while the block runs."""
    transactions: list[list[str]] = []
    depth = {"n": 0}
    explicit = {"open": False}  # a pipelined transaction sends BEGIN and COMMIT itself
    execute = psycopg.Cursor.execute
    transaction = psycopg.Connection.transaction

    def traced_execute(self: psycopg.Cursor, query: Any, params: Any = None, **kw: Any) -> Any:
        literal = psycopg.ClientCursor(self.connection).mogrify(query, params)
        command = literal.strip().rstrip(";").upper()
        if command == "BEGIN":
            transactions.append([])
            explicit["open"] = True
        elif command == "COMMIT":
            explicit["open"] = False
        elif depth["n"] or explicit["open"]:
            transactions[-1].append(literal)
        else:  # outside any transaction: psycopg's implicit transaction, one statement
            transactions.append([literal])
        return execute(self, query, params, **kw)

    @contextlib.contextmanager
    def traced_transaction(self: psycopg.Connection, *a: Any, **kw: Any) -> Iterator[Any]:
        if not depth["n"]:
            transactions.append([])
        depth["n"] += 1
        try:
            with transaction(self, *a, **kw) as tx:
                yield tx
        finally:
            depth["n"] -= 1

    psycopg.Cursor.execute = traced_execute  # type: ignore[method-assign]
    psycopg.Connection.transaction = traced_transaction  # type: ignore[method-assign,assignment]
    try:
        yield transactions
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Connection.transaction = transaction  # type: ignore[method-assign]


def scripts(url: str, token: str, mix: dict[str, str]) -> dict[str, str]:
    """For each request path of our server, the pgbench script of its statements."""
    os.environ["DATABASE_URL"] = url
    from resorption import audit
    from resorption import settings as app_settings
    from resorption.catalog import load_catalog
    from resorption.database import close_pool
    from resorption.errors import ResorptionError

    close_pool()  # a pool of a previous dataset would point at another database
    settings = app_settings.Settings.from_env(url)
    catalog = load_catalog(settings.collections_dir)
    out: dict[str, str] = {}
    for key, path in mix.items():
        parts = urllib.parse.urlsplit(path)
        args = MultiDict(urllib.parse.parse_qsl(parts.query))
        segments = parts.path.strip("/").split("/")
        collection = catalog[segments[1]]
        audit.set_request(audit.RequestInfo("GET", path, "127.0.0.1"))
        try:
            transactions = _capture(settings, token, collection, segments, args)
        except ResorptionError as exc:  # e.g. over the statement timeout: no floor for this one
            print(f"plancher SQL de {key} non capturé : {exc.message}", flush=True)
            continue
        lines = []
        for statements in transactions:
            lines += ["BEGIN;", *(s.strip().rstrip(";") + ";" for s in statements), "COMMIT;"]
        out[key] = "\n".join(lines) + "\n"
    close_pool()
    return out


def _capture(settings: Any, token: str, collection: Any, segments: list[str], args: Any) -> list[list[str]]:
    """Run one request's code path (token, page or item, audit) and return its statements."""
    from resorption.authentication import authenticate
    from resorption.caller import Caller
    from resorption.params import parse_item, parse_items
    from resorption.reader import FeatureReader

    with traced() as transactions:
        principal = authenticate(f"Bearer {token}", "127.0.0.1", settings)
        reader = FeatureReader(Caller.of(principal, settings), collection)
        readable = reader.readable
        if len(segments) == 4:  # /collections/{id}/items/{itemId}
            from resorption.api.features_write import WRITABLE
            from resorption.editing import version_sql

            version = version_sql(collection) if collection.id in WRITABLE else None
            reader.feature_json(parse_item(collection, readable, args), segments[3], version)
        else:
            fq = parse_items(collection, readable, args, settings.limits)
            if "after" in args:
                fq = replace(fq, after=int(args["after"]))
            reader.page(fq)
    return transactions
