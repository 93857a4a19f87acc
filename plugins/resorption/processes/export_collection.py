"""`export-collection`: a collection the caller may read, as a GeoPackage, FlatGeobuf or GeoJSON file.

The file holds what `/collections/{id}/items` gives the caller for the same `filter`,
`bbox`, `datetime` and `q` (every matching feature, not a page), with the fields the caller
may read, typed from the catalog, in the chosen CRS (EPSG:4326 by default; Lambert-93 and
the overseas CRSs for QGIS users). Where the role exports only its area, rows elsewhere are
left out. Large exports run as jobs (`Prefer: respond-async`) that report their progress.
"""

from __future__ import annotations

from typing import Any

import orjson

from resorption import geoexport, job_files
from resorption.caller import Caller
from resorption.crs import URIS, parse_crs
from resorption.params import parse_items
from resorption.processes.base import Inputs
from resorption.processes.export_jobs import (
    ExportFile,
    ExportProcessor,
    check_size,
    filename,
)
from resorption.query import count_statement

# What the items endpoint's parameters are called here (the process's inputs).
QUERY_INPUTS = ("filter", "filter-lang", "filter-crs", "bbox", "bbox-crs", "datetime", "q")
DEFAULT_CRS = "http://www.opengis.net/def/crs/EPSG/0/4326"


def _text_input(title: str, description: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "schema": {"type": "string"},
        "minOccurs": 0,
        "maxOccurs": 1,
    }


PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "export-collection",
    "title": "Exporter une collection (GeoPackage, FlatGeobuf, GeoJSON)",
    "description": (
        "Exporte une collection que vous pouvez lire (sites, actions, territoires, statistiques…) "
        "dans un fichier géographique : GeoPackage (pour QGIS, hors ligne), FlatGeobuf ou GeoJSON. "
        "Mêmes filtres que /collections/{id}/items (filter CQL2, bbox, datetime, q), mêmes droits : "
        "seuls les éléments et les champs que vous pouvez lire y figurent. Système de coordonnées "
        "au choix (EPSG:4326 par défaut, Lambert-93 EPSG:2154, systèmes d'outre-mer). Demande le "
        "droit d'exporter. Les gros exports s'exécutent en tâche de fond (« Prefer: respond-async »)."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["export", "GeoPackage", "FlatGeobuf", "GeoJSON", "QGIS"],
    "links": [],
    "inputs": {
        "collection": {
            "title": "Collection",
            "description": "Identifiant de la collection à exporter (voir /collections).",
            "schema": {"type": "string"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "format": {
            "title": "Format du fichier",
            "description": "gpkg (GeoPackage, par défaut), flatgeobuf ou geojson.",
            "schema": {"type": "string", "enum": list(geoexport.FORMATS), "default": "gpkg"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "crs": {
            "title": "Système de coordonnées du fichier",
            "description": "EPSG:4326 par défaut ; EPSG:2154 (Lambert-93), 2972, 5490, 2975, 4471, 3857.",
            "schema": {"type": "string", "enum": list(URIS), "default": DEFAULT_CRS},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "filter": {
            "title": "Filtre CQL2",
            "description": "Comme le paramètre filter des éléments : CQL2 texte, ou un objet CQL2 JSON.",
            "schema": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "filter-lang": _text_input("Langage du filtre", "cql2-text ou cql2-json."),
        "filter-crs": _text_input("Système de coordonnées du filtre", "CRS des géométries du filtre."),
        "bbox": {
            "title": "Emprise",
            "description": "xmin,ymin,xmax,ymax (texte ou liste de 4 nombres), dans bbox-crs.",
            "schema": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                ]
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "bbox-crs": _text_input("Système de coordonnées de l'emprise", "CRS84 par défaut."),
        "datetime": _text_input(
            "Date ou intervalle", "Comme le paramètre datetime des éléments (un instant remonte le temps)."
        ),
        "q": _text_input("Recherche plein texte", "Mots recherchés (nom, adresse, commune)."),
    },
    "outputs": {
        "file": {
            "title": "Fichier exporté",
            "description": "Le fichier géographique, à télécharger.",
            "schema": {
                "type": "string",
                "format": "binary",
                "contentMediaType": geoexport.FORMATS["gpkg"].media_type,
            },
        }
    },
    "example": {
        "inputs": {
            "collection": "sites",
            "format": "gpkg",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/2154",
            "filter": "status = 'open' AND population_total >= 50",
        }
    },
}


def _query_args(inputs: Inputs) -> tuple[dict[str, str], Any]:
    """The items parameters given as inputs (strings), and a CQL2 JSON filter given as an object."""
    args: dict[str, str] = {}
    body = None
    for name in QUERY_INPUTS:
        value = inputs.data.get(name)
        if value is None:
            continue
        if name == "filter" and isinstance(value, dict):
            body = orjson.dumps(value).decode()
        elif name == "bbox" and isinstance(value, list):
            args[name] = ",".join(str(v) for v in value)
        elif isinstance(value, str):
            args[name] = value
        else:
            inputs.error(name, "texte attendu (comme le paramètre de même nom des éléments).")
    return args, body


class Processor(ExportProcessor):
    """Export a collection as a geographic file."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def export(self, caller: Caller, inputs: Inputs) -> ExportFile:
        """Check the right and the inputs, read as the caller, write the file, audit."""
        caller.require("export")
        catalog = caller.catalog
        readable = sorted(c for c, col in catalog.items() if caller.may_read(col))
        collection_id = inputs.choice("collection", readable, required=True)
        fmt = geoexport.FORMATS[inputs.choice("format", tuple(geoexport.FORMATS)) or "gpkg"]
        crs_text = inputs.text("crs", max_length=200)
        args, body = _query_args(inputs)
        inputs.fail_if_invalid()
        assert collection_id is not None
        collection = catalog[collection_id]
        crs = parse_crs(crs_text or DEFAULT_CRS, "crs")
        fq = parse_items(collection, caller.readable_fields(collection), args, caller.settings.limits, body)

        def progress(done: int, total: int) -> None:
            self.report(caller, 5 + int(80 * done / max(total, 1)), f"{done} éléments écrits sur {total}")

        made = job_files.temporary(f".{fmt.extension}")
        try:
            with caller.exporting() as conn:
                statement, params = count_statement(fq, None)
                total = conn.execute(statement, params).fetchone()[0]
                check_size(caller, total, "éléments")
                self.report(caller, 1, f"Lecture des éléments et écriture du fichier {fmt.label}")
                written = geoexport.export(conn, fq, fmt, crs, made.path, progress, total)
        except BaseException:
            made.discard()
            raise
        groups = {f.group.sensitive for f in fq.properties if f.group.sensitive}
        self.audit(
            caller,
            collection.id,
            groups,
            {
                "format": fmt.key,
                "crs": crs.srid,
                "features": written,
                **{k: v[:500] for k, v in args.items()},
                **({"filter": body[:500]} if body else {}),
            },
        )
        return ExportFile(made, fmt.media_type, filename(collection.id, fmt.extension))
