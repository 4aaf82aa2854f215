"""A lean HTTP/1.1 client for webhook POSTs: one request at a time per connection, kept alive.

Why not the general-purpose client: at a thousand notifications a second its per-request
machinery (request and response objects, header multidicts, tracing hooks, timer contexts,
stream readers) was the largest single cost in the delivery worker's profile. A webhook POST
needs little of it: a request of one fixed shape, a status line, a bounded excerpt of the answer.
Here the request is written as one buffer and the answer parsed by ``httptools`` (llhttp, the
parser the API server already runs on).

What delivery depends on is kept:

* connections are kept alive per origin and reused, newest first, and closed after ``idle_s``
  unused (below the 5 s most servers keep an idle connection), so a reused connection has
  seldom been closed under us; when it has (the peer closed it before a byte of the answer came
  back) the request goes once more on a new connection, as browsers do;
* names are resolved by the caller's resolver (``SafeResolver``: the SSRF check) and the
  connection goes to exactly the addresses it returned, in order; IP literals are the caller's
  to check, as they never reach a resolver;
* TLS with the system's trust store and the host-name check;
* at most ``excerpt_bytes`` of the answer's body are read; a longer body closes the connection
  rather than being read to its end;
* there are no redirects to follow and no cookie jar.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import httptools

IDLE_S = 4.0
"""How long a kept-alive connection may wait for its next request before it is closed."""


class NameNotResolved(OSError):
    """The target's host name did not resolve."""


class BadAnswer(Exception):
    """What came back is not a valid HTTP/1.x answer."""


class PeerClosed(ConnectionError):
    """The peer closed the connection before a complete answer."""


class AddressResolver(Protocol):
    """The shape of ``SafeResolver.resolve``: addresses as ``{"host", "port", "family"}``."""

    def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> Awaitable[Sequence[Mapping[str, Any]]]: ...


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a connection goes: scheme, host (an IP literal or a name) and port."""

    https: bool
    host: str
    port: int
    literal: bool
    """The host is an IP address: it is dialled as it is, without the resolver."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    """At most the client's ``excerpt_bytes`` of the body."""


class Http1Client:
    """Kept-alive HTTP/1.1 connections per origin; create and use it inside one event loop."""

    def __init__(
        self,
        resolver: AddressResolver,
        *,
        excerpt_bytes: int,
        idle_s: float = IDLE_S,
        tls: Callable[[], ssl.SSLContext] = ssl.create_default_context,
    ) -> None:
        self._resolver = resolver
        self._excerpt = excerpt_bytes
        self._idle_s = idle_s
        self._make_tls = tls
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def post(self, origin: Origin, request: bytes) -> Answer:
        """Send ``request`` (a whole HTTP/1.1 request) and read the answer's status and start.

        Raises ``OSError`` (``NameNotResolved``, ``PeerClosed``, ``ssl.SSLError`` …) or
        ``BadAnswer``; a time-out is the caller's, and cancelling closes the connection.
        """
        connection = self._reusable(origin)
        if connection is not None:
            try:
                return await self._exchange(origin, connection, request)
            except PeerClosed:
                if connection.answered:
                    raise
        connection = await self._connect(origin)
        return await self._exchange(origin, connection, request)

    async def close(self) -> None:
        """Close every connection, idle or in use."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
        self._busy.clear()

    # -- connections ----------------------------------------------------------------

    def _reusable(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest = time.monotonic() - self._idle_s
        while idle:
            connection = idle.pop()
            if connection.open and connection.idle_since > oldest:
                return connection
            connection.close()
        return None

    async def _exchange(self, origin: Origin, connection: _Connection, request: bytes) -> Answer:
        self._busy.add(connection)
        kept = False
        try:
            answer = await connection.send(request)
            kept = connection.keep_alive()
            return answer
        finally:
            self._busy.discard(connection)
            if kept:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(connection)
                self._sweep_later()
            else:
                connection.close()

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.https else None
        last: OSError | None = None
        for address, port, family in await self._addresses(origin):
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._excerpt),
                    host=address,
                    port=port,
                    family=family,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
                return connection
            except (ssl.SSLError, ssl.CertificateError):
                raise  # the peer is there: another of its addresses will not do better
            except OSError as error:
                last = error
        raise last or NameNotResolved(f"{origin.host} has no address")

    async def _addresses(self, origin: Origin) -> list[tuple[str, int, int]]:
        if origin.literal:
            return [(origin.host, origin.port, 0)]
        try:
            found = await self._resolver.resolve(origin.host, origin.port, socket.AF_UNSPEC)
        except OSError as error:
            raise NameNotResolved(f"cannot resolve {origin.host}: {error}") from error
        return [(item["host"], item["port"], item["family"]) for item in found]

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self._make_tls()
        return self._tls

    def _sweep_later(self) -> None:
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(self._idle_s, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle too long; runs while any connection is idle."""
        self._sweeper = None
        oldest = time.monotonic() - self._idle_s
        for origin, idle in list(self._idle.items()):
            kept = []
            for connection in idle:
                if connection.open and connection.idle_since > oldest:
                    kept.append(connection)
                else:
                    connection.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]
        if self._idle:
            self._sweep_later()


class _Connection(asyncio.Protocol):
    """One socket and its answer parser; the parser's callbacks fill the current answer."""

    def __init__(self, excerpt_bytes: int) -> None:
        self._limit = excerpt_bytes
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._complete = False
        self._reusable = False
        self.open = False
        self.answered = False
        """A byte of the current answer arrived: the request reached the peer."""
        self.idle_since = 0.0

    # -- used by the client -----------------------------------------------------------

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self._transport is not None
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self._body, self._size = [], 0
        self._headers_done = self._complete = self._reusable = self.answered = False
        self._transport.write(request)
        return waiter

    def keep_alive(self) -> bool:
        return self.open and self._complete and self._reusable

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, only alike.
        self._transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        self.answered = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.close()
            waiter.set_exception(BadAnswer(f"invalid HTTP answer: {error}"))
            return
        if self._complete or (self._headers_done and self._size >= self._limit):
            if not self._complete:
                self.close()  # the rest of a long body is never read
            waiter.set_result(self._answer())

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done:
            # An answer whose body runs to the end of the connection, or was cut short: the
            # receiver did answer with this status.
            waiter.set_result(self._answer())
            return
        closed = PeerClosed("the receiver closed the connection before answering")
        closed.__cause__ = exc
        waiter.set_exception(closed)

    # -- httptools callbacks --------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._limit - self._size
        if room > 0:
            self._body.append(body[:room])
        self._size += len(body)

    def on_message_complete(self) -> None:
        self._complete = True
        # Asked here: once the callback returns, the parser is ready for the next answer.
        self._reusable = self._parser.should_keep_alive()

    def _answer(self) -> Answer:
        return Answer(self._parser.get_status_code(), b"".join(self._body))
