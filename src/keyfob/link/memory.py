"""An in-process MQTT-like broker, so the one-process default needs no broker at all.

It keeps the MQTT semantics the protocol relies on (topic wildcards, retained messages, the
last will of a connection that vanishes, the take-over of a client id) and drops what a
single process does not need: delivery is reliable, so QoS levels are accepted and ignored
(a handler's ``Receipt`` too: nothing is acknowledged), and there are no persistent sessions —
a message published while a client is disconnected is not kept for it (retained messages
excepted). A handler that stays awaited holds the rest of its connection's messages in the
connection's queue, in order: the in-process stand-in for a broker that keeps them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence

from keyfob.link.transport import (
    ConnectHook,
    MessageHandler,
    Outgoing,
    TransportError,
    Will,
    check_pattern,
    check_topic,
    publish_each,
    topic_matches,
)

log = logging.getLogger(__name__)


class MemoryBroker:
    """Routes messages between the ``MemoryConnection`` objects it created."""

    def __init__(self) -> None:
        self._clients: dict[str, MemoryConnection] = {}
        self._exact: defaultdict[str, set[MemoryConnection]] = defaultdict(set)
        self._wildcard: dict[MemoryConnection, set[str]] = {}
        self._retained: dict[str, bytes] = {}

    def connect(self, client_id: str, *, will: Will | None = None) -> MemoryConnection:
        """A new, not yet started, connection; ``start()`` attaches it."""
        if not client_id:
            raise TransportError("client_id: must not be empty")
        if will is not None:
            check_topic(will.topic)
        return MemoryConnection(self, client_id, will)

    @property
    def client_ids(self) -> frozenset[str]:
        return frozenset(self._clients)

    def retained(self, topic: str) -> bytes | None:
        return self._retained.get(topic)

    def _attach(self, connection: MemoryConnection) -> None:
        previous = self._clients.get(connection.client_id)
        if previous is not None and previous is not connection:
            previous._drop()  # MQTT take-over: the older session ends without its will
        self._clients[connection.client_id] = connection

    def _detach(self, connection: MemoryConnection) -> None:
        if self._clients.get(connection.client_id) is connection:
            del self._clients[connection.client_id]
        for pattern in connection._patterns:
            members = self._exact.get(pattern)
            if members is not None:
                members.discard(connection)
                if not members:
                    del self._exact[pattern]
        self._wildcard.pop(connection, None)

    def _subscribe(self, connection: MemoryConnection, pattern: str) -> None:
        if "+" in pattern or "#" in pattern or pattern.startswith("$share/"):
            self._wildcard.setdefault(connection, set()).add(pattern)
        else:
            self._exact[pattern].add(connection)
        for topic, payload in list(self._retained.items()):
            if topic_matches(pattern, topic):
                connection._deliver(topic, payload)

    def _route(self, topic: str, payload: bytes, retain: bool) -> None:
        if retain:
            if payload:
                self._retained[topic] = payload
            else:
                self._retained.pop(topic, None)
        receivers = set(self._exact.get(topic, ()))
        for connection, patterns in self._wildcard.items():
            if any(topic_matches(pattern, topic) for pattern in patterns):
                receivers.add(connection)
        for connection in receivers:
            connection._deliver(topic, payload)


class MemoryConnection:
    """One client of a ``MemoryBroker``; implements ``AbortableTransport``."""

    def __init__(self, broker: MemoryBroker, client_id: str, will: Will | None) -> None:
        self.client_id = client_id
        self._broker = broker
        self._will = will
        self._handler: MessageHandler | None = None
        self._hook: ConnectHook | None = None
        self._patterns: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._pump is not None

    def set_handler(self, handler: MessageHandler) -> None:
        self._handler = handler

    def set_connect_hook(self, hook: ConnectHook | None) -> None:
        self._hook = hook

    async def start(self) -> None:
        if self._pump is not None:
            return
        self._broker._attach(self)
        self._pump = asyncio.create_task(self._run(), name=f"memory-link:{self.client_id}")
        for pattern in self._patterns:
            self._broker._subscribe(self, pattern)
        if self._hook is not None:
            await self._hook()

    async def stop(self) -> None:
        """A graceful disconnect: the will is discarded, queued messages are dropped."""
        await self._close(publish_will=False)

    async def abort(self) -> None:
        """Vanish as a lost network would: the broker publishes the will."""
        await self._close(publish_will=True)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        if self._pump is None:
            raise TransportError(f"publish to {topic}: {self.client_id} is not connected")
        self._broker._route(check_topic(topic), payload, retain)

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[TransportError | None]:
        return await publish_each(self.publish, messages)

    async def subscribe(self, pattern: str) -> None:
        self._patterns.add(check_pattern(pattern))
        if self._pump is not None:
            self._broker._subscribe(self, pattern)

    async def _close(self, *, publish_will: bool) -> None:
        pump, self._pump = self._pump, None
        if pump is None:
            return
        self._broker._detach(self)
        if publish_will and self._will is not None:
            self._broker._route(self._will.topic, self._will.payload, self._will.retain)
        if pump is not asyncio.current_task():  # a handler may stop its own connection
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        self._queue = asyncio.Queue()

    def _drop(self) -> None:
        pump, self._pump = self._pump, None
        self._broker._detach(self)
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
        self._queue = asyncio.Queue()

    def _deliver(self, topic: str, payload: bytes) -> None:
        if self._pump is not None:
            self._queue.put_nowait((topic, payload))

    async def _run(self) -> None:
        me = asyncio.current_task()
        while self._pump is me:
            topic, payload = await self._queue.get()
            if self._handler is None:
                continue
            try:
                await self._handler(topic, payload)
            except Exception:
                log.exception("handler of %s failed on %s", self.client_id, topic)
