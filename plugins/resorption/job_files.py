"""The files jobs make (exports), kept in PostgreSQL in parts, sent back part by part.

A process writes its file to a temporary file on local disk (`temporary`) and returns it as
a `MadeFile`; the job manager keeps it with the job (`store`: parts of `PART_BYTES` in
`resorption_jobs.job_files`, sql/105_job_files.sql) and deletes the temporary file. A
download (the synchronous answer, `/jobs/{id}/results`) reads one part per short
transaction (`parts`), so a slow client holds no connection of the pool, and no app
process holds more than a part in memory. Parts live in the database, not on a local disk:
any app process sharing the database serves any job's file (workers keep no state), the
file is saved and restored with the rest, and it goes with its job (foreign key: deleting
the job, or the purger, deletes it). Row-level security shows a file only to whom its job
shows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from resorption import statements
from resorption.caller import Caller

SQL = statements.load("job_files")

PART_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MadeFile:
    """A file a process wrote on local disk, to keep with its job (then deleted)."""

    path: Path

    def discard(self) -> None:
        """Delete the temporary file."""
        self.path.unlink(missing_ok=True)


def temporary(suffix: str) -> MadeFile:
    """A new empty temporary file for a process to write its output into."""
    handle, name = tempfile.mkstemp(prefix="resorption-job-", suffix=suffix)
    os.close(handle)
    return MadeFile(Path(name))


class FileGone(Exception):
    """The job (and so its file) was deleted while its file was being sent."""


def store(caller: Caller, job_id: str, made: MadeFile) -> int:
    """Keep the file with the job, part by part, in one transaction; how many bytes it holds."""
    size = 0
    with caller.keeping_jobs(kind="export") as conn, made.path.open("rb") as source:
        part = 0
        while True:
            chunk = source.read(PART_BYTES)
            if not chunk and part > 0:
                break
            conn.execute(SQL.insert_part, (job_id, part, chunk))  # an empty file is one empty part
            size += len(chunk)
            part += 1
            if len(chunk) < PART_BYTES:
                break
    return size


def count(caller: Caller, job_id: str) -> int:
    """How many parts the job's file has (0: no file, or a job the caller may not see)."""
    with caller.keeping_jobs() as conn:
        return conn.execute(SQL.parts, (job_id,)).fetchone()[0]


def parts(caller: Caller, job_id: str, total: int) -> Iterator[bytes]:
    """The file's parts in order, each read in a transaction of its own."""
    for part in range(total):
        with caller.keeping_jobs() as conn:
            row = conn.execute(SQL.part, (job_id, part)).fetchone()
        if row is None:  # deleted meanwhile: the answer breaks off rather than look complete
            raise FileGone(job_id)
        yield bytes(row[0])


def read(caller: Caller, job_id: str) -> bytes:
    """The whole file (for a synchronous answer in a JSON document: a small export)."""
    return b"".join(parts(caller, job_id, count(caller, job_id)))
