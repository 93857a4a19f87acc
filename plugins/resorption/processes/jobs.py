"""Jobs of our processes, stored in PostgreSQL, each visible only to its owner and to admins.

`JobManager` follows pygeoapi's PostgreSQL manager (same columns; written anew over
SQLAlchemy with psycopg 3, since pygeoapi's needs psycopg2 and GeoAlchemy), with four
differences:

- the table (`resorption_jobs.jobs`, created by migration 0006) has an `owner` column,
  the username of the principal that started the job, and keeps the results in its
  `output` column (no files to share between workers);
- `get_jobs` and `get_job` show a job only to its owner and to national administrators;
  anyone else gets pygeoapi's 404 (the job does not exist for them), for the job, its
  results and its deletion alike. Row-level security says the same in the database
  (sql/180_side_paths.sql): each transaction names whose jobs it may read;
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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from pygeoapi.process.base import BaseProcessor, JobNotFoundError, ProcessorExecuteError
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedResponse
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from resorption import settings as app_settings
from resorption.errors import ResorptionError
from resorption.identity import Principal, current_principal
from resorption.processes import callbacks

LOGGER = logging.getLogger(__name__)
SCHEMA = "resorption_jobs"
INTERNAL = "Erreur interne pendant l'exécution du processus : l'équipe technique a été prévenue."
# Roles that see every job (the policy's national administrators).
JOB_ADMIN_ROLES = frozenset({"national_admin"})

_background: contextvars.ContextVar[bool] = contextvars.ContextVar("resorption_job_background", default=False)

JOBS = Table(
    "jobs",
    MetaData(),
    Column("identifier", String, primary_key=True, nullable=False),
    Column("type", String, nullable=False),
    Column("process_id", String, nullable=False),
    Column("owner", String, nullable=False),
    Column("created", DateTime),
    Column("started", DateTime),
    Column("finished", DateTime),
    Column("updated", DateTime),
    Column("status", String, nullable=False),
    Column("location", String),
    Column("mimetype", String),
    Column("message", String),
    Column("progress", Integer, nullable=False),
    Column("output", LargeBinary),
    schema=SCHEMA,
)
# What pygeoapi's job documents show (not the owner, not the raw output).
SHOWN = [c for c in JOBS.c if c.name not in ("owner", "output")]


def may_see(principal: Principal, owner: str) -> bool:
    """Whether `principal` may see a job started by `owner`."""
    return not principal.is_anonymous and (principal.username == owner or principal.role in JOB_ADMIN_ROLES)


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
        self.connection = manager_def["connection"]
        self.output_dir = None  # outputs live in the table
        # The French message of each failing job, until its failure is recorded.
        self._failures: dict[str, str] = {}
        self._engine = create_engine(self.connection, pool_pre_ping=True, pool_size=2, max_overflow=4)

    # -- who sees what ---------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A transaction that may read the caller's jobs (all of them for an administrator)."""
        principal = current_principal()
        every = "on" if principal.role in JOB_ADMIN_ROLES and not principal.is_anonymous else "off"
        with Session(self._engine) as session, session.begin():
            session.execute(
                text(
                    "SELECT set_config('resorption.jobs_owner', :owner, true), "
                    "set_config('resorption.jobs_all', :every, true)"
                ),
                {"owner": principal.username, "every": every},
            )
            yield session

    def get_jobs(
        self, status: JobStatus | None = None, limit: int | None = None, offset: int | None = None
    ) -> dict:
        """The jobs the caller may see, newest first."""
        principal = current_principal()
        query = select(*SHOWN).order_by(JOBS.c.created.desc())
        if principal.role not in JOB_ADMIN_ROLES:
            query = query.where(JOBS.c.owner == principal.username)
        if status is not None:
            query = query.where(JOBS.c.status == status.value)
        with self._session() as session:
            jobs = [dict(r._mapping) for r in session.execute(query)]
        matched = len(jobs)
        if offset:
            jobs = jobs[offset:]
        if limit:
            jobs = jobs[:limit]
        return {"jobs": jobs, "numberMatched": matched}

    def _row(self, job_id: str) -> dict[str, Any]:
        with self._session() as session:
            row = session.execute(select(JOBS).where(JOBS.c.identifier == job_id)).first()
        if row is None or not may_see(current_principal(), row.owner):
            raise JobNotFoundError()
        return dict(row._mapping)

    def get_job(self, job_id: str) -> dict:
        """One job, if the caller may see it (else: not found)."""
        row = self._row(job_id)
        return {k: v for k, v in row.items() if k not in ("owner", "output")}

    def get_job_result(self, job_id: str) -> tuple[Any, ...]:
        """The output of a successful job the caller may see."""
        row = self._row(job_id)
        if JobStatus[row["status"]] != JobStatus.successful or row["output"] is None:
            return (None,)
        output = bytes(row["output"])
        mimetype = row["mimetype"]
        if mimetype in (None, "application/json"):
            return mimetype, orjson.loads(output)
        return mimetype, output

    def delete_job(self, job_id: str) -> bool:
        """Delete a job the caller may see."""
        self._row(job_id)
        with self._session() as session:
            return session.execute(delete(JOBS).where(JOBS.c.identifier == job_id)).rowcount == 1

    def add_job(self, job_metadata: dict) -> str:
        """Record a new job with its owner."""
        with self._session() as session:
            session.execute(insert(JOBS).values(**job_metadata, owner=current_principal().username))
        return job_metadata["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Change some columns of a job; a failure keeps only the process's French message."""
        if update_dict.get("status") == JobStatus.failed.value:
            update_dict = {**update_dict, "message": self._failures.pop(job_id, INTERNAL)}
        with self._session() as session:
            result = session.execute(update(JOBS).where(JOBS.c.identifier == job_id).values(**update_dict))
        return result.rowcount == 1

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
        execute = p.execute

        def guarded(data: dict, **kwargs: Any) -> tuple[str, Any]:
            try:
                mimetype, outputs = execute(data, **kwargs)
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

        p.execute = guarded  # type: ignore[method-assign]
        try:
            mimetype, outputs, status = super()._execute_handler_sync(
                p, job_id, data_dict, requested_outputs, subscriber, requested_response
            )
        finally:
            p.execute = execute  # type: ignore[method-assign]
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
        self.update_job(job_id, {"location": None, "output": _encode(outputs)})
        return mimetype, outputs, status

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
        settings = app_settings.current()
        callbacks.notify(url, subscriber, status.value, settings.public_url, settings.callback_urls)

    def __repr__(self) -> str:
        return f"<JobManager> {self.name}"


def _encode(outputs: Any) -> bytes:
    """The bytes stored for an output."""
    if isinstance(outputs, bytes):
        return outputs
    if isinstance(outputs, str):
        return outputs.encode("utf-8")
    return orjson.dumps(outputs)
