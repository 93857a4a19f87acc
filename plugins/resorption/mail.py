"""E-mail: messages composed from templates, kept in the PostgreSQL outbox, sent over SMTP.

`compose(kind, context)` renders `templates/courriels/<kind>.txt` and `.html` (French, a
plain-text part and an HTML part) with the subject of `SUBJECTS`. Whoever causes a message
writes it to the outbox (sql/200_mail_outbox.sql) in the transaction of its event; the worker
(`send_due`, `resorption courriels envoyer [--boucle]`) claims due messages one at a time with
FOR UPDATE SKIP LOCKED (several workers never take the same one), sends it, and marks it sent
in the same transaction. When the SMTP server is down or refuses, the message stays, its next
attempt pushed back (1, 2, 4… minutes, a day at most): nothing is lost. The Message-ID is fixed
when the message is queued, so a message sent again after a crash is recognisably the same.

The worker runs as the owner of the tables (like the account commands): the outbox is private.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

import psycopg
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from psycopg.rows import dict_row

from resorption import statements
from resorption.settings import PROJECT_ROOT, Settings

SQL = statements.load("mail")
LOG = logging.getLogger(__name__)
TEMPLATES = PROJECT_ROOT / "plugins" / "resorption" / "templates" / "courriels"
MAX_BACKOFF_SECONDS = 24 * 3600

SUBJECTS = {
    "access_request_received": "Votre demande d'accès à Résorption est enregistrée",
    "access_request_notice": "Nouvelle demande d'accès à examiner ({departement})",
    "access_request_refused": "Votre demande d'accès à Résorption",
    "access_request_reminder": "Demandes d'accès en attente sur votre territoire",
    "activation": "Activez votre compte Résorption",
    "password_reset": "Réinitialisation de votre mot de passe Résorption",
    "inactivity_warning": "Votre compte Résorption sera désactivé faute d'utilisation",
    "inactivity_deactivated": "Votre compte Résorption a été désactivé",
    "charter_changed": "La charte d'utilisation de Résorption change (version {version})",
    "weekly_digest": "Résorption — la semaine sur votre territoire ({count} événements)",
    "site_alert": "Résorption — {summary}",
    "indicator_reminder": "Résorption — pensez à mettre à jour les indicateurs de vos actions",
}


@dataclass(frozen=True, slots=True)
class Mail:
    """A composed message: subject, plain text, HTML."""

    subject: str
    text: str
    html: str


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(_templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _templates_dir() -> Any:
    from importlib.resources import files

    installed = files("resorption") / "templates" / "courriels"
    return installed if installed.is_dir() else TEMPLATES


_env: Environment | None = None


def compose(kind: str, context: dict[str, Any]) -> Mail:
    """The message `kind`, rendered with `context` (French text and HTML)."""
    global _env
    if _env is None:
        _env = _environment()
    subject = SUBJECTS[kind].format(**{k: v for k, v in context.items() if isinstance(v, str | int)})
    text = _env.get_template(f"{kind}.txt").render(**context)
    html = _env.get_template(f"{kind}.html").render(subject=subject, **context)
    return Mail(subject, text, html)


def queue(conn: psycopg.Connection, kind: str, user_id: int | None, recipient: str, mail: Mail) -> None:
    """Write a message to the outbox in the open transaction (run as the owner)."""
    conn.execute(SQL.queue, (kind, user_id, recipient, mail.subject, mail.text, mail.html))


def message_of(row: dict[str, Any], settings: Settings) -> EmailMessage:
    """The RFC 5322 message of an outbox row: its fixed Message-ID, a text and an HTML part."""
    _, sender_address = parseaddr(settings.mail_sender)
    domain = sender_address.partition("@")[2] or "resorption.localhost"
    message = EmailMessage()
    message["From"] = settings.mail_sender
    message["To"] = formataddr(("", row["recipient"]))
    message["Subject"] = row["subject"]
    message["Date"] = formatdate(row["created_at"].timestamp(), localtime=False)
    message["Message-ID"] = f"<{row['message_key']}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = "fr"
    message.set_content(row["body_text"], charset="utf-8")
    if row["body_html"]:
        message.add_alternative(row["body_html"], subtype="html", charset="utf-8")
    return message


def _smtp(settings: Settings) -> smtplib.SMTP:
    """A connection to the configured SMTP server (STARTTLS and login when set)."""
    assert settings.smtp_host is not None
    client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
    try:
        if settings.smtp_starttls:
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username and settings.smtp_password:
            client.login(settings.smtp_username, settings.smtp_password)
    except (OSError, smtplib.SMTPException):
        _close(client)  # a refused login or STARTTLS must not leave the session open on the server
        raise
    return client


@dataclass(frozen=True, slots=True)
class Sent:
    """What a run of the worker did."""

    sent: int
    failed: int


def send_due(settings: Settings, limit: int = 500) -> Sent:
    """Send the due messages of the outbox, at most `limit`; failures wait for a later attempt."""
    if settings.smtp_host is None:
        LOG.warning("RESORPTION_SMTP_HOST n'est pas défini : les courriels attendent dans la file.")
        return Sent(0, 0)
    sent = failed = 0
    client: smtplib.SMTP | None = None
    with psycopg.connect(settings.database_url, row_factory=dict_row, autocommit=True) as conn:
        try:
            while sent + failed < limit:
                with conn.transaction():
                    row = conn.execute(SQL.claim).fetchone()
                    if row is None:
                        break
                    try:
                        if client is None:
                            client = _smtp(settings)
                        client.send_message(message_of(row, settings))
                    except (OSError, smtplib.SMTPException) as exc:
                        failed += 1
                        delay = min(MAX_BACKOFF_SECONDS, 60 * 2 ** min(row["attempts"], 20))
                        conn.execute(SQL.postpone, (f"{type(exc).__name__}: {exc}"[:500], delay, row["id"]))
                        LOG.warning(
                            "courriel %s non envoyé (%s), nouvel essai dans %s s", row["id"], exc, delay
                        )
                        if client is not None:
                            _close(client)
                        client = None
                        continue
                    conn.execute(SQL.mark_sent, (row["id"],))
                    sent += 1
        finally:
            if client is not None:
                _close(client)
    return Sent(sent, failed)


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def send_forever(settings: Settings, every: float, stop: Callable[[], bool] = lambda: False) -> None:
    """Send due messages every `every` seconds until `stop()` (the worker's loop mode)."""
    while not stop():
        try:
            send_due(settings)
        except psycopg.OperationalError as exc:  # the database restarts: try again next round
            LOG.warning("base indisponible pour l'envoi des courriels : %s", exc)
        time.sleep(every)


def pending(settings: Settings) -> list[dict[str, Any]]:
    """The messages not sent yet (oldest first), for the command line."""
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        return conn.execute(SQL.pending).fetchall()
