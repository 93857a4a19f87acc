"""Jobs of our processes, stored in PostgreSQL, each visible only to its owner and to admins.

`JobManager` follows pygeoapi's PostgreSQL manager (same columns; written anew over the
caller's psycopg 3 transactions, since pygeoapi's needs psycopg2 and GeoAlchemy), with
these differences:

- the table (`resorption_jobs.jobs`, created by migration 0006) has an `owner` column,
  the username of the principal that started the job, and keeps a JSON result in its
  `output` column; a file (an export: `job_files.MadeFile`) is kept beside it, in parts
  (`resorption.job_files`), and sent back part by part, for the synchronous answer as for
  `/jobs/{id}/results` (no file to share between workers, none held whole in memory);
- `get_jobs` and `get_job` show a job only to its owner and to national administrators;
  anyone else gets pygeoapi's 404 (the job does not exist for them), for the job, its
  results and its deletion alike: row-level security decides (sql/100_jobs.sql),
  each transaction naming whose jobs it may read (`Caller.keeping_jobs`);
- a background job runs in a copy of the request's context, so the process sees the
  principal (and the audit's request) of the caller that started it;
- the errors of a process never reach the client as text of ours or pygeoapi's: a
  synchronous run raises our `ResorptionError` (the app renders it, with its status and
  its French message); a job that fails keeps only that French message;
- callbacks (`subscriber`) go only to the URLs the configuration allows, and carry the
  job's status, never its results (`processes.callbacks`).
"""

from __future__ import annotations

import base64
import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from psycopg import sql
from psycopg.rows import dict_row
from pygeoapi.process.base import BaseProcessor, JobNotFoundError, ProcessorExecuteError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedResponse

from resorption import job_files, statements
from resorption.caller import Caller
from resorption.errors import ResorptionError
from resorption.processes import callbacks

LOGGER = logging.getLogger(__name__)
INTERNAL = "Erreur interne pendant l'exécution du processus : l'équipe technique a été prévenue."

_background: contextvars.ContextVar[bool] = contextvars.ContextVar("resorption_job_background", default=False)

SQL = statements.load("processes_jobs")
# What pygeoapi's job documents show (not the owner, not the raw output).
SHOWN = (
    "identifier",
    "type",
    "process_id",
    "created",
    "started",
    "finished",
    "updated",
    "status",
    "location",
    "mimetype",
    "message",
    "progress",
)
# The columns pygeoapi's manager writes (add_job, update_job), and ours.
COLUMNS = frozenset({*SHOWN, "owner", "output"})


def _names(names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


class _Guarded:
    """A processor whose `execute` is this run's guarded one; everything else is the processor's."""

    def __init__(self, processor: BaseProcessor, execute: Callable[..., tuple[str, Any]]) -> None:
        self._processor = processor
        self.execute = execute

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)


class _Failed(Exception):
    """A process failed with this French message (what the job keeps)."""


class JobManager(BaseManager):
    """Jobs in PostgreSQL, with owners, stored outputs and French errors."""

    def __init__(self, manager_def: dict) -> None:
        """Connect with the URL of the configuration (`postgresql+psycopg://…`)."""
        super().__init__(manager_def)
        self.is_async = True
        self.id_field = "identifier"
        self.supports_subscribing = True
        self.output_dir = None  # outputs live in the table
        # The French message of each failing job, until its failure is recorded.
        self._failures: dict[str, str] = {}

    # -- who sees what ---------------------------------------------------------

    @contextmanager
    def _jobs(self) -> Iterator[Any]:
        """A transaction on the jobs the caller may see (row-level security: `Caller.keeping_jobs`)."""
        with Caller.of_request().keeping_jobs() as conn:
            yield conn.cursor(row_factory=dict_row)

    def get_jobs(
        self, status: JobStatus | None = None, limit: int | None = None, offset: int | None = None
    ) -> dict:
        """The jobs the caller may see, newest first."""
        with self._jobs() as cur:
            if status is None:
                jobs = cur.execute(SQL.jobs).fetchall()
            else:
                jobs = cur.execute(SQL.jobs_of_status, (status.value,)).fetchall()
        matched = len(jobs)
        if offset:
            jobs = jobs[offset:]
        if limit:
            jobs = jobs[:limit]
        return {"jobs": jobs, "numberMatched": matched}

    def _row(self, job_id: str) -> dict[str, Any]:
        with self._jobs() as cur:
            row = cur.execute(SQL.job, (job_id,)).fetchone()
        if row is None:  # unknown, or another's
            raise JobNotFoundError()
        return row

    def get_job(self, job_id: str) -> dict:
        """One job, if the caller may see it (else: not found)."""
        row = self._row(job_id)
        return {k: v for k, v in row.items() if k in SHOWN}

    def get_job_result(self, job_id: str) -> tuple[Any, ...]:
        """The output of a successful job the caller may see."""
        row = self._row(job_id)
        if JobStatus[row["status"]] != JobStatus.successful:
            return (None,)
        if row["output"] is None:
            caller = Caller.of_request()
            parts = job_files.count(caller, job_id)
            if not parts:
                return (None,)
            return row["mimetype"], job_files.parts(caller, job_id, parts)
        output = bytes(row["output"])
        mimetype = row["mimetype"]
        if mimetype in (None, "application/json"):
            return mimetype, orjson.loads(output)
        return mimetype, output

    def delete_job(self, job_id: str) -> bool:
        """Delete a job the caller may see."""
        self._row(job_id)
        with self._jobs() as cur:
            return cur.execute(SQL.delete_job, (job_id,)).rowcount == 1

    def add_job(self, job_metadata: dict) -> str:
        """Record a new job with its owner."""
        values = {**_known(job_metadata), "owner": Caller.of_request().principal.username}
        statement = SQL.insert_job.format(
            columns=_names(values), values=sql.SQL(", ").join(sql.Placeholder() * len(values))
        )
        with self._jobs() as cur:
            cur.execute(statement, list(values.values()))
        return job_metadata["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Change some columns of a job; a failure keeps only the process's French message."""
        if update_dict.get("status") == JobStatus.failed.value:
            update_dict = {**update_dict, "message": self._failures.pop(job_id, INTERNAL)}
        values = _known(update_dict)
        statement = SQL.update_job.format(
            assignments=sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values)
        )
        with self._jobs() as cur:
            return cur.execute(statement, [*values.values(), job_id]).rowcount == 1

    # -- running ---------------------------------------------------------------

    def _execute_handler_async(
        self,
        p: BaseProcessor,
        job_id: str,
        data_dict: dict,
        requested_outputs: dict | None = None,
        subscriber: Any = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, None, JobStatus]:
        """Run the job in a thread that carries the request's context (principal, audit)."""
        context = contextvars.copy_context()

        def run() -> None:
            _background.set(True)
            self._execute_handler_sync(
                p, job_id, data_dict, requested_outputs, subscriber, requested_response
            )

        threading.Thread(target=context.run, args=(run,), name=f"job-{job_id}", daemon=True).start()
        return "application/json", None, JobStatus.accepted

    def _execute_handler_sync(
        self,
        p: BaseProcessor,
        job_id: str,
        data_dict: dict,
        requested_outputs: dict | None = None,
        subscriber: Any = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, Any, JobStatus]:
        """Run the process; store its output, or only a French message when it fails."""
        subscriber = callbacks.of(subscriber, job_id, p.metadata["id"])
        failure: list[BaseException] = []
        stored: list[bool] = []
        execute = p.execute

        def guarded(data: dict, **kwargs: Any) -> tuple[str, Any]:
            try:
                mimetype, outputs = execute(data, **kwargs)
                if isinstance(outputs, job_files.MadeFile):
                    outputs = self._keep_file(job_id, outputs, requested_response)
                    stored.append(True)
                if requested_response == RequestedResponse.document.value and isinstance(outputs, bytes):
                    # A file in a JSON document (pygeoapi would try to serialise the bytes).
                    encoded = base64.b64encode(outputs).decode("ascii")
                    return "application/json", {"mediaType": mimetype, "encoding": "base64", "value": encoded}
                return mimetype, outputs
            except ResorptionError as exc:
                failure.append(exc)
                self._failures[job_id] = exc.message
                raise _Failed(exc.message) from None
            except Exception as exc:
                LOGGER.exception("process %s failed", p.name)
                failure.append(exc)
                self._failures[job_id] = INTERNAL
                raise _Failed(INTERNAL) from None

        # The processor is shared by the worker's threads (and its background jobs): the guard
        # goes on a view of it for this run only, never on the shared object itself.
        mimetype, outputs, status = super()._execute_handler_sync(
            _Guarded(p, guarded),  # type: ignore[arg-type]
            job_id,
            data_dict,
            requested_outputs,
            subscriber,
            requested_response,
        )
        if status == JobStatus.failed:
            error = failure[0] if failure else None
            message = error.message if isinstance(error, ResorptionError) else INTERNAL
            if not _background.get():
                if isinstance(error, ResorptionError):
                    raise error
                raise ProcessorExecuteError(user_msg=INTERNAL)
            return (
                mimetype,
                {"type": "NoApplicableCode", "code": "NoApplicableCode", "description": message},
                status,
            )
        if not stored:
            self.update_job(job_id, {"location": None, "output": _encode(outputs)})
        return mimetype, outputs, status

    @staticmethod
    def _keep_file(job_id: str, made: job_files.MadeFile, requested_response: str | None) -> Any:
        """Keep a process's file with its job; what the synchronous answer then sends: the
        file's parts as they are read back, or, in a JSON document, the whole (small) file."""
        caller = Caller.of_request()
        try:
            job_files.store(caller, job_id, made)
        finally:
            made.discard()
        if _background.get():  # nobody waits for an answer: the owner downloads the results
            return None
        if requested_response == RequestedResponse.document.value:
            return job_files.read(caller, job_id)
        return job_files.parts(caller, job_id, job_files.count(caller, job_id))

    # -- callbacks: ours, in place of pygeoapi's (which would POST the results anywhere) -------

    def _send_in_progress_notification(self, subscriber: callbacks.Callbacks | None) -> None:
        if subscriber is not None:
            self._notify(subscriber.in_progress_uri, subscriber, JobStatus.running)

    def _send_success_notification(self, subscriber: callbacks.Callbacks | None, outputs: Any) -> None:
        if subscriber is not None:
            self._notify(subscriber.success_uri, subscriber, JobStatus.successful)

    def _send_failed_notification(self, subscriber: callbacks.Callbacks | None) -> None:
        if subscriber is not None:
            self._notify(subscriber.failed_uri, subscriber, JobStatus.failed)

    @staticmethod
    def _notify(url: str | None, subscriber: callbacks.Callbacks, status: JobStatus) -> None:
        settings = Caller.of_request().settings
        callbacks.notify(url, subscriber, status.value, settings.public_url, settings.callback_urls)

    def __repr__(self) -> str:
        return f"<JobManager> {self.name}"


def running_as_job() -> bool:
    """Whether the code runs in a job's thread (`Prefer: respond-async`), not in a request."""
    return _background.get()


def job_progress(processor: Any, caller: Caller) -> Callable[[int, str], None]:
    """What tells the owner of the processor's job how far it got (its progress and message)."""

    def report(percent: int, message: str) -> None:
        job_id = getattr(processor, "job_id", None)  # set by pygeoapi's manager before running
        if not job_id:
            return
        with caller.keeping_jobs() as conn:
            conn.execute(SQL.job_progress, (max(0, min(percent, 94)), message, job_id))

    return report


def _known(values: dict) -> dict:
    """The values of known columns (pygeoapi names every column it writes; nothing else is SQL)."""
    unknown = set(values) - COLUMNS
    if unknown:
        raise ValueError(f"colonnes de tâche inconnues : {sorted(unknown)}")
    return values


def _encode(outputs: Any) -> bytes:
    """The bytes stored for an output."""
    if isinstance(outputs, bytes):
        return outputs
    if isinstance(outputs, str):
        return outputs.encode("utf-8")
    return orjson.dumps(outputs)
