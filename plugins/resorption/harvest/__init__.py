"""Federation: harvest remote OGC API Features collections of sites into ours.

`sources` reads the configured sources, `remote` pages through one, `apply` matches
and writes each feature, `runs` runs a harvest and keeps its report, `schedule`
harvests each source when its schedule is due.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from resorption.catalog import Collection, load_catalog
from resorption.harvest.apply import writable_fields
from resorption.harvest.sources import Source, load_sources, sources_path
from resorption.settings import PROJECT_ROOT


def configured_sources(
    database_url: str, path: Path | None = None, collections_dir: Path = PROJECT_ROOT / "collections"
) -> tuple[Collection, dict[str, Source]]:
    """The catalog's sites and every source of the sources file, validated against them."""
    sites = load_catalog(collections_dir)["sites"]
    with psycopg.connect(database_url) as conn:
        writable = writable_fields(sites, conn)
    return sites, load_sources(path or sources_path(), sites, writable)
