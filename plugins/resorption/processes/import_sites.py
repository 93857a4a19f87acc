"""`import-sites`: sites from an XLSX, CSV or GeoPackage file, created, updated or refused row by row.

The same code as `resorption import sites` (`spreadsheets.load`): the file's columns are
those of `export-sites` (or the properties' names); each row is written through the
editing routes' checks, as the caller. The JSON report gives each
row's outcome, site and reason. A file with a refused row changes nothing unless
`keep_valid` is true; `dry_run` only checks. The file is decoded into a temporary file, by
chunks, and read from there as it goes (`spreadsheets.readers`). A file of more rows than
RESORPTION_SYNC_IMPORT_MAX_ROWS is a job's work (`Prefer: respond-async`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from resorption.caller import Caller
from resorption.job_files import temporary
from resorption.processes.base import Inputs, ResorptionProcessor
from resorption.processes.jobs import job_progress, running_as_job
from resorption.settings import french_count, french_size
from resorption.spreadsheets.load import import_sites
from resorption.spreadsheets.readers import FORMATS


def _flag(title: str, description: str) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "schema": {"type": "boolean", "default": False},
        "minOccurs": 0,
        "maxOccurs": 1,
    }


PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "import-sites",
    "title": "Importer des sites (tableur)",
    "description": (
        "Crée ou met à jour des sites depuis un classeur XLSX ou un CSV aux colonnes de l'export "
        "« export-sites » (ou aux noms des propriétés), ou depuis un GeoPackage. Une ligne avec "
        "un identifiant (ou une référence externe connue) met à jour son site, une ligne sans "
        "identifiant en crée un (latitude et longitude obligatoires). Chaque ligne est vérifiée "
        "comme une modification de la collection, avec vos droits. Par défaut, un fichier dont "
        "une ligne est refusée n'enregistre rien ; « keep_valid » garde les lignes valides, "
        "« dry_run » vérifie sans enregistrer. Le compte rendu donne, ligne par ligne, le "
        "résultat et la raison d'un refus. Un gros fichier s'importe en tâche de fond (en-tête "
        "« Prefer: respond-async ») qui donne son avancement."
    ),
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["import", "tableur", "xlsx", "csv", "GeoPackage", "sites"],
    "links": [],
    "inputs": {
        "file": {
            "title": "Fichier",
            "description": (
                "Le contenu du fichier, encodé en base64 (par défaut 20 Mo, 100 000 lignes "
                "et 250 colonnes au plus ; au-delà de 2 000 lignes, l'import s'exécute en tâche de "
                "fond : en-tête « Prefer: respond-async »)."
            ),
            "schema": {"type": "string", "format": "byte"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "format": {
            "title": "Format",
            "description": (
                "xlsx (classeur Excel, par défaut), csv (séparateur « ; » ou « , ») ou gpkg "
                "(GeoPackage d'une couche de points : les noms des propriétés, le point pour "
                "latitude et longitude)."
            ),
            "schema": {"type": "string", "enum": list(FORMATS), "default": "xlsx"},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "dry_run": _flag("Essai à blanc", "Vérifie chaque ligne sans rien enregistrer."),
        "keep_valid": _flag(
            "Garder les lignes valides", "Enregistre les lignes valides même si d'autres sont refusées."
        ),
    },
    "outputs": {
        "report": {
            "title": "Compte rendu",
            "description": "Message, décompte par résultat et, pour chaque ligne : résultat, site, raison.",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        }
    },
    "example": {"inputs": {"file": "<base64>", "format": "csv", "dry_run": True}},
}


def _boolean(inputs: Inputs, name: str) -> bool:
    value = inputs.data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        inputs.error(name, "true ou false attendu.")
        return False
    return value


class Processor(ResorptionProcessor):
    """Import sites from a spreadsheet."""

    def __init__(self, processor_def: dict) -> None:
        """pygeoapi's constructor."""
        super().__init__(processor_def, PROCESS_METADATA)

    def run(self, caller: Caller, inputs: Inputs) -> dict[str, Any]:
        """Decode the file, import it as the caller, report."""
        fmt = inputs.choice("format", FORMATS) or "xlsx"
        dry_run = _boolean(inputs, "dry_run")
        keep_valid = _boolean(inputs, "keep_valid")
        raw = inputs.data.get("file")
        max_bytes = caller.settings.limits.import_max_bytes
        if not isinstance(raw, str) or not raw:
            inputs.error("file", "le contenu du fichier, encodé en base64, est obligatoire.")
        elif len(raw) > max_bytes * 4 // 3 + 4:  # checked before decoding
            inputs.error("file", f"{french_size(max_bytes)} au plus : découpez le fichier.")
        inputs.fail_if_invalid()
        report_progress = job_progress(self, caller)

        def progress(done: int, total: int) -> None:
            report_progress(
                5 + 90 * done // total, f"{french_count(done)} lignes traitées sur {french_count(total)}"
            )

        made = temporary(f".{fmt}")
        try:
            if not _decode(raw, made.path):
                inputs.error("file", "le contenu n'est pas du base64 valide.")
                inputs.fail_if_invalid()
            here = None if running_as_job() else caller.settings.limits.sync_import_max_rows
            report = import_sites(caller, made.path, fmt, dry_run, keep_valid, progress, here)
        finally:
            made.discard()
        return report.as_json()


# Base64 characters decoded at a time (a multiple of 4: whole groups of 3 bytes).
DECODED_CHARS = 4 * 256 * 1024


def _decode(text: str, path: Any) -> bool:
    """Write the bytes of a base64 text into the file at `path`, by chunks; False if not base64."""
    try:
        with open(path, "wb") as output:
            for start in range(0, len(text), DECODED_CHARS):
                output.write(base64.b64decode(text[start : start + DECODED_CHARS], validate=True))
    except (binascii.Error, ValueError):
        return False
    return True
