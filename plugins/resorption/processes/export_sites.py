"""`export-sites`: the sites the caller may read, as an XLSX or CSV file.

Same reading as `/collections/sites/items` (filter, bbox, datetime, rights), narrowed by
the role's export right and an optional territory (`spreadsheets.export`). The output is
the file itself, named `sites-AAAA-MM-JJ.xlsx` (`processes.downloads`); as a job
(`Prefer: respond-async`) it reports its progress and only its owner downloads it.
"""

from __future__ import annotations

from typing import Any

from resorption.processes import downloads
from resorption.processes.base import Inputs, ResorptionProcessor, authenticated_caller
from resorption.processes.export_jobs import check_size
from resorption.processes.jobs import job_progress
from resorption.spreadsheets.export import ExportRequest, export_sites
from resorption.spreadsheets.writers import XLSX

FORMATS = ("xlsx", "csv")

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "export-sites",
    "title": "Exporter les sites (tableur)",
    "description": (
        "Les sites que vous pouvez lire, une ligne par site, en classeur Excel (xlsx) ou en CSV "
        "(UTF-8, séparateur « ; ») : localisation, site, habitants, conditions de vie, procédures "
        "judiciaires et propriétaire si vos droits le permettent, actions, solutions à la fermeture. "
        "Mêmes filtres que la collection « sites » (filter en CQL2 texte, bbox, datetime : une date "
        "seule donne les sites tels qu'ils étaient ce jour-là), plus un territoire. Demande le droit "
        "d'exporter ; un export « territoire » se limite à votre territoire d'intervention. Peut "
        "s'exécuter en tâche de fond (en-tête « Prefer: respond-async »)."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["export", "tableur", "xlsx", "csv", "sites"],
    "links": [],
    "inputs": {
        "format": {
            "title": "Format",
            "description": "xlsx (classeur Excel, par défaut) ou csv.",
            "schema": {"type": "string", "enum": list(FORMATS), "default": "xlsx"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "filter": {
            "title": "Filtre CQL2",
            "description": "CQL2 texte sur les propriétés des sites, par exemple population_total > 50.",
            "schema": {"type": "string", "maxLength": 4000},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "bbox": {
            "title": "Emprise",
            "description": "xmin,ymin,xmax,ymax en longitudes et latitudes (CRS84).",
            "schema": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                ]
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "territoire": {
            "title": "Territoire",
            "description": "Un code de département (33, 2A, 974) ou region:<code> (region:75).",
            "schema": {"type": "string", "maxLength": 12},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "datetime": {
            "title": "Date",
            "description": (
                "Comme le paramètre datetime de la collection : une date (AAAA-MM-JJ) donne les sites "
                "tels qu'ils étaient enregistrés ce jour-là ; un intervalle début/fin, les sites "
                "présents pendant l'intervalle."
            ),
            "schema": {"type": "string", "maxLength": 60},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "file": {
            "title": "Fichier",
            "description": "Le tableur, nommé sites-AAAA-MM-JJ.xlsx (ou .csv, en text/csv).",
            # The XLSX media type; a csv export answers text/csv (OpenAPI 3.0 allows one here).
            "schema": {"type": "string", "format": "binary", "contentMediaType": XLSX},
        }
    },
    "example": {"inputs": {"format": "xlsx", "territoire": "33", "filter": "status = 'open'"}},
}


def _bbox(inputs: Inputs) -> str | None:
    value = inputs.data.get("bbox")
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    inputs.error("bbox", "4 nombres attendus : xmin,ymin,xmax,ymax.")
    return None


class Processor(ResorptionProcessor):
    """Export the sites as a spreadsheet."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        """The file itself (not JSON, kept with the job: `resorption.job_files`), its name in its
        media type; more sites than a request may export: refused, a job's work."""
        caller = authenticated_caller()
        inputs = Inputs.of(data, tuple(self.metadata["inputs"]))
        request = ExportRequest(
            fmt=inputs.choice("format", FORMATS) or "xlsx",
            filter=inputs.text("filter", max_length=4000),
            bbox=_bbox(inputs),
            territoire=inputs.text("territoire", max_length=12),
            datetime=inputs.text("datetime", max_length=60),
        )
        inputs.fail_if_invalid()
        made = export_sites(
            caller, request, job_progress(self, caller), lambda rows: check_size(caller, rows, "sites")
        )
        return downloads.media_type(made.media_type, made.filename), made.file
