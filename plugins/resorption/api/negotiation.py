"""What a request asks for besides its path and filters: a format and a language, negotiated once.

pygeoapi's `APIRequest.from_flask` negotiates them on every request, and to do so scans every
request header five times (case-insensitively, with a regular expression per preference). Yet
its answer depends on five strings only: `f`, `lang`, `Accept`, `Accept-Language` and
`Accept-Encoding`. Each distinct combination is negotiated by pygeoapi's own code once per
process and application, and shared by the requests that ask the same (a few combinations in
practice: QGIS, GDAL, browsers, scripts), with the response headers it implies. The result is
read-only: nobody changes it, every request copies the headers it adds to.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Request
from pygeoapi.api import API, APIRequest

# Distinct combinations remembered per application; past this, the memory starts over (a client
# sending ever new headers costs a negotiation per request, as before, and no memory).
MAX_REMEMBERED = 512


@dataclass(frozen=True, slots=True)
class Asked:
    """A negotiated request: pygeoapi's view of it, and the response headers it implies."""

    request: APIRequest  # format and locale only: its params, headers and data are not the request's
    headers: Mapping[str, str]  # pygeoapi's response headers with the API's own: copy before changing


class _Parts:
    """The parts of a request that pygeoapi's negotiation reads, as it reads them."""

    def __init__(self, key: tuple[str | None, ...]) -> None:
        f, lang, accept, accept_language, accept_encoding = key
        self.args = {name: value for name, value in (("f", f), ("lang", lang)) if value is not None}
        self.headers = {
            name: value
            for name, value in (
                ("Accept", accept),
                ("Accept-Language", accept_language),
                ("Accept-Encoding", accept_encoding),
            )
            if value is not None
        }
        self.path_info = ""


_remembered: weakref.WeakKeyDictionary[API, dict[tuple[str | None, ...], Asked]] = weakref.WeakKeyDictionary()


def negotiate(api: API, request: Request) -> Asked:
    """The format and language `request` asks for, as pygeoapi negotiates them."""
    lang = None
    for name, value in request.args.items():
        # pygeoapi finds `lang` whatever its case and spaces, the last one written winning
        if name.strip().lower() == "lang":
            lang = value
    headers = request.headers
    key = (
        request.args.get("f"),
        lang,
        headers.get("Accept"),
        headers.get("Accept-Language"),
        headers.get("Accept-Encoding"),
    )
    known = _remembered.get(api)
    if known is None:
        known = _remembered.setdefault(api, {})
    asked = known.get(key)
    if asked is None:
        api_request = APIRequest(_Parts(key), api.locales)
        asked = Asked(api_request, api_request.get_response_headers(**api.api_headers))
        if len(known) >= MAX_REMEMBERED:
            known.clear()
        known[key] = asked
    return asked
