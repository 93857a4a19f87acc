"""Files as process outputs: the file's name travels in its media type, the answer names it.

pygeoapi stores and serves a process output with its media type only (for a synchronous
run and for `/jobs/{id}/results` alike). A process that makes a file returns
`media_type(type, filename)`: the name rides along as a `name` parameter (kept with the
job), and `as_attachment`, run after each response, turns it into
`Content-Disposition: attachment; filename=…`, so browsers and clients save the file
under its name.
"""

from __future__ import annotations

from flask import Response
from werkzeug.http import dump_options_header, parse_options_header


def media_type(media: str, filename: str) -> str:
    """`media` carrying the name of the file (ASCII letters, digits, `-`, `_` and `.`)."""
    return f'{media}; name="{filename}"'


def as_attachment(response: Response) -> Response:
    """Move a `name` parameter of the Content-Type to a Content-Disposition header."""
    value, options = parse_options_header(response.headers.get("Content-Type", ""))
    filename = options.pop("name", None)
    if filename:
        response.headers["Content-Type"] = dump_options_header(value, options)
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
