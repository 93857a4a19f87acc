"""Export the sites a caller may read as an XLSX or CSV file.

The rows are read exactly as the items endpoint reads them: `params.parse_items` turns
`filter`, `bbox` and `datetime` into a `FeatureQuery` (a single `datetime` reads the
history: the sites as they stood then) and `FeatureReader` runs it as the caller's
database role with the caller's scopes (row-level security, column privileges), narrowed
by `bulk` to where the policy's `export` right reaches (`area`: the caller's own area,
even when it may read more) and to the `territoire` asked for (a département or a
region): PostgreSQL keeps the rows within them, as for every export.
Every export is written to the audit log with the sensitive groups it contains.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from resorption import statements
from resorption.caller import Caller
from resorption.clock import PARIS
from resorption.errors import Forbidden, InvalidParameter
from resorption.job_files import MadeFile, temporary
from resorption.params import parse_items
from resorption.policy import NATION, Scope
from resorption.query import FeatureQuery
from resorption.reader import FeatureReader
from resorption.spreadsheets import journal
from resorption.spreadsheets.columns import Column, cell, site_columns
from resorption.spreadsheets.writers import MEDIA_TYPES, write_csv, write_xlsx

SQL = statements.load("spreadsheets_export")

PAGE = 1000
Progress = Callable[[int, str], None]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What the caller asks for; the texts are those of the items endpoint's parameters."""

    fmt: str = "xlsx"
    filter: str | None = None
    bbox: str | None = None
    territoire: str | None = None
    datetime: str | None = None


@dataclass(frozen=True, slots=True)
class ExportFile:
    """The file made (a temporary file, the caller's to keep or delete), and what it holds."""

    file: MadeFile
    media_type: str
    filename: str
    rows: int
    groups: frozenset[str]


def export_sites(
    caller: Caller,
    request: ExportRequest,
    progress: Progress | None = None,
    check_size: Callable[[int], None] | None = None,
) -> ExportFile:
    """The caller's sites as a spreadsheet; Forbidden without the export right. `check_size`
    is told how many sites match before any is read (it may refuse)."""
    sites = caller.sites
    export = caller.export_scope()
    if not caller.may_read(sites):
        raise Forbidden("Votre rôle ne vous permet pas de lire les sites : il n'y a rien à exporter.")
    if request.fmt not in MEDIA_TYPES:
        raise InvalidParameter(f"format « {request.fmt} » inconnu : choisissez xlsx ou csv.")
    within = _territory(caller, export, request.territoire)
    # Row-level security keeps the rows within the export scope (and the territory): bulk.py.
    reader = FeatureReader(caller, sites).exporting(within)
    args = {k: v for k, v in (("filter", request.filter), ("bbox", request.bbox)) if v}
    if request.datetime:
        args["datetime"] = request.datetime
    fq = parse_items(sites, reader.readable, args, caller.settings.limits)
    columns = site_columns(reader.readable)
    # Read page by page and written as it goes: only one page of features is in memory at a
    # time (and, for the journal sheet, each site's name). The count gives the progress.
    total = reader.page(dataclasses.replace(fq, hits_only=True)).matched or 0
    if check_size is not None:
        check_size(total)
    names: dict[int, Any] = {}
    written_rows = 0

    def rows() -> Iterator[list[Any]]:
        for page in _pages(reader, fq):
            extras = _extras(caller, within, page)
            for feature in page:
                names[feature["id"]] = (feature.get("properties") or {}).get("name")
                yield _row(columns, feature, extras)

    def written(count: int) -> None:
        nonlocal written_rows
        written_rows = count
        if progress and (count % 1000 == 0 or count == total):
            progress(5 + 90 * count // max(total, 1), f"{count} lignes écrites sur {total}")

    made = temporary(f".{request.fmt}")
    try:
        with made.path.open("wb") as output:
            if request.fmt == "xlsx":
                # The messages of the sites' journals the caller may read, on a sheet of their
                # own, written after the sites (whose names it shows).
                def messages() -> Iterator[list[Any]]:
                    sites_read = [{"id": i, "properties": {"name": n}} for i, n in names.items()]
                    yield from journal.rows(caller, within, sites_read)

                sheet = (journal.TITLE, journal.columns(caller), messages())
                write_xlsx(output, columns, rows(), "Sites", written, more=[sheet])
            else:
                write_csv(output, columns, rows(), lambda c: c.header, written)
    except BaseException:
        made.discard()
        raise
    groups = frozenset(f.group.sensitive for f in reader.readable if f.group.sensitive)
    detail = {
        "process": "export-sites",
        "format": request.fmt,
        "rows": written_rows,
        **{k: v for k, v in dataclasses.asdict(request).items() if v and k != "fmt"},
    }
    caller.audit("export", "sites", None, groups, detail)
    return ExportFile(made, MEDIA_TYPES[request.fmt], _filename(fq, request.fmt), written_rows, groups)


def _territory(caller: Caller, export: Scope, territoire: str | None) -> Scope:
    """The départements of the territory the caller chose (the nation when none); 403 outside its export."""
    if territoire is None:
        return NATION
    level, _, code = territoire.strip().rpartition(":")
    level = level or "departement"
    if level not in ("departement", "region") or not code:
        raise InvalidParameter(
            f"territoire « {territoire} » : donnez un code de département (33, 2A, 974), "
            "ou region:<code> pour une région (region:75)."
        )
    column = "code" if level == "departement" else "region_code"
    with caller.reading() as conn:
        rows = conn.execute(
            SQL.territory_departements.format(sql.Identifier(column)), (code.upper(),)
        ).fetchall()
    noun = "Département" if level == "departement" else "Région"
    if not rows:
        raise InvalidParameter(f"territoire : {noun.lower()} « {code} » inconnu(e).")
    if not any(export.contains(r[0]) for r in rows):
        raise Forbidden(
            f"{noun} {code} : hors de votre territoire d'intervention, vous ne pouvez pas l'exporter."
        )
    return Scope(nation=False, departements=frozenset(r[0] for r in rows))


def _pages(reader: FeatureReader, fq: FeatureQuery) -> Iterator[list[dict[str, Any]]]:
    """Every matching feature, by pages in id order (each page after the last id seen)."""
    last: int | None = None
    while True:
        page = reader.features(
            dataclasses.replace(fq, after=last, limit=PAGE, offset=0, sortby=(), select=None)
        )["features"]
        if page:
            yield page
        if len(page) < PAGE:
            return
        last = page[-1]["id"]


def _extras(caller: Caller, within: Scope, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the rows show beyond the features: EPCI names, and the actions the caller may export."""
    ids = [f["id"] for f in features]
    epci = sorted({f["properties"].get("epci_code") for f in features} - {None})
    actions: dict[int, list[tuple[int, str]]] = defaultdict(list)
    with caller.exporting(within) as conn:
        names = dict(conn.execute(SQL.epci_names, (epci,)))
        # Row-level security leaves out the actions (and links) outside the caller's export.
        for site_id, action_id, name in conn.execute(SQL.site_actions, (ids,)):
            actions[site_id].append((action_id, name))
    return {"epci": names, "actions": actions}


def _row(columns: Sequence[Column], feature: Mapping[str, Any], extras: Mapping[str, Any]) -> list[Any]:
    props = feature["properties"]
    geometry = feature.get("geometry") or {}
    lon, lat = (geometry.get("coordinates") or [None, None])[:2]
    solutions = {s["solution"]: s for s in props.get("closing_solutions") or []}
    actions = extras["actions"].get(feature["id"], [])
    values: list[Any] = []
    for c in columns:
        if c.field is not None:
            values.append(cell(c, props.get(c.key)))
        elif c.key == "latitude":
            values.append(lat)
        elif c.key == "longitude":
            values.append(lon)
        elif c.key == "epci_name":
            values.append(extras["epci"].get(props.get("epci_code")))
        elif c.key.startswith("solution:"):
            _, code, part = c.key.split(":")
            values.append((solutions.get(code) or {}).get(part))
        elif c.key == "action_ids":
            values.append(", ".join(str(i) for i, _ in actions) or None)
        elif c.key == "action_names":
            values.append(" ; ".join(name for _, name in actions) or None)
        else:
            values.append(None)
    return values


def _filename(fq: FeatureQuery, fmt: str) -> str:
    """`sites-2026-11-27.xlsx`, or `sites-au-2022-01-01-…` for the sites as they stood then."""
    as_of = fq.as_of
    past = f"au-{as_of.date().isoformat()}-" if as_of is not None else ""
    return f"sites-{past}{dt.datetime.now(PARIS).date().isoformat()}.{fmt}"
