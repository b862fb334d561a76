"""What stands between a client and the routes: limits, timeouts, security headers, short errors.

* :class:`BodyGuard` (ASGI middleware) reads each request body before the app sees it: at most
  ``max_body`` bytes (413 beyond, the rest drained so the client reads the answer) and all of it
  within ``body_timeout`` seconds of the headers (408), so a client trickling a body cannot hold
  a worker. The app then gets the body in one piece. A request that declares no body (neither
  Content-Length nor Transfer-Encoding, as most reads) passes straight through.
* :class:`GuardedProtocol` (uvicorn's httptools protocol) closes a connection whose request
  headers are not complete within ``header_timeout`` seconds of its first byte (or of the
  connection, for one that sends nothing), or that exceed ``max_header_bytes`` (431): uvicorn
  itself only times out idle keep-alive connections. It answers ``GET /health`` even when
  ``limit_concurrency`` connections are open (uvicorn answers 503 to every request then).
* :class:`SecurityHeaders` adds a strict Content-Security-Policy (scripts and styles from this
  server only), ``X-Content-Type-Options``, ``X-Frame-Options`` and ``Referrer-Policy``.
* :func:`validation_detail` turns pydantic's errors into a short message that names each field,
  what was expected and what kind of value was given, without echoing the input.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from typing import Any, Awaitable, Callable

log = logging.getLogger("lmrec.serve")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]
DRAIN_FACTOR = 16  # an oversized body is read and dropped up to this many times the limit, then cut off
MAX_ERRORS = 10  # validation errors listed in one answer


async def send_json(send: Send, status: int, detail: str, *, close: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """Reads the whole request body with a size limit and a deadline, then hands it to ``app``."""

    def __init__(self, app: App, max_body: int, body_timeout: float) -> None:
        self.app, self.max_body, self.body_timeout = app, max_body, body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _may_have_body(scope):  # most reads: no body, nothing to wait for or limit
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        too_large = declared is not None and declared > self.max_body
        chunks: list[bytes] = []
        try:
            size = await asyncio.wait_for(self._read(receive, chunks, too_large), self.body_timeout)
        except asyncio.TimeoutError:
            await send_json(send, 408, f"the request body did not arrive within {self.body_timeout:g} s "
                                       "(--body-timeout)", close=True)
            return
        except _Disconnected:
            return
        if too_large or size > self.max_body:
            shown = declared if declared is not None else size
            await send_json(send, 413, f"the request body has {'at least ' if declared is None else ''}{shown} bytes; "
                                       f"the limit is {self.max_body} (--max-body)", close=True)
            return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect is left to wait for

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, chunks: list[bytes], drop: bool) -> int:
        """Receive the body into ``chunks`` (or drop it when it is already known to be too large);
        returns its size, stopping early once it is far past the limit."""
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            part = message.get("body", b"")
            size += len(part)
            if size > self.max_body:
                drop = True
                chunks.clear()
            if not drop:
                chunks.append(part)
            if not message.get("more_body", False) or size > DRAIN_FACTOR * self.max_body:
                return size


class _Disconnected(Exception):
    """The client went away before its body arrived."""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _may_have_body(scope: Scope) -> bool:
    """Whether a request may carry a body: HTTP/1.1 sends one only with a Content-Length (other
    than 0) or a Transfer-Encoding header."""
    return any(name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0")
               for name, value in scope.get("headers", []))


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def validation_detail(errors: list[dict[str, Any]], total: int | None = None) -> tuple[str, list[dict[str, Any]]]:
    """("field: what was expected (got what)", [{loc, msg, type}]) for at most MAX_ERRORS errors of
    ``total`` (default: all of ``errors``). Field names that came from the client (an item's own
    fields) are cut to :data:`ECHO` characters, values are described (:func:`describe`)."""
    listed = []
    for e in errors[:MAX_ERRORS]:
        parts = [_cut(str(p)) for p in e.get("loc", ())]
        msg = quiet(str(e.get("msg", "invalid"))[:200])
        got = describe(e["input"]) if "input" in e and e.get("type") != "missing" else ""
        listed.append({"loc": parts, "msg": msg, "type": e.get("type", ""),
                       "text": f"{'.'.join(parts)}: {msg}" + (f" (got {got})" if got else "")})
    more = (len(errors) if total is None else total) - len(listed)
    detail = "; ".join(x.pop("text") for x in listed) + (f"; and {more} more errors" if more > 0 else "")
    return detail, listed


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


ECHO = 16  # characters of a client's text an error may repeat: a 422 never carries 20 of the request's in a row
QUOTED = re.compile(r"'[^']{%d,}'|\"[^\"]{%d,}\"" % (ECHO - 1, ECHO - 1))


def _cut(text: str) -> str:
    return text if len(text) <= ECHO else text[: ECHO - 3] + "..."


def quiet(message: str) -> str:
    """``message`` with every quoted text longer than :data:`ECHO` characters replaced by its length:
    for errors raised deeper down that quote a value (``'...'`` or ``"..."``) a client sent."""
    return QUOTED.sub(lambda m: f"<{len(m.group()) - 2} characters>", message)


def describe(value: Any) -> str:
    """A short description of a request value: itself when short (at most :data:`ECHO` characters
    as JSON), else its kind and size."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        text = json.dumps(value)
        return text if len(text) <= ECHO else f"a number of {len(text)} characters"
    if isinstance(value, str):
        text = json.dumps(value)
        return text if len(text) <= ECHO else f"a string of {len(value)} characters"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} entries"
    if isinstance(value, dict):
        return f"an object with {len(value)} fields"
    return f"a {type(value).__name__}"


try:  # uvicorn[standard] brings httptools; without it uvicorn's h11 protocol runs unguarded
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

HEALTH = b"/health"


if HttpToolsProtocol is not None:

    class GuardedProtocol(HttpToolsProtocol):  # type: ignore[misc, valid-type]
        """uvicorn's httptools protocol with a deadline and a size limit on request headers.

        Use through :func:`guarded_protocol`, which fixes the two limits (uvicorn builds one
        protocol object per connection with its own arguments).
        """

        def __init__(self, *args: Any, header_timeout: float = 10.0, max_header_bytes: int = 65536,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.header_timeout, self.max_header_bytes = header_timeout, max_header_bytes
            self._header_timer: asyncio.TimerHandle | None = None
            self._header_bytes = 0
            self._in_headers = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._in_headers = True
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_headers or self.transport.is_closing():
                return
            self._header_bytes += len(data)  # a chunk that completed the headers is not counted: fine
            if self._header_bytes > self.max_header_bytes:
                self._reject(431, "Request Header Fields Too Large")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers, self._header_bytes = True, 0
            self._arm()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            limit = self.limit_concurrency
            if limit is not None and self._liveness():
                self.limit_concurrency = None  # this request only: /health is answered even at the limit
            try:
                super().on_headers_complete()
            finally:
                self.limit_concurrency = limit

        def _liveness(self) -> bool:
            """Whether the request is ``GET /health``: answered on the event loop at once, so it is
            exempt from ``limit_concurrency`` (slow clients holding every connection must not make a
            liveness probe restart a healthy server)."""
            try:
                return self.parser.get_method() in (b"GET", b"HEAD") and httptools.parse_url(self.url).path == HEALTH
            except httptools.HttpParserError:
                return False

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self._in_headers and not self.transport.is_closing():
                if self._header_bytes:  # a request had begun: say why it ends
                    self._reject(408, "Request Timeout")
                else:
                    self.transport.close()

        def _reject(self, status: int, reason: str) -> None:
            body = reason.encode()
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                                 b"connection: close\r\n\r\n%s" % (status, reason.encode(), len(body), body))
            self.transport.close()
            self._disarm()


def guarded_protocol(header_timeout: float, max_header_bytes: int = 65536) -> Any:
    """The ``http=`` argument of ``uvicorn.run``: :class:`GuardedProtocol` with these limits
    (a picklable partial, so worker processes get it too), or "auto" without httptools."""
    if HttpToolsProtocol is None:  # pragma: no cover
        log.warning("httptools is not installed: request headers have no deadline (install uvicorn[standard])")
        return "auto"
    from functools import partial

    return partial(GuardedProtocol, header_timeout=header_timeout, max_header_bytes=max_header_bytes)
