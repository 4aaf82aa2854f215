"""The ``Transport`` over a real MQTT broker, for keyfob spread over several processes.

MQTT 3.1.1 spoken directly over an asyncio connection (``mqtt_packets`` holds the bytes).
A library client cost more than the rest of the dispatcher at a thousand remotes a second:
paho, under aiomqtt, reads each packet with three ``recv`` calls, sends each one with its own
``send``, and aiomqtt adds a task and an ``asyncio.wait`` per incoming message and a
``wait_for`` per publication (94 µs of CPU per message published and received back, against
about 20 µs here; see ``docs/decisions.md``). The choices that matter for latency and for not
losing answers:

* ``TCP_NODELAY`` is set on the socket: without it, and without ``set_tcp_nodelay true`` on the
  broker, Nagle's algorithm and delayed acknowledgements cost ~90 ms per QoS 1 exchange;
* what one turn of the event loop writes (PUBACKs for a burst of messages, a batch of
  commands) leaves in one ``write``;
* ``clean_session=False`` by default, with a stable client id: the broker keeps the
  subscriptions and queues QoS 1 messages while we are away (a reconnection, a restart of the
  process under the same id), so a result published meanwhile is delivered afterwards (pass
  ``clean_session=True`` for throw-away clients). Mosquitto keeps dealing a shared
  subscription's share to a member that is away, and delivers it when that id comes back;
* an incoming QoS 1 message is acknowledged (PUBACK) only once the handler says it is safe:
  when the handler returns, or when the ``Receipt`` it returned completes (the dispatcher's
  completes once the message is stored). Until then the broker counts it in flight and, over
  its in-flight window (Mosquitto: ``max_inflight_messages``, 20 by default), keeps the rest
  queued; a message not acknowledged when the connection drops is delivered again on the
  next one. The deque between the socket and the handler is bounded too: past
  ``max_incoming`` messages the socket is not read until the handler catches up;
* the connection is supervised: when it drops, or a keep-alive ping is not answered (a
  black-holed broker is noticed within 1 to 1.5 ``keepalive``), it is re-opened after a
  jittered exponential delay (``Backoff``), the subscriptions are renewed and the connect
  hook runs again. A publication still waiting for its PUBACK when the connection drops
  fails (the caller retries it, under the same command id);
* incoming messages wait in a deque drained by one task, in arrival order, that outlives a
  reconnection.

``start()`` returns once connected; it retries until ``connect_timeout`` and fails at once when
the broker refuses the credentials or presents a certificate that does not verify.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from keyfob.link import mqtt_packets as packets
from keyfob.link.transport import (
    Backoff,
    ConnectHook,
    MessageHandler,
    Outgoing,
    Receipt,
    TransportError,
    Will,
    check_pattern,
    check_topic,
    parse_broker_url,
)

log = logging.getLogger(__name__)
Arrived = Callable[["_Wire", packets.Publish], None]
_Incoming = tuple["_Wire", packets.Publish]


class _Ended(Exception):
    """A session ended; ``code`` is the broker's CONNACK refusal, if that is why."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class MqttTransport:
    """One supervised MQTT connection implementing ``Transport``."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        will: Will | None = None,
        clean_session: bool = False,
        keepalive: int = 5,
        max_incoming: int = 1000,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._address = parse_broker_url(url)
        if not client_id:
            raise TransportError("client_id: must not be empty")
        self.client_id = client_id
        self._will = will
        self._clean_session = clean_session
        if keepalive < 1:
            raise TransportError("keepalive: must be at least 1 second")
        self._keepalive = keepalive
        self._max_incoming = max(max_incoming, 1)
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._handler: MessageHandler | None = None
        self._hook: ConnectHook | None = None
        self._patterns: list[str] = []
        self._wire: _Wire | None = None
        self._up = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._failure: TransportError | None = None
        self._acks = _Acks()
        self._incoming: deque[_Incoming] = deque()
        self._paused: _Wire | None = None
        self._arrivals = asyncio.Event()
        self._next_mid = 0
        self.connections = 0

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def set_handler(self, handler: MessageHandler) -> None:
        self._handler = handler

    def set_connect_hook(self, hook: ConnectHook | None) -> None:
        self._hook = hook

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        self._failure = None
        self._pump = asyncio.create_task(self._drain(), name=f"mqtt-in:{self.client_id}")
        self._supervisor = asyncio.create_task(self._supervise(), name=f"mqtt:{self.client_id}")
        waiter = asyncio.create_task(self._up.wait())
        await asyncio.wait({waiter, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        if not self._up.is_set():
            waiter.cancel()
            await self.stop()
            raise self._failure or TransportError(f"mqtt {self._where()}: could not connect")

    async def stop(self) -> None:
        """Disconnect gracefully (the broker discards the will) and stop reconnecting."""
        wire = self._wire
        if wire is not None and self._up.is_set():
            wire.send(packets.DISCONNECT_PACKET)
            wire.close()
        supervisor, self._supervisor = self._supervisor, None
        pump, self._pump = self._pump, None
        for task in (supervisor, pump):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._up.clear()
        self._acks.fail_all()
        self._incoming.clear()
        self._paused = None

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        (outcome,) = await self.publish_many([Outgoing(topic, payload, qos, retain)])
        if outcome is not None:
            raise outcome

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[TransportError | None]:
        outcomes: list[TransportError | None] = [None] * len(messages)
        if not messages:
            return outcomes
        try:
            wire = await self._live_wire(f"publish to {messages[0].topic}")
        except TransportError as exc:
            return [exc] * len(messages)
        awaited: dict[int, int] = {}
        for index, message in enumerate(messages):
            try:
                check_topic(message.topic)
                if message.qos not in (0, 1):
                    raise TransportError(f"publish to {message.topic}: QoS must be 0 or 1")
                mid = self._mid() if message.qos else 0
                packet = packets.publish(
                    message.topic,
                    message.payload,
                    qos=message.qos,
                    retain=message.retain,
                    mid=mid,
                )
            except (TransportError, packets.PacketError) as exc:
                outcomes[index] = (
                    exc if isinstance(exc, TransportError) else TransportError(str(exc))
                )
                continue
            wire.send(packet)
            if mid:
                awaited[mid] = index
        for mid in await self._acks.wait(awaited, self._publish_timeout):
            topic = messages[awaited[mid]].topic
            outcomes[awaited[mid]] = TransportError(
                f"publish to {topic}: not acknowledged by {self._where()}"
            )
        return outcomes

    async def subscribe(self, pattern: str) -> None:
        check_pattern(pattern)
        if pattern not in self._patterns:
            self._patterns.append(pattern)
        wire = self._wire
        if wire is None or not self._up.is_set():
            return  # renewed by the supervisor on the next connection
        try:
            await self._subscribe(wire, [pattern])
        except _Ended as exc:
            raise TransportError(f"subscribe to {pattern}: {exc}") from None

    def tcp_nodelay(self) -> bool | None:
        """Whether the live socket has ``TCP_NODELAY`` (``None`` when not connected)."""
        wire = self._wire
        sock = None if wire is None else wire.socket()
        if sock is None:
            return None
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    # -- the session -----------------------------------------------------------------

    def _mid(self) -> int:
        """The next packet id not waiting for its PUBACK (1 to 65,535)."""
        for _ in range(0xFFFF):
            self._next_mid = self._next_mid % 0xFFFF + 1
            if not self._acks.waiting(self._next_mid):
                return self._next_mid
        raise TransportError(f"mqtt {self._where()}: 65,535 publications await their PUBACK")

    async def _live_wire(self, what: str) -> _Wire:
        if not self._up.is_set():
            if self._supervisor is None:
                raise TransportError(f"{what}: the transport is not started")
            try:
                await asyncio.wait_for(self._up.wait(), self._publish_timeout)
            except TimeoutError:
                raise TransportError(f"{what}: not connected to {self._where()}") from None
        assert self._wire is not None
        return self._wire

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        attempt = 0
        while True:
            established = self.connections
            try:
                await self._session()
            except (_Ended, OSError, TimeoutError) as exc:
                code = exc.code if isinstance(exc, _Ended) else None
                # Wrong credentials or a broker certificate we do not trust: retrying
                # changes nothing, so the first connection fails at once.
                final = code in (4, 5) or isinstance(exc, ssl.SSLCertVerificationError)
                if self.connections == 0 and (final or loop.time() >= deadline):
                    why = str(exc) or type(exc).__name__
                    self._failure = TransportError(f"mqtt {self._where()}: {why}")
                    return
                if self.connections:
                    why = str(exc) or type(exc).__name__
                    log.warning("mqtt %s lost (%s); reconnecting", self._where(), why)
            finally:
                wire, self._wire = self._wire, None
                if wire is not None:
                    wire.close()
                if self._paused is wire:
                    self._paused = None  # the next connection reads from the start
                self._up.clear()
                self._acks.fail_all()  # no PUBACK comes over a closed connection
            if self.connections > established:
                attempt = 0  # it had been up: start the delays afresh
            await asyncio.sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        address = self._address
        context = ssl.create_default_context() if address.tls else None
        async with asyncio.timeout(self._connect_timeout):
            _, wire = await loop.create_connection(
                lambda: _Wire(self._acks, self._arrived),
                address.host,
                address.port,
                ssl=context,
            )
        self._wire = wire
        wire.nodelay()
        will = None
        if self._will is not None:
            will = (self._will.topic, self._will.payload, self._will.qos, self._will.retain)
        wire.send(
            packets.connect(
                self.client_id,
                clean_session=self._clean_session,
                keepalive=self._keepalive,
                username=address.username,
                password=address.password,
                will=will,
            )
        )
        async with asyncio.timeout(self._connect_timeout):
            code = await wire.accepted()
        if code:
            reason = packets.REFUSALS.get(code, f"refused with code {code}")
            raise _Ended(f"connection refused: {reason}", code)
        if self._patterns:
            await self._subscribe(wire, self._patterns)
        self.connections += 1
        self._up.set()
        pinger = asyncio.create_task(self._ping(wire), name=f"mqtt-ping:{self.client_id}")
        try:
            if self._hook is not None:
                await self._hook()
            await wire.closed()
        finally:
            pinger.cancel()
        raise _Ended("the broker closed the connection")

    async def _subscribe(self, wire: _Wire, patterns: list[str]) -> None:
        mid = self._mid()
        answer = wire.expect_suback(mid)
        wire.send(packets.subscribe(mid, [(pattern, 1) for pattern in patterns]))
        try:
            async with asyncio.timeout(self._publish_timeout):
                granted = await answer
        except TimeoutError:
            raise _Ended("no SUBACK from the broker") from None
        refused = [p for p, qos in zip(patterns, granted, strict=False) if qos == 0x80]
        if refused:
            log.warning("mqtt %s refused the subscription to %s", self._where(), refused)

    async def _ping(self, wire: _Wire) -> None:
        """A PINGREQ every keep-alive; nothing heard within half of it after: link dead.

        A broker that stops answering (a black hole, a frozen process) is left between one
        and one and a half keep-alives after it fell silent (5 to 7.5 s at the default); the
        broker itself waits one and a half for us. While reading is paused nothing can be
        heard, so a paused connection is not judged.
        """
        interval = self._keepalive / 2
        while True:
            await asyncio.sleep(interval)
            wire.send(packets.PINGREQ_PACKET)
            heard = wire.last_heard
            await asyncio.sleep(interval)
            if wire.last_heard == heard and self._paused is not wire:  # paused: not read
                log.warning("mqtt %s: no answer to a keep-alive ping", self._where())
                wire.close()
                return

    # -- incoming messages ------------------------------------------------------------

    def _arrived(self, wire: _Wire, message: packets.Publish) -> None:
        self._incoming.append((wire, message))
        self._arrivals.set()
        if len(self._incoming) >= self._max_incoming and self._paused is None:
            self._paused = wire
            wire.pause_reading()

    async def _drain(self) -> None:
        """Hands incoming messages to the handler one at a time, in arrival order."""
        incoming = self._incoming
        while True:
            await self._arrivals.wait()
            self._arrivals.clear()
            while incoming:
                wire, message = incoming.popleft()
                paused = self._paused
                if paused is not None and len(incoming) <= self._max_incoming // 2:
                    self._paused = None
                    paused.resume_reading()
                receipt = None
                if self._handler is not None:
                    try:
                        receipt = await self._handler(message.topic, message.payload)
                    except Exception:
                        log.exception("handler failed on %s", message.topic)
                if message.qos:
                    self._acknowledge_when(receipt, wire, message.mid)

    def _acknowledge_when(self, receipt: Receipt | None, wire: _Wire, mid: int) -> None:
        def acknowledge(done: Receipt | None = None) -> None:
            # Over a newer connection the id means nothing: the broker sends it again there.
            if wire is self._wire and (done is None or not done.cancelled()):
                wire.send(packets.puback(mid))

        if receipt is None:
            acknowledge()
        else:
            receipt.add_done_callback(acknowledge)

    def _where(self) -> str:
        return f"{self._address.host}:{self._address.port}"


class _Wire(asyncio.Protocol):
    """One TCP (or TLS) connection to the broker: packets in, packets out."""

    def __init__(self, acks: _Acks, arrived: Arrived) -> None:
        self.last_heard = 0
        self._acks = acks
        self._arrived = arrived
        self._reader = packets.PacketReader()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_soon = False
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._connack: asyncio.Future[int] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}

    # -- asyncio's side -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, but offer the same calls.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.last_heard += 1
        try:
            for kind, flags, body in self._reader.feed(data):
                self._packet(kind, flags, body)
        except packets.PacketError as exc:
            log.warning("mqtt: closing a connection that broke the protocol: %s", exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        why = str(exc) if exc else "the connection closed"
        if not self._connack.done():
            self._connack.set_exception(_Ended(why))
        for waiter in self._subacks.values():
            if not waiter.done():
                waiter.set_exception(_Ended(why))
        self._subacks.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    # -- packets ----------------------------------------------------------------------

    def _packet(self, kind: int, flags: int, body: bytes) -> None:
        if kind == packets.PUBLISH:
            # Acknowledged by the session once the handler says the message is safe.
            self._arrived(self, packets.parse_publish(flags, body))
        elif kind == packets.PUBACK:
            self._acks.published(packets.packet_id(body))
        elif kind == packets.CONNACK:
            if len(body) != 2:
                raise packets.PacketError("a CONNACK of the wrong size")
            if not self._connack.done():
                self._connack.set_result(body[1])
        elif kind == packets.SUBACK:
            waiter = self._subacks.pop(packets.packet_id(body), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(list(body[2:]))
        elif kind != packets.PINGRESP:
            raise packets.PacketError(f"an unexpected packet of type {kind}")

    # -- the session's side ---------------------------------------------------------

    def send(self, packet: bytes) -> None:
        """Queued, and written with everything else queued in this turn of the loop."""
        if self._transport is None:
            return
        self._out.append(packet)
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        out, self._out = self._out, []
        if self._transport is not None and out:
            self._transport.write(b"".join(out))

    def pause_reading(self) -> None:
        if self._transport is not None and self._transport.is_reading():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_reading():
            self._transport.resume_reading()

    def nodelay(self) -> None:
        sock = self.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def socket(self) -> Any | None:
        """The socket (uvloop hands out a stand-in with the same option calls)."""
        if self._transport is None:
            return None
        found = self._transport.get_extra_info("socket")
        return found if hasattr(found, "setsockopt") else None

    async def accepted(self) -> int:
        """The CONNACK's return code (0: accepted)."""
        return await asyncio.shield(self._connack)

    def expect_suback(self, mid: int) -> asyncio.Future[list[int]]:
        waiter: asyncio.Future[list[int]] = self._loop.create_future()
        self._subacks[mid] = waiter
        return waiter

    async def closed(self) -> None:
        await asyncio.shield(self._closed)

    def close(self) -> None:
        transport = self._transport
        if transport is not None:
            self._flush()
            transport.close()


class _Acks:
    """PUBACKs awaited by ``publish_many`` calls, by packet id."""

    def __init__(self) -> None:
        self._waiting: dict[int, _Batch] = {}

    def waiting(self, mid: int) -> bool:
        return mid in self._waiting

    def published(self, mid: int) -> None:
        batch = self._waiting.pop(mid, None)
        if batch is not None:
            batch.acknowledged(mid)

    async def wait(self, mids: Iterable[int], within: float) -> set[int]:
        """Waits for these ids' PUBACKs; returns those that did not come in time."""
        missing = set(mids)
        if not missing:
            return missing
        batch = _Batch(missing)
        for mid in missing:
            self._waiting[mid] = batch
        try:
            async with asyncio.timeout(within):
                await batch.complete
        except TimeoutError:
            pass
        finally:
            for mid in batch.missing:
                if self._waiting.get(mid) is batch:
                    del self._waiting[mid]
        return batch.missing

    def fail_all(self) -> None:
        """The connection is gone: every batch ends now with what is still missing."""
        batches = {id(batch): batch for batch in self._waiting.values()}
        self._waiting.clear()
        for batch in batches.values():
            batch.end()


class _Batch:
    def __init__(self, mids: set[int]) -> None:
        self.missing = mids
        self.complete: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def acknowledged(self, mid: int) -> None:
        self.missing.discard(mid)
        if not self.missing:
            self.end()

    def end(self) -> None:
        if not self.complete.done():
            self.complete.set_result(None)
