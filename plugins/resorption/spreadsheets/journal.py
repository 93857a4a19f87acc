"""The « Journal » sheet of the sites spreadsheet: the messages on the exported sites.

The messages are read like the sites (`FeatureReader`, narrowed to the export's territory by
`bulk`): row-level security gives only those the exporter may read (sql/150_journal.sql),
on sites it may export. Newest first within each site, in the order of the sites.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from resorption.caller import Caller
from resorption.policy import Scope
from resorption.query import FeatureQuery
from resorption.reader import FeatureReader
from resorption.spreadsheets.columns import Column, cell

TITLE = "Journal"
SECTION = "Journal du site"
PAGE = 1000
# The message's fields, in the sheet's order, with their widths.
FIELDS = (
    ("site_id", 10),
    ("created_at", 18),
    ("created_by", 22),
    ("organisation_name", 28),
    ("visibility", 24),
    ("tags", 24),
    ("message", 60),
    ("hidden", 10),
    ("hidden_reason", 30),
)
KINDS = {"integer": "integer", "boolean": "boolean", "date-time": "datetime"}


def columns(caller: Caller) -> list[Column]:
    """The sheet's columns: the site's id and name, then the message."""
    fields = caller.catalog["site_comments"].fields
    found = [
        Column(
            name,
            SECTION,
            fields[name].label.fr,
            KINDS.get(fields[name].format or fields[name].type, "text"),
            fields[name],
            width,
        )
        for name, width in FIELDS
    ]
    return [found[0], Column("site_name", SECTION, "Nom du site", "text", None, 30), *found[1:]]


def rows(caller: Caller, within: Scope, sites: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One row per message the caller may read on `sites` (the exported features)."""
    comments = caller.catalog["site_comments"]
    if not caller.may_read(comments):
        return []
    names = {f["id"]: (f.get("properties") or {}).get("name") for f in sites}
    by_site: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for feature in _messages(FeatureReader(caller, comments).exporting(within), comments):
        props = feature["properties"]
        if props.get("site_id") in names:
            by_site[props["site_id"]].append(props)
    sheet_columns = columns(caller)
    out: list[list[Any]] = []
    for site_id in names:
        for props in sorted(by_site.get(site_id, []), key=lambda p: p.get("created_at") or "", reverse=True):
            values = {**props, "site_name": names[site_id]}
            out.append([cell(c, values.get(c.key)) for c in sheet_columns])
    return out


def _messages(reader: FeatureReader, comments: Any) -> Iterator[dict[str, Any]]:
    """Every message the reader may read, by pages in id order."""
    fq = FeatureQuery(collection=comments, readable=reader.readable, skip_geometry=True)
    last: int | None = None
    while True:
        page = reader.features(dataclasses.replace(fq, after=last, limit=PAGE))["features"]
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1]["id"]
