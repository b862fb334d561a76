"""Which sites may talk to the server: the ``Host`` a request names and the ``Origin`` a browser adds.

Two attacks from a web page open in the user's browser, both of which need no API key when the
server runs with ``--insecure-dev`` (or leaves its reads open):

* **cross-site writes**: a page on another site posts to ``http://127.0.0.1:8000/events``. A
  browser sends such a request without asking first (a "simple" request) when its body is
  ``text/plain``, and it carries the page's ``Origin``. The server refuses every request whose
  ``Origin`` is not its own site or an allowed host (403), and routes with JSON bodies take only
  ``Content-Type: application/json`` (415, in :mod:`lmrec.serving.routes`), which a browser
  never sends cross-site without a CORS preflight this server does not answer;
* **DNS rebinding**: the page's own name is made to resolve to 127.0.0.1, so the browser treats
  the server as same-origin and lets the page read the answers; those requests still name the
  attacker's host in ``Host``. With an allow list (``--allowed-hosts``; by default the loopback
  names when the server binds a loopback address) a request naming any other host is refused
  (400).

``/health`` is exempt from the Host check (a liveness probe names whatever address it dialled),
not from the Origin check.

Example
-------
>>> host_allowed("api.example.com", ["*.example.com"]), host_allowed("example.org", LOOPBACK_NAMES)
(True, False)
"""
from __future__ import annotations

import re
from typing import Sequence
from urllib.parse import urlsplit

from lmrec.errors import ConfigError
from lmrec.serving.guard import App, Receive, Scope, Send, send_json

HOST_ENTRY = re.compile(r"\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*|\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]?")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
UNCHECKED_PATHS = ("/health",)  # Host not checked: probes dial an address, not a name


def split_host(value: str) -> tuple[str, int | None]:
    """The host name (lowercase) and port of a ``Host`` header value: ``[::1]:80`` -> ``("::1", 80)``,
    ``example.org`` -> ``("example.org", None)``; ``("", None)`` when it cannot be read."""
    try:
        parts = urlsplit("//" + value.strip())
        return (parts.hostname or ""), parts.port
    except ValueError:  # a port that is not a number, a bracket left open
        return "", None


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether ``host`` (a bare name) matches an entry of ``allowed``: the same name, ``*.domain``
    (any name under that domain, not the domain itself) or ``*`` (any host)."""
    for entry in allowed:
        entry = entry.strip().lower().strip("[]")
        if entry == "*" or entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def validate_hosts(allowed: Sequence[str]) -> list[str]:
    """The entries of ``--allowed-hosts``, checked: host names, IP addresses, ``*.domain`` or ``*``;
    no scheme, port or path (ConfigError naming the entry)."""
    for entry in allowed:
        if not HOST_ENTRY.fullmatch(entry):
            raise ConfigError(f"--allowed-hosts takes host names (api.example.com), IP addresses, '*.example.com' "
                              f"or '*', without scheme or port; got {entry[:60]!r}.")
    return list(allowed)


class HostGuard:
    """ASGI middleware: refuses requests that name a host outside ``allowed`` (none: any host) or
    that come from a foreign ``Origin``: another site (scheme, name and port) than the one the
    request names, or "null"."""

    def __init__(self, app: App, allowed: Sequence[str]) -> None:
        self.app, self.allowed = app, list(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])}
        host, port = split_host(headers.get(b"host", ""))
        if self.allowed and scope.get("path") not in UNCHECKED_PATHS and not host_allowed(host, self.allowed):
            await send_json(send, 400, "the Host header names a host this server does not answer for; its names "
                                       "are set with --allowed-hosts", close=True)
            return
        origin = headers.get(b"origin")
        if origin is not None and not same_site(origin, host, port):
            await send_json(send, 403, "cross-site request refused: the Origin header names another site than "
                                       "this server (pages of other sites may not call it)", close=True)
            return
        await self.app(scope, receive, send)


def same_site(origin: str, host: str, port: int | None) -> bool:
    """Whether an ``Origin`` header names the site a request's Host names: the same host and, when
    Host gives a port, the same port (an origin without one has its scheme's: 80 or 443)."""
    try:
        parts = urlsplit(origin.strip())
        name, origin_port = (parts.hostname or ""), parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not name or not host:
        return False  # "null" (sandboxed frames, local files) and anything else
    if origin_port is None:
        origin_port = 443 if parts.scheme == "https" else 80
    return name == host and (port is None or port == origin_port)
