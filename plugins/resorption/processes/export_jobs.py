"""What the export processes share: the export right, its scope, progress and the file's name.

An export reads exactly as the Features API reads (the caller's database role, so column
privileges; the caller's scopes, so row-level security), with the scopes narrowed to where
the caller may export (`resorption.bulk`, the one way every bulk read goes: the nation,
its area, or nowhere, 403). Its output is a file, written to a temporary file as the rows
come (`job_files.temporary`) and kept with the job by the manager (`resorption.job_files`):
`ExportProcessor.execute` returns it with its media type, which carries the name to
download it under (`processes.downloads`). A job reports its progress as it goes
(`ExportProcessor.report`). A synchronous export of more rows than
RESORPTION_SYNC_EXPORT_MAX_ROWS is refused before it reads them (`check_size`): it runs as a
job (`Prefer: respond-async`), not in a request.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from resorption.caller import Caller
from resorption.clock import PARIS
from resorption.errors import TooLongForARequest
from resorption.job_files import MadeFile
from resorption.processes import downloads
from resorption.processes.base import Inputs, ResorptionProcessor, authenticated_caller
from resorption.processes.jobs import job_progress, running_as_job
from resorption.settings import french_count


@dataclass(frozen=True, slots=True)
class ExportFile:
    """What an export produced: the file, its media type and download name."""

    file: MadeFile
    media_type: str
    filename: str


def check_size(caller: Caller, rows: int, noun: str) -> None:
    """Refuse a synchronous export of more rows than the setting allows: it is a job's work."""
    limit = caller.settings.limits.sync_export_max_rows
    if rows > limit and not running_as_job():
        raise TooLongForARequest(
            f"Cet export compte {french_count(rows)} {noun} : au-delà de {french_count(limit)}, un export "
            "s'exécute en tâche de fond. Relancez-le avec l'en-tête « Prefer: respond-async », suivez "
            "la tâche à l'adresse donnée par l'en-tête Location (/jobs/{id}), puis téléchargez le "
            "fichier depuis /jobs/{id}/results."
        )


def filename(stem: str, extension: str) -> str:
    """A download name of plain ASCII letters: `stem-AAAA-MM-JJ.extension`."""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = re.sub(r"[^A-Za-z0-9_-]+", "-", ascii_stem).strip("-")[:80] or "export"
    return f"{ascii_stem}-{dt.datetime.now(PARIS).date().isoformat()}.{extension}"


class ExportProcessor(ResorptionProcessor):
    """A process whose output is a file; subclasses implement `export`."""

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        """Export for the caller of the request (or of the job); returns the file made."""
        caller = authenticated_caller()
        inputs = Inputs.of(data, tuple(self.metadata["inputs"]))
        result = self.export(caller, inputs)
        return downloads.media_type(result.media_type, result.filename), result.file

    def export(self, caller: Caller, inputs: Inputs) -> ExportFile:
        """The work of the export."""
        raise NotImplementedError

    def report(self, caller: Caller, percent: int, message: str) -> None:
        """Tell the job's owner how far the export has gone (its progress and message)."""
        job_progress(self, caller)(percent, message)

    def audit(self, caller: Caller, collection: str, groups: set[str], detail: dict[str, Any]) -> None:
        """One audit row for the export (with the sensitive groups it holds)."""
        caller.audit("export", collection, None, groups, detail)
