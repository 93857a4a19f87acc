"""Import sites from a spreadsheet or a GeoPackage (the export's columns, or the fields' names).

Each row becomes a site created, updated (found by `id`, else by `external_ref`),
unchanged, or rejected with its reason in French. Rows are written through the one write
path (`writing.Writer`: the editing routes' validation, placement, locks and checks, the
caller's write role and scopes, so row-level security and column privileges), all in one
transaction. Rows are written by chunks, each in a savepoint; a chunk where a row is refused
is rolled back and written again row by row, each in a savepoint of its own: one bad row never
stops the others, and a clean file pays no savepoint per row (two round trips each). By
default a file with a rejected row changes nothing; with `keep_valid` the good rows are kept;
`dry_run` writes nothing at all. The audit rows of the rows written go in one transaction
after the commit.

The file is read twice, as it goes (`readers.rows`), never held whole: a first pass finds
the header and counts the rows (the limits refuse a file before anything is written, and the
count gives the progress), the second writes them one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import batched
from pathlib import Path
from typing import Any

import psycopg

from resorption import editing, writing
from resorption.caller import Caller
from resorption.catalog import Field
from resorption.crs import DEFAULT
from resorption.editing import Mode
from resorption.errors import (
    InvalidParameter,
    NotFound,
    ResorptionError,
    TooLongForARequest,
    ValidationFailed,
)
from resorption.settings import french_count
from resorption.spreadsheets.columns import CellError, Column, header_lookup, normalise, parse, site_columns
from resorption.spreadsheets.readers import FORMATS, rows
from resorption.writing import Writer

OUTCOMES = {"created": "créé", "updated": "modifié", "unchanged": "inchangé", "rejected": "refusé"}
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class RowResult:
    """What became of one row of the file (numbered as the spreadsheet numbers it)."""

    row: int
    outcome: str = "rejected"
    site: int | None = None
    reason: str | None = None
    groups: frozenset[str] = frozenset()  # the sensitive groups written (for the audit log)

    def as_json(self) -> dict[str, Any]:
        """The row in the process's report."""
        return {
            "row": self.row,
            "outcome": self.outcome,
            "outcome_label": OUTCOMES[self.outcome],
            "site": self.site,
            "reason": self.reason,
        }


@dataclass(slots=True)
class ImportReport:
    """Every row's outcome, and whether the changes were kept."""

    rows: list[RowResult] = field(default_factory=list)
    dry_run: bool = False
    keep_valid: bool = False
    committed: bool = False

    def count(self, outcome: str) -> int:
        """How many rows had `outcome`."""
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def message(self) -> str:
        """What happened, in one French sentence."""
        counts = (
            f"{self.count('created')} créé(s), {self.count('updated')} modifié(s), "
            f"{self.count('unchanged')} inchangé(s), {self.count('rejected')} refusé(s)"
        )
        if self.dry_run:
            return f"Essai à blanc, rien n'a été enregistré : {counts}."
        if not self.committed:
            return (
                f"Rien n'a été enregistré car {self.count('rejected')} ligne(s) sont refusées : "
                f"corrigez-les, ou importez avec l'option « garder les lignes valides ». ({counts})"
            )
        return f"Import enregistré : {counts}."

    def as_json(self) -> dict[str, Any]:
        """The process's JSON output."""
        return {
            "message": self.message,
            "dry_run": self.dry_run,
            "keep_valid": self.keep_valid,
            "committed": self.committed,
            "summary": {k: self.count(k) for k in OUTCOMES},
            "rows": [r.as_json() for r in self.rows],
        }


class _Rejected(Exception):
    """A row that cannot be written; the message is French."""


class _Refused(Exception):
    """A row of a chunk was refused: the chunk is written again row by row."""


def import_sites(
    caller: Caller,
    path: Path,
    fmt: str,
    dry_run: bool = False,
    keep_valid: bool = False,
    progress: Progress | None = None,
    max_rows_here: int | None = None,
) -> ImportReport:
    """Import the file at `path` as `caller`; the report says what became of each row.

    `max_rows_here`: the rows a synchronous request may import; a longer file is refused
    (TooLongForARequest) before anything is written: it is a job's work."""
    if fmt not in FORMATS:
        raise InvalidParameter(f"format « {fmt} » inconnu : choisissez xlsx, csv ou gpkg.")
    sites = caller.sites
    w = Writer(caller, sites)
    w.require("write")
    limits = caller.settings.limits
    with closing(rows(path, fmt, limits)) as first_pass:
        head: list[list[Any]] = []
        for row in first_pass:
            head.append(row)
            if len(head) == HEADER_SEARCH:
                break
        # The whole file is read (and its limits checked) before its header is judged.
        below = sum(1 for r in first_pass if _filled(r))
    header_at, columns = _header(head, w.readable)
    total = sum(1 for _ in _data(head, header_at)) + below
    if not total:
        raise InvalidParameter("Le fichier ne contient aucune ligne de site sous ses en-têtes.")
    if total > limits.import_max_rows:
        raise InvalidParameter(
            f"Le fichier compte {french_count(total)} lignes de sites ; "
            f"{french_count(limits.import_max_rows)} au plus par import : découpez-le."
        )
    if max_rows_here is not None and total > max_rows_here:
        raise TooLongForARequest(
            f"Ce fichier compte {french_count(total)} lignes de sites : au-delà de "
            f"{french_count(max_rows_here)}, un import s'exécute en tâche de fond. Relancez-le avec "
            "l'en-tête « Prefer: respond-async », puis suivez la tâche à l'adresse donnée par "
            "l'en-tête Location (/jobs/{id}) ; son compte rendu est à /jobs/{id}/results."
        )
    report = ImportReport(dry_run=dry_run, keep_valid=keep_valid)
    with caller.writing() as conn:
        row_writer = _RowWriter(conn, w, columns)
        with conn.transaction() as batch, closing(rows(path, fmt, limits)) as second_pass:
            for chunk in batched(_data(second_pass, header_at), CHUNK_ROWS):
                report.rows.extend(row_writer.write_chunk(chunk))
                if progress:
                    progress(len(report.rows), total)
            report.committed = not dry_run and (keep_valid or report.count("rejected") == 0)
            if not report.committed:
                raise psycopg.Rollback(batch)
    if report.committed:
        caller.audit_many(
            (
                "create" if r.outcome == "created" else "update",
                sites.id,
                r.site,
                r.groups,
                {"source": "import", "row": r.row},
            )
            for r in report.rows
            if r.outcome in ("created", "updated")
        )
    return report


# Rows written under one savepoint (a refused row sends its chunk back, row by row).
CHUNK_ROWS = 100
# The header is looked for in the first rows of a file.
HEADER_SEARCH = 5


def _filled(row: Sequence[Any]) -> bool:
    return any(v not in (None, "") for v in row)


def _data(source: Iterable[list[Any]], header_at: int) -> Iterator[tuple[int, list[Any]]]:
    """The rows under the header that hold a value, numbered as the spreadsheet numbers them."""
    for index, row in enumerate(source):
        if index > header_at and _filled(row):
            yield index + 1, row


def _header(rows: Sequence[Sequence[Any]], readable: Sequence[Field]) -> tuple[int, list[Column | None]]:
    """The row of column headers (a row of sections above it is skipped) and each column's meaning.

    Columns the caller reads but cannot write (computed ones: commune name, ratings…), and
    fields it reads that no column holds, are ignored. Any other column refuses the file as
    unknown: one of a group the caller may not read is told exactly like one that does not
    exist, so that the answer says nothing of the fields hidden from the caller, nor of its
    rights.
    """
    known = header_lookup(site_columns(readable))
    # A field the caller reads that no spreadsheet column holds (the closing solutions, in
    # columns of their own; a GeoPackage names them all): ignored like computed columns.
    readable_names = {normalise(f.name) for f in readable}
    for index, row in enumerate(rows[:HEADER_SEARCH]):  # noqa: B007 (the header row's index is returned)
        names = [normalise(str(v)) for v in row if v not in (None, "")]
        matched = sum(1 for n in names if n in known)
        if matched and matched * 2 >= len(names):
            break
    else:
        raise InvalidParameter(
            "Aucune ligne d'en-têtes reconnue dans les 5 premières lignes : gardez les en-têtes de "
            "l'export (« Statut », « Habitants – Nombre de personnes ») ou les noms des propriétés "
            "(status, population_total)."
        )
    unknown: list[str] = []
    meaning: list[Column | None] = []
    for value in row:
        name = normalise(str(value)) if value not in (None, "") else ""
        column = known.get(name)
        if name and column is None and name not in readable_names:
            unknown.append(str(value))
        meaning.append(column)
    if unknown:
        raise InvalidParameter(
            f"En-têtes refusés (colonnes inconnues : {', '.join(unknown)}). Gardez les en-têtes d'un "
            "export ou les noms des propriétés ; supprimez ou renommez ces colonnes, puis réimportez."
        )
    return index, meaning


class _RowWriter:
    """Writes rows as the caller, through the one write path, in the import's transaction."""

    def __init__(self, conn: psycopg.Connection, w: Writer, columns: list[Column | None]) -> None:
        self.conn = conn
        self.w = w
        self.sites = w.collection
        self.columns = columns
        self.db_columns = editing.table_columns(conn, self.sites.table)
        self.writable = editing.writable_fields(self.sites, w.readable, self.db_columns)
        self.seen: dict[tuple[str, Any], int] = {}

    def write_chunk(self, chunk: Sequence[tuple[int, list[Any]]]) -> list[RowResult]:
        """The outcome of each row of `chunk`, written in one savepoint; when one is refused,
        the chunk is rolled back and written again row by row, each in its own savepoint."""
        try:
            with self.conn.transaction():
                results = [self._attempt(number, cells, careful=False) for number, cells in chunk]
        except _Refused:
            first = chunk[0][0]  # the rows of the chunk are seen again
            self.seen = {key: row for key, row in self.seen.items() if row < first}
            results = [self._attempt(number, cells, careful=True) for number, cells in chunk]
        return results

    def _attempt(self, number: int, cells: Sequence[Any], careful: bool) -> RowResult:
        """One row's outcome; a refusal raises `_Refused` unless `careful` (a savepoint of its own)."""
        result = RowResult(number)
        try:
            if careful:
                with self.conn.transaction():  # a savepoint: a refused row leaves nothing behind
                    self.write(cells, result)
            else:
                self.write(cells, result)
        except _Rejected as exc:
            result.outcome, result.reason = "rejected", str(exc)
        except ValidationFailed as exc:
            result.outcome, result.reason = "rejected", _reasons(exc.errors, self.sites.fields)
        except ResorptionError as exc:
            result.outcome, result.reason = "rejected", exc.message
        if result.outcome == "rejected" and not careful:
            raise _Refused
        return result

    def write(self, cells: Sequence[Any], result: RowResult) -> None:
        """Create, update or leave the row's site; raise to refuse it."""
        values, geometry, ident = self._values(cells)
        ref = values.get("external_ref")
        for key in (("id", ident), ("ref", ref)):
            if key[1] is not None:
                if key in self.seen:
                    raise _Rejected(f"le même site figure déjà à la ligne {self.seen[key]} du fichier.")
                self.seen[key] = result.row
        target = ident
        if ref is not None and ident is None:
            # References are unique per département: the caller may see several (row-level
            # security shows only those it may read).
            found = writing.sites_with_reference(self.conn, ref)
            if len(found) > 1:
                raise _Rejected(
                    f"la référence « {ref} » désigne plusieurs sites (dans plusieurs départements) : "
                    "donnez l'identifiant du site."
                )
            target = found[0] if found else None
        if target is None:
            self._create(values, geometry, result)
        else:
            self._update(target, values, geometry, result)

    def _values(self, cells: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any] | None, int | None]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        point: dict[str, float | None] = {"latitude": None, "longitude": None}
        ident = None
        for column, raw in zip(self.columns, cells, strict=False):
            if column is None:
                continue
            try:
                value = parse(column, raw)
            except CellError as exc:
                problems.append(f"{column.label} : {exc}")
                continue
            if column.key in point:
                point[column.key] = value
            elif column.key == self.sites.id_field:
                ident = value
            elif column.key in self.writable:
                values[column.key] = value
        if problems:
            raise _Rejected(" ; ".join(problems))
        lat, lon = point["latitude"], point["longitude"]
        if (lat is None) != (lon is None):
            raise _Rejected("Latitude et Longitude vont ensemble : donnez les deux, ou aucune.")
        geometry = {"type": "Point", "coordinates": [lon, lat]} if lat is not None else None
        return values, geometry, ident

    def _create(self, values: dict[str, Any], geometry: dict[str, Any] | None, result: RowResult) -> None:
        if geometry is None:
            raise _Rejected("Latitude et Longitude sont obligatoires pour créer un site.")
        body = {
            "type": "Feature",
            "geometry": geometry,
            "properties": {k: v for k, v in values.items() if v is not None},
        }
        written = self.w.create_in(self.conn, body, DEFAULT)
        result.outcome, result.site = "created", written.key
        result.groups = written.change.groups(self.sites)

    def _update(
        self, target: int, values: dict[str, Any], geometry: dict[str, Any] | None, result: RowResult
    ) -> None:
        result.site = target
        try:
            head = self.w.lock(self.conn, target)
        except NotFound:
            raise _Rejected(f"le site n° {target} n'existe pas ou est hors de votre territoire.") from None
        current = self.w.current(self.conn, target)
        props = current.get("properties") or {}
        body: dict[str, Any] = {
            "type": "Feature",
            # An empty cell of a column that cannot be empty (status, field type…) keeps its value.
            "properties": {
                k: v
                for k, v in values.items()
                if not _same(v, props.get(k)) and not (v is None and self.db_columns[k].not_null)
            },
        }
        if geometry is not None and not _same_point(geometry, current.get("geometry")):
            body["geometry"] = geometry
        if not body["properties"] and "geometry" not in body:
            result.outcome = "unchanged"
            return
        written = self.w.update_in(self.conn, head, body, Mode.PATCH, DEFAULT, current)
        result.outcome, result.groups = "updated", written.change.groups(self.sites)


def _same(new: Any, old: Any) -> bool:
    """Whether a cell's value is the stored one (an empty cell is an empty list or nothing)."""
    if new in (None, [], "") and old in (None, [], ""):
        return True
    if isinstance(new, str) and isinstance(old, str):
        return new.strip() == old.strip()
    return bool(new == old)


def _same_point(geometry: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether two points are the same to the precision of a spreadsheet (about 10 cm)."""
    if not current or current.get("type") != "Point":
        return False
    return all(
        abs(a - b) < 2e-6 for a, b in zip(geometry["coordinates"], current["coordinates"], strict=False)
    )


def _reasons(errors: Sequence[Mapping[str, str]], fields: Mapping[str, Field]) -> str:
    """Every problem of a refused row, by column label."""

    def label(prop: str) -> str:
        if prop == "geometry":
            return "Latitude et Longitude"
        return fields[prop].label.fr if prop in fields else prop

    return " ; ".join(f"{label(e['property'])} : {e['message']}" for e in errors)
