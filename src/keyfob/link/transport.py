"""The one interface between keyfob and a message broker, whatever the broker is.

The dispatcher, the wake-up channel and the simulator take a ``Transport``; the embedded
default passes an in-process ``MemoryConnection``, the scaled-out mode an ``MqttTransport``.
Library errors never cross this boundary: they become ``TransportError``.

Delivery contract, identical for every implementation:

* the handler set with ``set_handler`` is awaited once per incoming message, one message at a
  time and in arrival order for the connection, so a vehicle's ack always precedes its result;
  a handler must return quickly (hand long work to a task or a queue). What it returns says
  when the message is safe: ``None`` once the handler has returned, or a ``Receipt`` (a future)
  that completes once the message is stored. Over MQTT the QoS 1 acknowledgement waits for it,
  so a message lost in the receiver's memory (a crash before it was stored) is delivered again;
  a handler that stays awaited is how a receiver stops reading (the broker keeps the rest);
* the connect hook set with ``set_connect_hook`` is awaited after every (re)connection, once the
  subscriptions are in place again: the place to announce presence or re-read state;
* ``publish`` uses QoS 1 by default and raises ``TransportError`` when the message could not be
  handed to the broker; ``publish_many`` does the same for a batch, answering per message, so a
  dispatcher sending hundreds of commands waits once for all their acknowledgements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from keyfob.errors import ErrorCode, KeyfobError

Receipt = asyncio.Future[None]
"""Completes once a received message is stored; only then is it acknowledged to the broker."""
MessageHandler = Callable[[str, bytes], Awaitable[Receipt | None]]
ConnectHook = Callable[[], Awaitable[None]]


class TransportError(KeyfobError):
    """The broker could not be reached, refused us, or dropped the message."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for a connection that vanishes without saying goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of a ``publish_many`` batch."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class Transport(Protocol):
    """A connection to a broker: publish, subscribe, and receive through one handler."""

    @property
    def connected(self) -> bool: ...

    def set_handler(self, handler: MessageHandler) -> None: ...

    def set_connect_hook(self, hook: ConnectHook | None) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None: ...

    async def publish_many(self, messages: Sequence[Outgoing]) -> list[TransportError | None]:
        """Publish every message; entry i is ``None`` once the broker has message i."""
        ...

    async def subscribe(self, pattern: str) -> None: ...


Publish = Callable[..., Awaitable[None]]


async def publish_each(
    publish: Publish, messages: Sequence[Outgoing]
) -> list[TransportError | None]:
    """``publish_many`` for a transport whose ``publish`` costs nothing to await."""
    outcomes: list[TransportError | None] = []
    for message in messages:
        try:
            await publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
        except TransportError as exc:
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


class AbortableTransport(Transport, Protocol):
    """A transport that can also vanish abruptly, so the broker publishes its last will."""

    async def abort(self) -> None: ...


def check_topic(topic: str) -> str:
    """A topic a message can be published to: non-empty, no wildcard, no NUL."""
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise TransportError(f"topic: {topic!r} must be non-empty without '+', '#' or NUL")
    return topic


def check_pattern(pattern: str) -> str:
    """A subscription pattern: ``+`` fills a whole level, ``#`` only the whole last level."""
    levels = _strip_share(pattern).split("/")
    for index, level in enumerate(levels):
        misplaced_hash = "#" in level and (level != "#" or index != len(levels) - 1)
        if misplaced_hash or ("+" in level and level != "+") or "\0" in level:
            raise TransportError(f"pattern: {pattern!r} has a misplaced wildcard in {level!r}")
    if not pattern:
        raise TransportError("pattern: must not be empty")
    return pattern


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT matching: ``+`` one level, ``#`` the rest; wildcards never match a ``$`` topic."""
    pattern_levels = _strip_share(pattern).split("/")
    topic_levels = topic.split("/")
    if topic.startswith("$") and pattern_levels[0] in ("+", "#"):
        return False
    for index, wanted in enumerate(pattern_levels):
        if wanted == "#":
            return True
        if index >= len(topic_levels) or (wanted != "+" and wanted != topic_levels[index]):
            return False
    return len(pattern_levels) == len(topic_levels)


def _strip_share(pattern: str) -> str:
    if pattern.startswith("$share/"):
        parts = pattern.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return pattern


class Jitter(Protocol):
    """Any seeded source of uniform draws (``random.Random`` or the simulator's ``Rng``)."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential reconnect delays, so a fleet does not reconnect in one burst."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, attempt: int, rng: Jitter) -> float:
        """Between half and all of ``initial * factor**attempt``, capped at ``maximum``."""
        ceiling = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://user:pass@host:port`` (or ``mqtts://``) into its parts, percent-decoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise TransportError(f"mqtt url: scheme must be mqtt or mqtts, got {parts.scheme!r}")
    if not parts.hostname:
        raise TransportError("mqtt url: the host is missing")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TransportError("mqtt url: must not have a path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise TransportError("mqtt url: the port must be a number from 1 to 65535") from None
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
    )
