"""The ``Transport`` over a real MQTT broker, for keyfob spread over several processes.

Built on aiomqtt (MQTT 3.1.1). Three choices matter for latency and for not losing answers:

* ``TCP_NODELAY`` is set on the socket: without it, and without ``set_tcp_nodelay true`` on the
  broker, Nagle's algorithm and delayed acknowledgements cost ~90 ms per QoS 1 exchange;
* ``clean_session=False`` by default, with a stable client id: the broker keeps the
  subscriptions and queues QoS 1 messages while we reconnect, so a result published during a
  short outage is delivered afterwards (pass ``clean_session=True`` for throw-away clients);
* the connection is supervised: when it drops, it is re-opened after a jittered exponential
  delay (``Backoff``), the subscriptions are renewed and the connect hook runs again.

``start()`` returns once connected; it retries until ``connect_timeout`` and fails at once when
the broker refuses the credentials. Every aiomqtt error becomes a ``TransportError`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
from typing import Any

import aiomqtt

from keyfob.dispatch.transport import (
    Backoff,
    ConnectHook,
    MessageHandler,
    TransportError,
    Will,
    check_pattern,
    check_topic,
    parse_broker_url,
)

log = logging.getLogger(__name__)

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_REFUSALS = {4, 5, 134, 135}  # bad user name or password / not authorized (3.1.1 and 5)


class MqttTransport:
    """One supervised aiomqtt connection implementing ``Transport``."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        will: Will | None = None,
        clean_session: bool = False,
        keepalive: int = 30,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        max_inflight: int = 200,
        rng: random.Random | None = None,
    ) -> None:
        self._address = parse_broker_url(url)
        if not client_id:
            raise TransportError("client_id: must not be empty")
        self.client_id = client_id
        self._will = will
        self._clean_session = clean_session
        self._keepalive = keepalive
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._max_inflight = max_inflight
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._handler: MessageHandler | None = None
        self._hook: ConnectHook | None = None
        self._patterns: list[str] = []
        self._client: aiomqtt.Client | None = None
        self._up = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._failure: TransportError | None = None
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
        self._supervisor = asyncio.create_task(self._supervise(), name=f"mqtt:{self.client_id}")
        waiter = asyncio.create_task(self._up.wait())
        await asyncio.wait({waiter, self._supervisor}, return_when=asyncio.FIRST_COMPLETED)
        if not self._up.is_set():
            waiter.cancel()
            await self.stop()
            raise self._failure or TransportError(f"mqtt {self._where()}: could not connect")

    async def stop(self) -> None:
        """Disconnect gracefully (the broker discards the will) and stop reconnecting."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        self._up.clear()

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        check_topic(topic)
        client = await self._live_client(f"publish to {topic}")
        try:
            await client.publish(
                topic, payload, qos=qos, retain=retain, timeout=self._publish_timeout
            )
        except aiomqtt.MqttError as exc:
            raise TransportError(f"publish to {topic}: {exc}") from None

    async def subscribe(self, pattern: str) -> None:
        check_pattern(pattern)
        if pattern not in self._patterns:
            self._patterns.append(pattern)
        client = self._client
        if client is None or not self._up.is_set():
            return  # renewed by the supervisor on the next connection
        try:
            await client.subscribe(pattern, qos=1)
        except aiomqtt.MqttError as exc:
            raise TransportError(f"subscribe to {pattern}: {exc}") from None

    def tcp_nodelay(self) -> bool | None:
        """Whether the live socket has ``TCP_NODELAY`` (``None`` when not connected)."""
        client = self._client
        if client is None:
            return None
        # aiomqtt exposes no socket accessor; the paho client it wraps does.
        sock = client._client.socket()
        if not isinstance(sock, socket.socket):
            return None
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    async def _live_client(self, what: str) -> aiomqtt.Client:
        if not self._up.is_set():
            if self._supervisor is None:
                raise TransportError(f"{what}: the transport is not started")
            try:
                await asyncio.wait_for(self._up.wait(), self._publish_timeout)
            except TimeoutError:
                raise TransportError(f"{what}: not connected to {self._where()}") from None
        assert self._client is not None
        return self._client

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except aiomqtt.MqttError as exc:
                self._up.clear()
                refused = _refusal_code(exc) in _REFUSALS
                if self.connections == 0 and (refused or loop.time() >= deadline):
                    self._failure = TransportError(f"mqtt {self._where()}: {exc}")
                    return
                log.warning("mqtt %s lost (%s); reconnecting", self._where(), exc)
            finally:
                self._client = None
                self._up.clear()
            await asyncio.sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1

    async def _session(self) -> None:
        client = self._new_client()
        async with client:
            client.pending_calls_threshold = 1_000_000  # thousands in flight are normal here
            self._client = client
            for pattern in self._patterns:
                await client.subscribe(pattern, qos=1)
            self.connections += 1
            self._up.set()
            if self._hook is not None:
                await self._hook()
            async for message in client.messages:
                await self._deliver(message)
        raise aiomqtt.MqttError("the broker closed the connection")

    async def _deliver(self, message: aiomqtt.Message) -> None:
        if self._handler is None:
            return
        payload = message.payload
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        try:
            await self._handler(message.topic.value, data)
        except Exception:
            log.exception("handler failed on %s", message.topic.value)

    def _new_client(self) -> aiomqtt.Client:
        address = self._address
        will = None
        if self._will is not None:
            will = aiomqtt.Will(
                self._will.topic, self._will.payload, self._will.qos, self._will.retain
            )
        return aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=self.client_id,
            will=will,
            clean_session=self._clean_session,
            keepalive=self._keepalive,
            timeout=self._publish_timeout,
            max_inflight_messages=self._max_inflight,
            tls_context=ssl.create_default_context() if address.tls else None,
            socket_options=[NODELAY],
        )

    def _where(self) -> str:
        return f"{self._address.host}:{self._address.port}"


def _refusal_code(exc: aiomqtt.MqttError) -> int | None:
    code: Any = getattr(exc, "rc", None)
    if code is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return int(getattr(code, "value", code))
    return None
