"""Applying remote features to our sites: match, validate, write, or report why not.

A remote feature is matched by (source, remote id) in `resorption.site_provenance`,
never by its content, so harvesting twice never duplicates a site. Its mapped values
go through the same validation as an API write (`editing.validate`: types, enums,
required fields, geometry) and the one write path (`writing`: placement, row lock, the
statements, the audit log); PostgreSQL's check constraints have the last word,
translated as for the API. Each feature is one transaction: a rejected feature leaves
nothing behind and the others go on.

A feature is applied only when what the source says changed (the fingerprint of the
mapped body). It is then a conflict, reported and not applied, when the local site was
edited since the last harvest (its `updated_at` is no longer the one stored then).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors

from resorption import editing, statements, writing
from resorption.catalog import Collection, Field
from resorption.clock import PARIS
from resorption.crs import DEFAULT
from resorption.editing import Mode
from resorption.errors import ResorptionError, ValidationFailed
from resorption.harvest.sources import Source

SQL = statements.load("harvest_apply")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one remote feature (or one site no longer in the feed)."""

    outcome: str  # created, updated, unchanged, conflict, rejected, outside, missing, deleted_locally
    remote_id: str | None
    site_id: int | None = None
    reason: str | None = None


def writable_fields(sites: Collection, conn: psycopg.Connection) -> frozenset[str]:
    """The fields a harvest may fill: those an API writer may set (every group: we are the owner)."""
    columns = editing.table_columns(conn, sites.table)
    return frozenset(editing.writable_fields(sites, tuple(sites.fields.values()), columns))


def fingerprint(body: Mapping[str, Any]) -> str:
    """sha256 of what the source says of a site, independent of key order."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def remote_id_of(source: Source, feature: Mapping[str, Any]) -> str | None:
    """The feature's stable id at the source: a named property, else the GeoJSON `id`."""
    if source.id_property:
        value = (feature.get("properties") or {}).get(source.id_property)
    else:
        value = feature.get("id")
    return None if value is None or str(value).strip() == "" else str(value)


def coerce(sites: Collection, values: Mapping[str, Any]) -> dict[str, Any]:
    """Forgive the usual differences of form: a timestamp for a date, a number written as text."""
    return {name: _coerce(sites.fields[name], value) for name, value in values.items()}


def _coerce(f: Field, value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if f.format == "date" and len(text) > 10 and text[10] in "T ":
            return text[:10]
        if f.type == "integer" and text.lstrip("-").isdigit():
            return int(text)
        if f.type == "number":
            try:
                return float(text.replace(",", "."))
            except ValueError:
                return value
    return value


def describe(errors: Iterable[Mapping[str, str]]) -> str:
    """Validation problems as one French sentence per field."""
    return " ; ".join(f"{e['property']} : {e['message']}" for e in errors)


class Applier:
    """Applies the features of one source, each in its own transaction, as the owner."""

    def __init__(
        self,
        conn: psycopg.Connection,
        source: Source,
        sites: Collection,
        simulation: bool,
        overwrite: bool = False,
    ) -> None:
        self.conn = conn
        # The source wins conflicts: an operator's choice after reading the report.
        self.overwrite = overwrite
        self.source = source
        self.sites = sites
        self.simulation = simulation
        self.columns = editing.table_columns(conn, sites.table)
        self.readable = tuple(sites.fields.values())

    def apply(self, feature: Any) -> Outcome:
        """Create, update or report one remote feature."""
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            return Outcome("rejected", None, reason="élément qui n'est pas une « Feature » GeoJSON.")
        remote_id = remote_id_of(self.source, feature)
        if remote_id is None:
            what = f"la propriété « {self.source.id_property} »" if self.source.id_property else "un « id »"
            return Outcome(
                "rejected", None, reason=f"l'élément distant n'a pas {what} : il ne peut être suivi."
            )
        properties = feature.get("properties")
        if not isinstance(properties, Mapping):
            properties = {}
        body = {
            "type": "Feature",
            "geometry": feature.get("geometry"),
            "properties": coerce(self.sites, self.source.mapped(properties)),
        }
        try:
            # A simulation runs every check and every statement, then rolls back.
            with self.conn.transaction(force_rollback=self.simulation):
                self.conn.execute(SQL.act_as, (self.source.writer,))
                return self._apply(remote_id, body, fingerprint(body))
        except ValidationFailed as exc:
            return Outcome("rejected", remote_id, reason=describe(exc.errors))
        except ResorptionError as exc:
            return Outcome("rejected", remote_id, reason=exc.message)
        except pg_errors.DataError:
            # A value PostgreSQL cannot store as its column (the checks above know most of them).
            return Outcome("rejected", remote_id, reason="une valeur n'a pas la forme attendue par la base.")

    def _apply(self, remote_id: str, body: dict[str, Any], digest: str) -> Outcome:
        row = self.conn.execute(SQL.provenance_of, (self.source.name, remote_id)).fetchone()
        if row is None:
            return self._create(remote_id, body, digest)
        site_id, last_digest, local_version, updated_at = row
        if site_id is None:
            return Outcome(
                "deleted_locally",
                remote_id,
                reason="le site moissonné a été supprimé ici : il n'est pas recréé.",
            )
        if last_digest == digest:
            self._seen(remote_id)
            return Outcome("unchanged", remote_id, site_id)
        if updated_at != local_version and not self.overwrite:
            self._seen(remote_id)
            return Outcome(
                "conflict",
                remote_id,
                site_id,
                f"modifié à la source et ici (le {updated_at.astimezone(PARIS):%d/%m/%Y à %H:%M}) "
                "depuis le dernier moissonnage : la version locale est conservée ; "
                "reportez les changements à la main ou alignez la source.",
            )
        return self._update(remote_id, site_id, body, digest)

    def _validated(
        self, body: dict[str, Any], mode: Mode, current_dep: str | None
    ) -> editing.Change | Outcome:
        change = editing.validate(self.sites, self.readable, self.columns, body, mode, DEFAULT)
        # A commune not mapped is the one of the location, as for an API write.
        departement = writing.place(self.conn, self.sites, change, current_dep)
        if departement is not None and departement != self.source.departement:
            return Outcome(
                "outside",
                None,
                reason=f"situé dans le département {departement}, hors du département "
                f"{self.source.departement} de la source : ignoré.",
            )
        change.fail_if_invalid()
        return change

    def _create(self, remote_id: str, body: dict[str, Any], digest: str) -> Outcome:
        change = self._validated(body, Mode.CREATE, None)
        if isinstance(change, Outcome):
            return Outcome(change.outcome, remote_id, reason=change.reason)
        change.values["created_by"] = change.values["updated_by"] = self.source.writer
        site_id, _ = writing.insert_row(self.conn, self.sites, self.columns, change)
        self.conn.execute(
            SQL.insert_provenance, (self.source.name, remote_id, site_id, digest, self._version(site_id))
        )
        self._audit("create", site_id, change, remote_id)
        return Outcome("created", remote_id, None if self.simulation else site_id)

    def _update(self, remote_id: str, site_id: int, body: dict[str, Any], digest: str) -> Outcome:
        head = writing.lock(self.conn, self.sites, site_id)
        current_dep = head.departement if head else None
        # A merge patch of the fields the source fills and the feature carries (null empties
        # one); the others keep their local value.
        change = self._validated(body, Mode.PATCH, current_dep)
        if isinstance(change, Outcome):
            return Outcome(change.outcome, remote_id, site_id, change.reason)
        change.values["updated_by"] = self.source.writer
        writing.update_row(self.conn, self.sites, self.columns, change, site_id)
        self.conn.execute(
            SQL.update_provenance, (digest, self._version(site_id), self.source.name, remote_id)
        )
        self._audit("update", site_id, change, remote_id)
        return Outcome("updated", remote_id, site_id)

    def _audit(self, action: str, site_id: int, change: editing.Change, remote_id: str) -> None:
        # In the feature's transaction: the settings name the source's writer.
        detail = {"source": "harvest", "harvest": self.source.name, "remote_id": remote_id}
        writing.audit_in(self.conn, action, self.sites, site_id, change, detail)

    def _version(self, site_id: int) -> datetime:
        return self.conn.execute(SQL.site_updated_at, (site_id,)).fetchone()[0]

    def _seen(self, remote_id: str) -> None:
        self.conn.execute(SQL.seen, (self.source.name, remote_id))

    def mark_missing(self, seen: set[str]) -> list[Outcome]:
        """The sites whose feature a complete harvest no longer found: reported once, kept here."""
        with self.conn.transaction(force_rollback=self.simulation):
            rows = self.conn.execute(SQL.mark_missing, (self.source.name, sorted(seen))).fetchall()
        return [
            Outcome(
                "missing",
                remote_id,
                site_id,
                "absent de la source (supprimé ou masqué là-bas) : le site local est conservé ; "
                "fermez-le ou supprimez-le ici s'il n'existe plus.",
            )
            for remote_id, site_id in sorted(rows)
        ]
