"""Origins of URLs (RFC 6454): where the server may send a request, compared one way everywhere.

The harvest follows `next` links and redirects only within its source's origin; job
callbacks go only to the URL prefixes the configuration allows. Both compare origins here.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """Scheme, host (lower case) and port (the scheme's by default) of an URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: an origin nothing else has
        port = -1
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme, -1)


def under(url: str, prefix: str) -> bool:
    """Whether `url` lies under `prefix`: same origin, its path starting with the prefix's.

    An URL with credentials, a backslash or a `.`/`..` segment (even percent-encoded) is
    never under anything: a server could read it as another path than the one compared.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return False
    if "\\" in url or any(unquote(s) in (".", "..") for s in parts.path.split("/")):
        return False
    path = parts.path or "/"
    return origin(url) == origin(prefix) and path.startswith(urlsplit(prefix).path or "/")
