"""The one write path: every write of a site or an action, whoever asks for it.

The editing routes (OGC API Features Part 4), the processes (closing, census, phases), the
spreadsheet import and the harvester all write here, in the same steps:

- placement: the commune a site's point lies in (when not given), the département of its
  commune, or the département of an action (`place`), found the one way for every writer;
- locking: an existing item is read once without a lock (404 when the caller cannot read
  it, 403 outside its scope) then locked once (`lock`), and its version compared with
  `If-Match` (412 when stale), so two editors never overwrite each other silently;
- the statements `editing.py` builds from the catalog: the history triggers make one new
  version per write, and its new version (ETag) is returned;
- the audit log, written after the commit through `Caller.audit`.

A `Writer` is one caller writing one collection. `create`, `update`, `delete` and
`changing_site` each open their transaction with `Caller.writing()`; `create_in` and
`update_in` write inside a transaction the import opened for a whole file (it audits its
rows after its commit). The harvester writes as the database owner, without a caller: it
uses the functions on a connection (`place`, `lock`, `insert_row`, `update_row`, `audit_in`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from resorption import audit, editing, statements
from resorption.action_results import INDICATORS
from resorption.caller import Caller
from resorption.catalog import Collection
from resorption.crs import DEFAULT, Crs
from resorption.editing import REMOVED, Change, Column, Mode
from resorption.errors import Forbidden, NotFound
from resorption.query import FeatureQuery, item_statement

SQL = statements.load("writing")
# What a caller outside the row-level security of an item is told it may not modify.
THIS = {"sites": "ce site", "actions": "cette action"}
# The journals: the property naming a message's parent, and the statement finding where the
# parent lies (as the caller reads it: no row for a parent it cannot read).
PARENTS = {
    "site_comments": ("site_id", "site_departement"),
    "action_comments": ("action_id", "action_departement"),
}
# What the author of a message is told past the delay (or anyone else): only the author edits
# and deletes, for a while; administrators moderate.
NOT_YOURS = (
    "Vous ne pouvez pas modifier ni supprimer ce message : seul son auteur le peut, pendant le "
    "délai prévu après l'avoir écrit ; les administrateurs le modèrent (masquer avec un motif)."
)
# The sensitive group of an action's finances (config/access-policy.yml).
FINANCES = "finances"
# A closing solution: (solution, people, households).
Solution = tuple[str, int | None, int | None]


# -- placement ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Where a geometry lies: its département and the commune of a point on it."""

    departement: str | None
    commune: str | None


def locate(conn: psycopg.Connection, collection: Collection, change: Change) -> Place:
    """Check the change's geometry in PostGIS (valid, in France) and find where it lies."""
    if change.geometry is None:
        return Place(None, None)
    statement, params = editing.place_statement(collection, change)
    valid, reason, departement, commune = conn.execute(statement, params).fetchone()
    if not valid:
        change.error("geometry", f"géométrie invalide ({reason}).")
        return Place(None, None)
    if departement is None:
        change.error("geometry", "l'emplacement n'est dans aucun département français.")
    return Place(departement, commune)


def commune_departement(conn: psycopg.Connection, code: str) -> str | None:
    """The département of a commune, or None when the code is unknown."""
    row = conn.execute(SQL.commune_departement, (code,)).fetchone()
    return row[0] if row else None


def departement_exists(conn: psycopg.Connection, code: str) -> bool:
    """Whether `code` is a département."""
    return conn.execute(SQL.departement_exists, (code,)).fetchone() is not None


def place(
    conn: psycopg.Connection, collection: Collection, change: Change, current: str | None
) -> str | None:
    """The département the written item will lie in (`current`: where it lies now).

    A site lies in the département of its commune; a commune not given is the one of its
    point. An action names its département, or takes the one of its footprint. Problems are
    noted in `change`.
    """
    if collection.id in PARENTS:
        return place_message(conn, collection, change, current)
    found = locate(conn, collection, change)
    values = change.values
    if collection.id == "sites":
        commune = values.get("commune_code")
        if commune is REMOVED or (commune is None and change.geometry is not None):
            if found.commune is None:
                if change.geometry is not None and not change.errors:
                    change.error("geometry", "l'emplacement n'est dans aucune commune française.")
                values.pop("commune_code", None)
            else:
                values["commune_code"] = commune = found.commune
        if isinstance(commune, str):
            departement = commune_departement(conn, commune)
            if departement is None:
                change.error("commune_code", f"commune « {commune} » inconnue.")
            return departement
        return current
    departement = values.get("departement_code")
    if departement is REMOVED or (departement is None and current is None):
        if found.departement is None:
            if change.geometry is None:
                change.error("departement_code", "valeur obligatoire (ou donnez une emprise en France).")
            values.pop("departement_code", None)
            return None
        values["departement_code"] = found.departement
        return found.departement
    if isinstance(departement, str):
        if not departement_exists(conn, departement):
            change.error("departement_code", f"département « {departement} » inconnu.")
        return departement
    return current


def place_message(
    conn: psycopg.Connection, collection: Collection, change: Change, current: str | None
) -> str | None:
    """A journal message lies where its parent (site or action) does, which the caller must
    read; a message stays on its parent (the database keeps it there too)."""
    prop, statement = PARENTS[collection.id]
    parent = change.values.get(prop)
    if current is not None:
        if prop in change.given:
            change.error(prop, "un message reste attaché à son parent : écrivez-en un autre.")
        return current
    if not isinstance(parent, int):
        change.error(prop, "valeur obligatoire.")
        return None
    row = conn.execute(SQL[statement], (parent,)).fetchone()
    if row is None:
        change.error(prop, f"« {parent} » n'existe pas ou vous ne pouvez pas le lire.")
        return None
    return row[0]


# -- rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    """What a write knows of an existing item: where it lies, its status, its version (ETag),
    and the values of the columns it asked for."""

    key: int
    departement: str | None
    status: str | None
    version: str
    values: Mapping[str, Any] = field(default_factory=dict)


def _head(
    conn: psycopg.Connection, collection: Collection, key: int, lock: bool, columns: Sequence[str]
) -> Head | None:
    row = conn.execute(editing.head_statement(collection, lock, columns), (key,)).fetchone()
    if row is None:
        return None
    return Head(key, row[0], row[1], row[2], dict(zip(columns, row[3:], strict=True)))


def peek(conn: psycopg.Connection, collection: Collection, key: int) -> Head | None:
    """The item as the connection's role reads it, unlocked; None when it cannot."""
    return _head(conn, collection, key, False, ())


def lock(
    conn: psycopg.Connection, collection: Collection, key: int, columns: Sequence[str] = ()
) -> Head | None:
    """The item locked for update (and `columns`); None when the role may not update it."""
    return _head(conn, collection, key, True, columns)


def insert_row(
    conn: psycopg.Connection, collection: Collection, columns: Mapping[str, Column], change: Change
) -> tuple[int, str]:
    """INSERT a validated change; its id and version (the triggers write its first version)."""
    statement, params = editing.insert_statement(collection, columns, change)
    with editing.write_errors(collection):
        identifier, version = conn.execute(statement, params).fetchone()
    return identifier, version


def update_row(
    conn: psycopg.Connection, collection: Collection, columns: Mapping[str, Column], change: Change, key: int
) -> str:
    """UPDATE one locked item with a validated change, as one statement; its new version."""
    statement, params = editing.update_statement(collection, columns, change, key)
    with editing.write_errors(collection):
        (version,) = conn.execute(statement, params).fetchone()
    return version


def audit_in(
    conn: psycopg.Connection,
    action: str,
    collection: Collection,
    key: Any,
    change: Change | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row in the open transaction (for a writer without a caller: the harvest)."""
    groups = change.groups(collection) if change else frozenset()
    audit.write(conn, action, collection.id, str(key), groups, detail)


def sites_with_reference(conn: psycopg.Connection, reference: str) -> list[int]:
    """The ids of the sites (that the role reads) with this external reference, two at most."""
    return [row[0] for row in conn.execute(SQL.sites_with_reference, (reference,)).fetchall()]


# -- one caller writing --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """A write done: the item's id, its new version (ETag), and the change written."""

    key: int
    version: str
    change: Change


@dataclass(slots=True)
class SiteChange:
    """What a process writes to one locked site: values by column, closing solutions."""

    head: Head
    columns: Mapping[str, Column]
    change: Change = field(default_factory=Change)
    # None: the closing solutions are left as they are; a list replaces them.
    solutions: list[Solution] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    version: str = ""

    def set(self, **values: Any) -> None:
        """Write these values (REMOVED: the column's default)."""
        self.change.values.update(values)
        self.change.given.update(values)


def require_finances(caller: Caller) -> None:
    """403 when the caller may not read (so neither write) the finances of actions."""
    if FINANCES not in caller.policy.readable_groups(caller.principal):
        raise Forbidden("Votre rôle ne vous permet pas de lire ni d'écrire les financements des actions.")


@dataclass(frozen=True, slots=True)
class FinanceLine:
    """One line of an action's finances for a year: a funder, its budget, spent and details."""

    funding_type: str
    budget: Decimal
    spent: Decimal | None = None
    details: str | None = None


@dataclass(slots=True)
class ActionResults:
    """A locked action whose results a process records (`Writer.recording_results`)."""

    conn: psycopg.Connection
    collection: Collection
    head: Head
    departements: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)
    version: str = ""

    def record_indicators(self, measured_at: date, values: Mapping[str, int | None]) -> bool:
        """The snapshot of `measured_at`, new or replacing that date's whole (a figure not given
        is unknown); True when it is new. Its history trigger makes a version."""
        params = {name: values.get(name) for name in INDICATORS}
        with editing.write_errors(self.collection):
            (inserted,) = self.conn.execute(
                SQL.record_indicators, {"action_id": self.head.key, "measured_at": measured_at, **params}
            ).fetchone()
        return bool(inserted)

    def record_finances(self, year: int, lines: Sequence[FinanceLine]) -> None:
        """The finance lines of `year`: these, and no other (a funder not named is removed).
        Each line changed, added or removed makes a version in its history."""
        with editing.write_errors(self.collection):
            self.conn.execute(
                SQL.delete_other_finances, (self.head.key, year, [x.funding_type for x in lines])
            )
            for line in lines:
                self.conn.execute(
                    SQL.record_finance_line,
                    {
                        "action_id": self.head.key,
                        "year": year,
                        "funding_type": line.funding_type,
                        "budget": line.budget,
                        "spent": line.spent,
                        "details": line.details,
                    },
                )


class Writer:
    """One caller writing one collection (sites or actions)."""

    def __init__(self, caller: Caller, collection: Collection) -> None:
        self.caller = caller
        self.collection = collection
        self.readable = caller.readable_fields(collection)

    def require(self, action: str = "write") -> None:
        """403 when the caller may not do `action` anywhere in the collection."""
        self.caller.require(action, self.collection.id)

    def check_place(self, departement: str | None, action: str = "write") -> None:
        """403 when `departement` is outside the caller's scope for `action`."""
        self.caller.check_place(departement, action, self.collection.id)

    def not_found(self, identifier: Any) -> NotFound:
        """The 404 of an item the caller cannot read (or that does not exist)."""
        return NotFound(
            f"L'élément « {identifier} » n'existe pas dans la collection « {self.collection.id} »."
        )

    def columns(self, conn: psycopg.Connection) -> dict[str, Column]:
        """The columns of the collection's table."""
        return editing.table_columns(conn, self.collection.table)

    def audit(
        self, action: str, key: Any, change: Change | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """The audit row of a committed write, with the sensitive groups it wrote."""
        groups = change.groups(self.collection) if change else frozenset()
        self.caller.audit(action, self.collection.id, key, groups, detail)

    # -- the steps, inside an open transaction ----------------------------------------------

    def lock(
        self,
        conn: psycopg.Connection,
        key: int,
        action: str = "write",
        if_match: str | None = None,
        columns: Sequence[str] = (),
    ) -> Head:
        """The item locked for `action`: 404 when unreadable, 403 outside the caller's scope,
        412 when `if_match` names another version."""
        seen = peek(conn, self.collection, key)
        if seen is None:
            raise self.not_found(key)
        self.check_place(seen.departement, action)
        if action == "close":  # closing is a write too (the database checks both)
            self.check_place(seen.departement, "write")
        head = lock(conn, self.collection, key, columns)
        if head is None:  # row-level security: readable, not writable by this caller
            if self.collection.id in PARENTS:
                raise Forbidden(NOT_YOURS)
            raise Forbidden(f"Vous n'avez pas le droit de modifier {THIS[self.collection.id]}.")
        editing.if_match(if_match, head.version)
        return head

    def current(self, conn: psycopg.Connection, key: int) -> dict[str, Any]:
        """The item as the caller reads it (GeoJSON): a PUT may send read-only values back."""
        statement, params = item_statement(
            FeatureQuery(collection=self.collection, readable=self.readable), key
        )
        return orjson.loads(conn.execute(statement, params).fetchone()[0])

    def check_close(self, change: Change, departement: str | None, old_status: str | None) -> None:
        """403 when the change closes a site where the caller may not close."""
        status = change.values.get("status")
        if self.collection.id != "sites" or not isinstance(status, str) or status == "open":
            return
        if old_status in (None, "open"):
            self.check_place(departement, "close")

    def patch_of(self, site: SiteChange, body: Mapping[str, Any]) -> Change:
        """A merge patch of a locked site, checked like an edit (problems in `Change.errors`)."""
        return editing.validate(self.collection, self.readable, site.columns, body, Mode.PATCH, DEFAULT)

    def create_in(self, conn: psycopg.Connection, body: Mapping[str, Any], crs: Crs = DEFAULT) -> Written:
        """Validate, place and insert a new item (GeoJSON Feature) in the open transaction."""
        columns = self.columns(conn)
        change = editing.validate(self.collection, self.readable, columns, body, Mode.CREATE, crs)
        departement = place(conn, self.collection, change, None)
        change.fail_if_invalid()
        self.check_place(departement)
        self.check_close(change, departement, None)
        key, version = insert_row(conn, self.collection, columns, change)
        return Written(key, version, change)

    def update_in(
        self,
        conn: psycopg.Connection,
        head: Head,
        body: Mapping[str, Any],
        mode: Mode,
        crs: Crs = DEFAULT,
        current: Mapping[str, Any] | None = None,
    ) -> Written:
        """Validate, place and write a PUT or merge patch over a locked item (`current`: the
        item as read, when the caller already has it)."""
        columns = self.columns(conn)
        if current is None:
            current = self.current(conn, head.key)
        change = editing.validate(self.collection, self.readable, columns, body, mode, crs, current)
        departement = place(conn, self.collection, change, head.departement)
        change.fail_if_invalid()
        self.check_place(departement)
        self.check_close(change, departement, head.status)
        return Written(head.key, update_row(conn, self.collection, columns, change, head.key), change)

    # -- whole writes: one transaction each, audited after the commit ----------------------

    def create(self, body: Mapping[str, Any], crs: Crs = DEFAULT) -> Written:
        """Create an item: its id and version."""
        self.require("write")
        with self.caller.writing() as conn:
            written = self.create_in(conn, body, crs)
            if self.collection.id == "sites":
                conn.execute(SQL.follow_created_site, (written.key,))
                # Following it is part of what the site shows its creator: its version too.
                head = peek(conn, self.collection, written.key)
                if head is not None:
                    written = replace(written, version=head.version)
        self.audit("create", written.key, written.change)
        return written

    def update(
        self, key: int, body: Mapping[str, Any], mode: Mode, crs: Crs = DEFAULT, if_match: str | None = None
    ) -> Written:
        """Replace (PUT) or patch (merge patch) an item: its new version."""
        self.require("write")
        with self.caller.writing() as conn:
            head = self.lock(conn, key, "write", if_match)
            written = self.update_in(conn, head, body, mode, crs)
        self.audit("update", key, written.change)
        return written

    def delete(self, key: int, if_match: str | None = None) -> None:
        """Delete an item."""
        self.require("delete")
        with self.caller.writing() as conn:
            self.lock(conn, key, "delete", if_match)
            with editing.write_errors(self.collection):
                deleted = conn.execute(editing.delete_statement(self.collection), (key,)).fetchone()
            if deleted is None:  # row-level security said no
                raise Forbidden(
                    NOT_YOURS
                    if self.collection.id in PARENTS
                    else "Vous n'avez pas le droit de supprimer cet élément."
                )
        self.audit("delete", key)

    @contextmanager
    def changing_site(
        self, key: int, action: str = "write", columns: Sequence[str] = (), if_match: str | None = None
    ) -> Iterator[SiteChange]:
        """Lock a site for a process, which checks it and says what to write (`SiteChange`);
        then write it as one update (one new version in its history), replace its closing
        solutions when given, commit, and audit (`close` for a closing, else `update`).

        The process raises inside the block to refuse: nothing is written. The new version is
        `SiteChange.version` after the block.
        """
        self.require(action)
        with self.caller.writing() as conn:
            head = self.lock(conn, key, action, if_match, columns)
            site = SiteChange(head, self.columns(conn))
            yield site
            site.change.fail_if_invalid()
            site.version = update_row(conn, self.collection, site.columns, site.change, key)
            if site.solutions is not None:
                with editing.write_errors(self.collection):
                    conn.execute(SQL.delete_closing_solutions, (key,))
                    for solution, people, households in site.solutions:
                        conn.execute(SQL.insert_closing_solution, (key, solution, people, households))
        self.caller.audit(
            "close" if action == "close" else "update", self.collection.id, key, detail=site.detail
        )

    @contextmanager
    def recording_results(
        self, key: int, finances: bool = False, if_match: str | None = None, columns: Sequence[str] = ()
    ) -> Iterator[ActionResults]:
        """Lock an action for a process that records its results (indicators, or `finances`),
        then move its update stamp (the item shows its latest results: its version, the ETag,
        changes), commit, and audit an update of the action.

        Refused as any write of the action (404 unreadable, 403 outside the write scope, 412
        when `if_match` names another version; `columns`: the action's values the process
        checks against, in `head.values`), and 403 when one of the action's départements
        lies outside the caller's write scope, or for finances without the finances group. The
        new version is `ActionResults.version` after the block.
        """
        if self.collection.id != "actions":
            raise ValueError("only actions have results")
        self.require("write")
        if finances:
            require_finances(self.caller)
        with self.caller.writing() as conn:
            head = self.lock(conn, key, "write", if_match, columns)
            departements = tuple(row[0] for row in conn.execute(SQL.action_departements, (key,)))
            for departement in departements:
                self.check_place(departement)
            results = ActionResults(conn, self.collection, head, departements)
            yield results
            with editing.write_errors(self.collection):
                (results.version,) = conn.execute(editing.touch_statement(self.collection), (key,)).fetchone()
        groups = frozenset({FINANCES}) if finances else frozenset()
        self.caller.audit("update", self.collection.id, key, groups, results.detail)

    def confirm(self, key: int, if_match: str | None = None) -> str:
        """« Toujours d'actualité »: stamp the site's `confirmed_at` with the present instant and
        nothing else, so that its history records a `confirm` version (sql/080_history.sql);
        where the caller may write, like any change. Its new version (ETag)."""
        with self.changing_site(key, "write", if_match=if_match) as site:
            site.set(confirmed_at=dt.datetime.now(dt.UTC))
            site.detail = {"confirmed": True}
        return site.version
