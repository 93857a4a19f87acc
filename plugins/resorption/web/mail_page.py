"""The local mail page of the demo: `/courriels`, the messages the embedded SMTP server kept.

Only when the project's own SMTP server is in use (`make demo`, the tests: the setting
`mail_local_dir`, RESORPTION_MAIL_LOCAL_DIR); a deployment that sends through a real SMTP server
has no such page (404), and it answers only on this machine (a client of the loopback
address: the demo may listen on every interface, its messages hold one-time links). It lists
the .eml files, newest first, and shows one: its headers, its text part, and its HTML part on
a page of its own, under a sandboxed Content-Security-Policy (`response_headers.SANDBOXED_CSP`:
nothing loads or runs, only the message's inline styles apply, as in a mail client).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, request

from resorption.errors import NotFound
from resorption.mail_server import read_folder
from resorption.response_headers import SANDBOXED_CSP
from resorption.settings import Settings
from resorption.web.dashboard import base_url, render

NAME = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9]{5}\.eml")


LOOPBACK = frozenset({"127.0.0.1", "::1"})


def _folder() -> Any:
    settings: Settings = current_app.config["RESORPTION_SETTINGS"]
    # The messages hold one-time links: shown on this machine only, never to the network.
    if settings.mail_local_dir is None or request.remote_addr not in LOOPBACK:
        raise NotFound(
            "Pas de page des courriels : le serveur SMTP local de la démonstration n'est pas utilisé."
        )
    return settings.mail_local_dir


def _parts(message: Any) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return (text.get_content() if text else "", html.get_content() if html else "")


def blueprint(api: Any) -> Blueprint:
    """The local mail page, rendered with pygeoapi's templates of `api`."""
    bp = Blueprint("mail_page", __name__)

    def page(template: str, **data: Any) -> Response:
        html = render(api, template, {"links": [], "root": base_url(api), **data})
        return Response(html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})

    @bp.get("/courriels")
    def mails() -> Response:
        found = [
            {"name": name, "to": m["To"], "subject": m["Subject"], "date": m["Date"]}
            for name, m in read_folder(_folder())[:500]
        ]
        return page("comptes/courriels.html", mails=found)

    @bp.get("/courriels/<name>")
    def one_mail(name: str) -> Response:
        if not NAME.fullmatch(name):
            raise NotFound("Courriel inconnu.")
        found = dict(read_folder(_folder()))
        if name not in found:
            raise NotFound("Courriel inconnu.")
        message = found[name]
        text, html = _parts(message)
        headers = [(k, str(v)) for k, v in message.items()]
        return page(
            "comptes/courriel.html",
            name=name,
            headers=headers,
            text=text,
            html=html,
            subject=message["Subject"],
        )

    @bp.get("/courriels/<name>/html")
    def mail_html(name: str) -> Response:
        if not NAME.fullmatch(name):
            raise NotFound("Courriel inconnu.")
        found = dict(read_folder(_folder()))
        if name not in found:
            raise NotFound("Courriel inconnu.")
        _, html = _parts(found[name])
        return Response(
            html,
            content_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": SANDBOXED_CSP, "Cache-Control": "no-store"},
        )

    return bp
