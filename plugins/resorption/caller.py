"""The caller: who acts, what the policy lets them do, and every transaction on their behalf.

A `Caller` is made once where a request, a job or a command starts (`Caller.of_request()` in
a face or a pygeoapi plugin, `Caller.of(principal, settings)` on the command line) and is
passed explicitly to whatever reads or writes. It is the only module that opens a
transaction as a principal (tests/test_architecture.py holds it to that):

- `reading()`: read-only, as the caller's reader role (column privileges) with its scopes
  (row-level security), on a streaming replica when one is fit (`replicas`);
- `exporting(within)`: the same, the read scopes narrowed to where the caller may export
  (`bulk.py`): exports, files and big pages;
- `writing()`: read-write, as the caller's writer role, with its write scopes, on the primary
  (the client's next reads wait for a replica to replay it, or go to the primary);
- `following_changes()`: the login role, for a page of the outbox of events (each event is then
  checked against what `reading()` returns);
- `keeping_jobs()`: the login role on the jobs of OGC API Processes, which row-level
  security shows to their owner (and to national administrators) only;
- `audit(...)`: one row of the audit log, written as the caller.
- `audit_read(...)`: the audit row of a sensitive read, queued for the process's batch.

`require` and `check_place` answer 403 in French before anything is written; the database
refuses the same things on its own (row-level security, column privileges).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from resorption import audit, bulk, read_audit
from resorption import settings as app_settings
from resorption.catalog import Collection, Field, load_catalog
from resorption.database import transaction
from resorption.errors import Forbidden
from resorption.identity import Principal, current_principal
from resorption.policy import NATION, Policy, Scope, load_policy

# Roles that see every job (the policy's national administrators).
JOB_ADMIN_ROLES = frozenset({"national_admin"})
NOUNS = {
    "sites": ("des sites", "un site"),
    "actions": ("des actions", "une action"),
    "site_comments": ("des messages sur les sites", "un message sur un site"),
    "action_comments": ("des messages sur les actions", "un message sur une action"),
}
VERBS = {
    "write": ("créer ni modifier", "écrire"),
    "close": ("fermer", "fermer"),
    "delete": ("supprimer", "supprimer"),
}


def current_settings() -> app_settings.Settings:
    """The settings of the app serving the running request (or job): each app has its own."""
    return current_app.config["RESORPTION_SETTINGS"]


@dataclass(frozen=True, slots=True)
class Caller:
    """One principal, with the policy, catalog and settings it acts under."""

    principal: Principal
    settings: app_settings.Settings
    policy: Policy
    catalog: Mapping[str, Collection]

    @classmethod
    def of(cls, principal: Principal, settings: app_settings.Settings) -> Caller:
        """The caller `principal`, under the policy and catalog `settings` name."""
        return cls(
            principal,
            settings,
            load_policy(settings.policy_path, settings.collections_dir),
            load_catalog(settings.collections_dir),
        )

    @classmethod
    def of_request(cls) -> Caller:
        """The caller of the running request (or job), as the app authenticated it."""
        return cls.of(current_principal(), current_settings())

    # -- what it may do ----------------------------------------------------------------

    @property
    def sites(self) -> Collection:
        """The catalog's `sites` collection."""
        return self.catalog["sites"]

    def may_read(self, collection: Collection) -> bool:
        """Whether the collection exists at all for this caller."""
        return self.policy.may_read(self.principal, collection)

    def readable_fields(self, collection: Collection) -> tuple[Field, ...]:
        """The fields of `collection` the caller may see, in catalog order."""
        return self.policy.readable_fields(self.principal, collection)

    def scope(self, collection: str, action: str = "read") -> Scope:
        """Where the caller may do `action` (read, write, close, delete) on `collection`."""
        if action == "read":
            return self.policy.scope(self.principal, collection)
        return self.policy.write_scope(self.principal, collection, action)

    def may_export(self) -> bool:
        """Whether the caller may export anything at all."""
        return bulk.may_export(self.policy, self.principal)

    def export_scope(self, within: Scope = NATION) -> Scope:
        """Where the caller may export (within `within`); 403 when nowhere at all."""
        return bulk.export_scope(self.policy, self.principal, within)

    def require(self, action: str, collection: str = "sites") -> None:
        """403 when the caller may not `action` (write, close, delete, export) anywhere."""
        if action == "export":
            self.export_scope()
            return
        if self.scope(collection, action).is_empty:
            plural, _ = NOUNS[collection]
            raise Forbidden(f"Votre rôle ne vous permet pas de {VERBS[action][0]} {plural}.")

    def check_place(self, departement: str | None, action: str = "write", collection: str = "sites") -> None:
        """403 when `departement` lies outside the caller's scope for `action`."""
        if departement is not None and not self.scope(collection, action).contains(departement):
            _, singular = NOUNS[collection]
            raise Forbidden(
                f"Vous n'avez pas le droit de {VERBS[action][1]} {singular} dans le département "
                f"{departement} : il est hors de votre territoire d'intervention."
            )

    # -- its transactions --------------------------------------------------------------

    def reading(
        self, planner: Mapping[str, str] | None = None, kind: str = "read", pipeline: bool = False
    ) -> Any:
        """A read-only transaction as the caller: its reader role, its scopes (and planner settings).

        `kind` names its timeouts (settings.Timeouts): "read", or "tile" for a map tile. With
        `pipeline`, the whole transaction is one round trip when its results are read after
        the block (`database.transaction`).
        """
        context = {**self.policy.db_settings(self.principal), **(planner or {})}
        return transaction(
            self.settings,
            context=context,
            role=self.policy.db_role(self.principal, context),
            kind=kind,
            replica=True,
            pipeline=pipeline,
        )

    def exporting(
        self, within: Scope = NATION, planner: Mapping[str, str] | None = None, pipeline: bool = False
    ) -> Any:
        """A read-only transaction whose read scopes are narrowed to where the caller may export
        (and to `within`, a territory it chose); 403 without the export right. `pipeline` as
        in `reading` (not with a server-side cursor)."""
        export = self.export_scope(within)
        context = {**bulk.context(self.policy, self.principal, export), **(planner or {})}
        return transaction(
            self.settings,
            context=context,
            role=self.policy.db_role(self.principal, context),
            kind="export",
            replica=True,
            pipeline=pipeline,
        )

    def writing(self) -> Any:
        """A read-write transaction as the caller's writer role (row-level security applies)."""
        context = self.policy.db_settings(self.principal)
        return transaction(
            self.settings,
            context=context,
            role=self.policy.db_write_role(self.principal, context),
            read_only=False,
            kind="write",
            changes_data=True,
        )

    def keeping_jobs(self, kind: str = "read") -> Any:
        """A read-write transaction on the caller's jobs (all of them for an administrator);
        `kind` "export" for the timeouts of storing a job's file."""
        every = not self.principal.is_anonymous and self.principal.role in JOB_ADMIN_ROLES
        context = {
            "resorption.jobs_owner": self.principal.username,
            "resorption.jobs_all": "on" if every else "off",
        }
        return transaction(self.settings, context=context, read_only=False, kind=kind)

    def looking_up(self) -> Any:
        """A transaction as the login role, for a directory lookup of privileges.APP_FUNCTIONS
        (a user who may be declared actor of a site): it reads no table itself."""
        return transaction(self.settings, context=self.policy.db_settings(self.principal), read_only=True)

    def account(self) -> Any:
        """A read-write transaction as the login role, for the account functions of
        privileges.APP_FUNCTIONS (sql/205_accounts_lifecycle.sql): they read the caller and, for an
        administrator, its reach and what it may grant from these settings, and check them inside."""
        context = {**self.policy.db_settings(self.principal), **self.policy.manage_settings(self.principal)}
        return transaction(self.settings, context=context, read_only=False, changes_data=True)

    def following_changes(self) -> Any:
        """A read-only transaction as the login role, for a page of the outbox (outbox_page, a
        function of privileges.APP_FUNCTIONS): the events are then checked by `reading()`."""
        return transaction(self.settings, context=self.policy.db_settings(self.principal), read_only=True)

    def audit_read(self, collection: str, item_id: Any, groups: set[str], count: int) -> None:
        """The audit row of a read of sensitive fields: queued, written within moments by the
        process's batch (read_audit.py), not in a transaction of the request's own."""
        queue = read_audit.of(self.settings, write_read_audits)
        queue.add(self.principal, collection, item_id, groups, count)

    def audit(
        self,
        action: str,
        collection: str,
        item_id: Any = None,
        groups: frozenset[str] | set[str] = frozenset(),
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One row of the audit log, written as the caller in a transaction of its own.

        The login role calls resorption.audit (SECURITY DEFINER); the settings name the user.
        One round trip (pipeline): the reads it follows are read-only, as their role is.
        """
        context = self.policy.db_settings(self.principal)
        with transaction(self.settings, context=context, read_only=False, pipeline=True) as conn:
            audit.write(conn, action, collection, None if item_id is None else str(item_id), groups, detail)

    def audit_many(
        self, entries: Iterable[tuple[str, str, Any, frozenset[str], dict[str, Any] | None]]
    ) -> None:
        """Rows of the audit log (action, collection, item id, groups, detail), written as the
        caller in one transaction: an import's thousands of writes, not a transaction each."""
        context = self.policy.db_settings(self.principal)
        with transaction(self.settings, context=context, read_only=False, pipeline=True) as conn:
            audit.write_many(
                conn,
                ((a, c, None if i is None else str(i), g, d) for a, c, i, g, d in entries),
            )


def write_read_audits(settings: app_settings.Settings, rows: list[dict[str, Any]]) -> None:
    """A batch of audit rows of reads (read_audit.py), in one transaction as the login role:
    each row names its own user and time (resorption.audit_reads)."""
    with transaction(settings, read_only=False, pipeline=True) as conn:
        audit.write_reads(conn, rows)
