"""WebSocket callbacks (§3.2): keyfob dials the callback's ``ws://``/``wss://`` target and
writes each ``Message`` (or a batch array) to it as one text frame.

One connection per callback, opened on its first message and kept (the library's ping/pong
keep-alive runs on it every ``ping_interval`` seconds); one left unused ``idle_s`` is closed.
The address is vetted like a webhook's (``resolver``): the name is resolved once, every answer
is checked against the operator's policy, and the socket is opened by this module to exactly
the checked address and handed to ``websockets``, which then follows no redirect.

A frame counts as delivered once written to a healthy connection, and health is proven, not
assumed: after the write the sender pings and waits for the pong. Frames are processed in
order at the other end, so the pong means the receiver has read the frame; a connection that
died under the write (the receiver dropped it mid-batch) fails the attempt, which is retried on
a new connection like a failed POST (the fixed user-face policy, 10 s until 72 h). Every attempt
becomes an ``Outcome`` for the delivery log, without an HTTP status.

Frames stay exactly the ``Message``; the connection is what is signed. When the callback has
active secrets, the opening handshake carries ``webhook-id`` (fresh per connection),
``webhook-timestamp`` and ``webhook-signature`` over ``{id}.{timestamp}.{callbackId}``
(``notifications.signing``), and ``keyfob-callback-id`` names the callback signed for, so a
receiver holding a secret can refuse anyone else's dial.
"""

from __future__ import annotations

import asyncio
import secrets as random_source
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.protocol import State
from websockets.uri import parse_uri

from keyfob import __version__
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.addresses import parse_ip
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outcome import Outcome, RefusedAddress, error_class, excerpt
from keyfob.notifications.resolver import SafeResolver, check_host
from keyfob.notifications.signing import sign

USER_AGENT = f"keyfob/{__version__}"
_DETAIL_CHARS = 300


@dataclass
class _Link:
    """A callback's connection, and the lock that makes opening it happen once."""

    url: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connection: ClientConnection | None = None
    used: float = 0.0


class WebSocketChannel:
    """Writes frames to WebSocket callbacks; create and use it inside one running event loop."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        timeout: float = 10.0,
        ping_interval: float = 20.0,
        idle_s: float = 300.0,
        resolver: SafeResolver | None = None,
        metrics: DeliveryMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``monotonic`` is the clock of idleness (tests move it by hand)."""
        self._policy = policy
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._idle_s = idle_s
        self._resolver = resolver or SafeResolver(policy)
        self._metrics = metrics
        self._links: dict[str, _Link] = {}
        self._monotonic = monotonic
        self._swept = monotonic()

    @property
    def open_connections(self) -> int:
        return sum(1 for link in self._links.values() if _healthy(link.connection))

    async def send(
        self, callback_id: str, url: str, frame: str, secrets: Sequence[str] = ()
    ) -> Outcome:
        """One attempt: write ``frame`` on the callback's connection (opened if need be, its
        handshake signed with ``secrets`` when there are any)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                connection = await self._connection(callback_id, url, secrets)
                await connection.send(frame)
                pong = await connection.ping()
                await pong
        except Exception as error:
            await self._drop(callback_id)
            return self._observed(_failed(error, _since(started)))
        return self._observed(
            Outcome(
                delivered=True,
                status_code=None,
                error_class=None,
                latency_ms=_since(started),
                response_excerpt=None,
            )
        )

    async def _connection(
        self, callback_id: str, url: str, secrets: Sequence[str] = ()
    ) -> ClientConnection:
        link = self._links.get(callback_id)
        if link is None or link.url != url:
            if link is not None:  # the callback's target changed (PUT)
                await self._drop(callback_id)
            link = self._links[callback_id] = _Link(url)
        link.used = now = self._monotonic()
        if now - self._swept > self._idle_s / 4:
            self._close_idle(now)
        if _healthy(link.connection):
            assert link.connection is not None
            return link.connection
        async with link.lock:
            if not _healthy(link.connection):
                link.connection = await self._open(url, handshake(callback_id, secrets))
            assert link.connection is not None
            return link.connection

    async def _open(self, url: str, headers: dict[str, str]) -> ClientConnection:
        uri = parse_uri(url)
        sock = await self._dial(uri.host, uri.port)
        options: dict[str, object] = {"sock": sock}
        if uri.secure:
            options["ssl"] = ssl.create_default_context()
            options["server_hostname"] = uri.host
        try:
            return await connect(
                url,
                proxy=None,
                compression=None,
                open_timeout=self._timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._timeout,
                close_timeout=1.0,
                user_agent_header=USER_AGENT,
                additional_headers=headers,
                **options,  # type: ignore[arg-type]
            )
        except BaseException:
            sock.close()
            raise

    async def _dial(self, host: str, port: int) -> socket.socket:
        """A TCP socket connected to an address of ``host`` that the policy allows."""
        if parse_ip(host) is not None:
            check_host(host, self._policy)
            addresses = [host.strip("[]")]
        else:
            found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
            addresses = [str(result["host"]) for result in found]
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for address in dict.fromkeys(addresses):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (address, port))
            except OSError as error:
                sock.close()
                last = error
                continue
            return sock
        raise last or OSError(f"{host} has no address")

    async def _drop(self, callback_id: str) -> None:
        link = self._links.pop(callback_id, None)
        if link is not None and link.connection is not None:
            link.connection.transport.abort()

    def _close_idle(self, now: float) -> None:
        """Close the connections of callbacks that sent nothing for ``idle_s``; looked at on
        the way to a send, every quarter of ``idle_s`` at most."""
        self._swept = now
        cutoff = now - self._idle_s
        for callback_id, link in list(self._links.items()):
            if link.used < cutoff and not link.lock.locked():
                del self._links[callback_id]
                if link.connection is not None:
                    link.connection.transport.abort()

    def _observed(self, outcome: Outcome) -> Outcome:
        if self._metrics is not None:
            self._metrics.observe_attempt(outcome)
        return outcome

    async def close(self) -> None:
        """Close every connection with a normal closing handshake."""
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(
            *(link.connection.close() for link in links if link.connection is not None),
            return_exceptions=True,
        )
        await self._resolver.close()


CALLBACK_HEADER = "keyfob-callback-id"


def handshake(callback_id: str, secrets: Sequence[str]) -> dict[str, str]:
    """The signature headers of a connection's opening request (none without a secret)."""
    if not secrets:
        return {}
    msg_id = "msg_" + random_source.token_hex(16)
    signed = sign(secrets, msg_id, int(time.time()), callback_id.encode())
    return {CALLBACK_HEADER: callback_id, **signed}


def _healthy(connection: ClientConnection | None) -> bool:
    return connection is not None and connection.state is State.OPEN


def _failed(error: Exception, latency_ms: int) -> Outcome:
    """A failed attempt: the handshake's HTTP status when there was one, else the error class."""
    if isinstance(error, InvalidStatus):
        status = error.response.status_code
        return Outcome(
            delivered=False,
            status_code=status,
            error_class=f"http_{status}",
            latency_ms=latency_ms,
            response_excerpt=excerpt(bytes(error.response.body or b"")),
            detail=_describe(error),
        )
    if isinstance(error, InvalidURI):
        kind = "invalid_url"
    elif isinstance(error, RefusedAddress):
        kind = "refused_address"
    elif isinstance(error, ConnectionClosed):
        kind = "connect"
    elif isinstance(error, InvalidHandshake):
        kind = "protocol"
    elif isinstance(error, socket.gaierror):
        kind = "dns"
    else:
        kind = error_class(error)
    return Outcome(
        delivered=False,
        status_code=None,
        error_class=kind,
        latency_ms=latency_ms,
        response_excerpt=None,
        detail=_describe(error),
    )


def _describe(error: BaseException) -> str:
    return (str(error) or type(error).__name__)[:_DETAIL_CHARS]


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
