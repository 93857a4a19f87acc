"""Bulk reads are exports: the policy's export right governs them, through the database scope.

An export process (`export-sites`, `export-collection`, `export-actions`), items in a file
format (`f=csv`) and a page larger than the bulk threshold all hand data over in bulk.
Each one reads in a transaction whose row-level security scopes
(`resorption.sites_scope`, `resorption.actions_scope`) are the caller's read scopes
narrowed to its export scope (the role's `export`: the nation, its area or nowhere), and
to a territory the caller chose, if any: `context` builds those settings, and
`Caller.exporting` opens that transaction (`FeatureProvider.exporting` reads features
through it). PostgreSQL then enforces the export area exactly as it enforces reading;
nothing is filtered in Python.
A caller without the export right gets one French 403 (`export_scope`).
"""

from __future__ import annotations

from resorption.errors import Forbidden
from resorption.identity import Principal
from resorption.policy import NATION, PROTECTED, Policy, Scope

# The read scopes row-level security reads (sql/005_row_security.sql), by collection.
READ_SCOPES = ("sites", "actions")

NO_EXPORT = (
    "Votre rôle ne vous permet pas d'exporter des données (processus d'export, fichiers comme "
    "f=csv) : consultez-les en ligne (f=json ou f=html), page par page, ou demandez à "
    "l'administrateur de votre territoire un rôle qui permet d'exporter."
)


def narrow(a: Scope, b: Scope) -> Scope:
    """Where both scopes reach."""
    if a.nation:
        return b
    if b.nation:
        return a
    return Scope(nation=False, departements=a.departements & b.departements)


def may_export(policy: Policy, principal: Principal) -> bool:
    """Whether the caller may export anything at all."""
    return not policy.export_scope(principal).is_empty


def export_scope(policy: Policy, principal: Principal, within: Scope = NATION) -> Scope:
    """Where the caller may export, within `within` (a territory it chose); 403 when nowhere at all."""
    scope = policy.export_scope(principal)
    if scope.is_empty:
        raise Forbidden(NO_EXPORT)
    return narrow(scope, within)


def read_scope(policy: Policy, principal: Principal, collection: str, export: Scope) -> Scope:
    """Where a bulk read of `collection` reaches: the read scope narrowed to `export`."""
    return narrow(policy.scope(principal, collection), export)


def context(policy: Policy, principal: Principal, export: Scope) -> dict[str, str]:
    """The caller's transaction settings with its read scopes narrowed to `export`."""
    settings = dict(policy.db_settings(principal))
    for collection in READ_SCOPES:
        scope = read_scope(policy, principal, collection, export)
        settings[f"resorption.{collection}_scope"] = scope.as_setting()
    return settings


def governs(collection: str) -> bool:
    """Whether reading `collection` in bulk needs the export right (the policy's collections)."""
    return collection in PROTECTED


def exports_all_it_reads(policy: Policy, principal: Principal) -> bool:
    """Whether the caller's exports reach every row it reads (bulk reads then lose nothing)."""
    export = policy.export_scope(principal)
    if export.is_empty:
        return False
    return all(read_scope(policy, principal, c, export) == policy.scope(principal, c) for c in READ_SCOPES)
