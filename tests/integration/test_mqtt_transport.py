"""``MqttTransport`` against a scripted broker: what a real one does only when it misbehaves.

The scripted broker speaks just enough MQTT (through ``mqtt_packets``) to answer CONNECT and
SUBSCRIBE, and then does what each test tells it: stay silent, drop the connection, refuse.
The ordinary paths run against Mosquitto in ``tests/e2e/test_mqtt_link.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from keyfob.config import Settings
from keyfob.link import mqtt_packets as packets
from keyfob.link.mqtt import MqttTransport
from keyfob.link.transport import Backoff, Outgoing, TransportError
from keyfob.runtime.vehicle_role import mqtt_link

Script = Callable[["Session"], Awaitable[None]]


@dataclass
class Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: packets.PacketReader = field(default_factory=packets.PacketReader)
    pending: list[tuple[int, int, bytes]] = field(default_factory=list)

    async def next(self) -> tuple[int, int, bytes]:
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the client closed the connection")
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def accept(self, code: int = 0) -> bytes:
        kind, _, body = await self.next()
        assert kind == packets.CONNECT
        self.send(bytes((packets.CONNACK << 4, 2, 0, code)))
        return body


@dataclass
class ScriptedBroker:
    script: Script
    sessions: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"mqtt://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            await self.script(Session(reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[ScriptedBroker]]]:
    brokers: list[ScriptedBroker] = []

    async def start(script: Script) -> ScriptedBroker:
        broker = ScriptedBroker(script)
        broker.server = await asyncio.start_server(broker._serve, "127.0.0.1", 0)
        brokers.append(broker)
        return broker

    yield start
    for broker in brokers:
        assert broker.server is not None
        broker.server.close()


def transport(url: str, **options: object) -> MqttTransport:
    return MqttTransport(
        url,
        client_id="keyfob-scripted",
        clean_session=True,
        backoff=Backoff(initial=0.05, maximum=0.1),
        **options,  # type: ignore[arg-type]
    )


async def test_a_broker_that_stops_answering_pings_is_left_for_a_new_connection(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    async def silent(session: Session) -> None:
        await session.accept()
        while True:
            await session.next()  # reads the pings, never answers them

    broker = await scripted(silent)
    link = transport(broker.url, keepalive=1)
    await link.start()
    try:
        async with asyncio.timeout(5):
            while broker.sessions < 2:
                await asyncio.sleep(0.05)
        assert link.connections >= 1
    finally:
        await link.stop()


async def test_publications_waiting_for_their_puback_fail_when_the_connection_drops(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    received: list[packets.Publish] = []

    async def drops_after_three(session: Session) -> None:
        await session.accept()
        while len(received) < 3:
            kind, flags, body = await session.next()
            if kind == packets.PUBLISH:
                received.append(packets.parse_publish(flags, body))
        session.writer.transport.abort()

    broker = await scripted(drops_after_three)
    link = transport(broker.url, publish_timeout=30)
    await link.start()
    try:
        started = time.perf_counter()
        outcomes = await link.publish_many([Outgoing(f"t/{i}", b"x") for i in range(3)])
        assert time.perf_counter() - started < 5  # not the 30 s publish time-out
        assert all(isinstance(outcome, TransportError) for outcome in outcomes)
        assert [message.topic for message in received] == ["t/0", "t/1", "t/2"]
        assert len({message.mid for message in received}) == 3
    finally:
        await link.stop()


async def test_only_the_publications_acknowledged_succeed(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    async def acks_even_topics(session: Session) -> None:
        await session.accept()
        while True:
            kind, flags, body = await session.next()
            if kind == packets.PUBLISH:
                message = packets.parse_publish(flags, body)
                if int(message.topic.split("/")[1]) % 2 == 0:
                    session.send(packets.puback(message.mid))

    broker = await scripted(acks_even_topics)
    link = transport(broker.url, publish_timeout=0.5)
    await link.start()
    try:
        outcomes = await link.publish_many(
            [Outgoing(f"t/{i}", b"x") for i in range(4)] + [Outgoing("t/4", b"x", qos=0)]
        )
        assert [outcome is None for outcome in outcomes] == [True, False, True, False, True]
        assert "not acknowledged" in str(outcomes[1])
    finally:
        await link.stop()


async def test_messages_in_one_burst_reach_the_handler_in_order_and_are_acknowledged(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    acknowledged: list[int] = []

    async def burst(session: Session) -> None:
        await session.accept()
        kind, _, body = await session.next()
        assert kind == packets.SUBSCRIBE
        session.send(bytes((packets.SUBACK << 4, 3)) + body[:2] + b"\x01")
        session.send(
            b"".join(
                packets.publish(f"v/{i}", str(i).encode(), qos=1, retain=False, mid=100 + i)
                for i in range(50)
            )
        )
        while len(acknowledged) < 50:
            kind, _, body = await session.next()
            if kind == packets.PUBACK:
                acknowledged.append(packets.packet_id(body))

    broker = await scripted(burst)
    link = transport(broker.url)
    seen: list[tuple[str, bytes]] = []
    everything = asyncio.Event()

    async def handler(topic: str, payload: bytes) -> None:
        seen.append((topic, payload))
        if len(seen) == 50:
            everything.set()

    link.set_handler(handler)
    await link.subscribe("v/#")
    await link.start()
    try:
        async with asyncio.timeout(5):
            await everything.wait()
            while len(acknowledged) < 50:
                await asyncio.sleep(0.01)
        assert seen == [(f"v/{i}", str(i).encode()) for i in range(50)]
        assert sorted(acknowledged) == [100 + i for i in range(50)]
    finally:
        await link.stop()


async def test_a_refused_connection_fails_the_start_at_once(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    async def refuses(session: Session) -> None:
        await session.accept(code=5)

    broker = await scripted(refuses)
    link = transport(broker.url, connect_timeout=10)
    started = time.perf_counter()
    with pytest.raises(TransportError, match="not authorized"):
        await link.start()
    assert time.perf_counter() - started < 2
    assert broker.sessions == 1


async def test_a_broker_that_never_answers_connect_times_out(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    async def mute(session: Session) -> None:
        await session.next()
        await asyncio.sleep(30)

    broker = await scripted(mute)
    link = transport(broker.url, connect_timeout=0.5)
    with pytest.raises(TransportError, match=r"127\.0\.0\.1"):
        await link.start()
    assert not link.connected


async def test_a_message_is_acknowledged_only_once_its_receipt_completes(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    """The dispatcher's receipt completes once the message is stored: until then the broker
    must still hold it (no PUBACK), so a crash in between does not lose it."""
    acknowledged: list[int] = []

    async def two_messages(session: Session) -> None:
        await session.accept()
        kind, _, body = await session.next()
        assert kind == packets.SUBSCRIBE
        session.send(bytes((packets.SUBACK << 4, 3)) + body[:2] + b"\x01")
        session.send(packets.publish("v/7", b"7", qos=1, retain=False, mid=7))
        session.send(packets.publish("v/8", b"8", qos=1, retain=False, mid=8))
        while True:
            kind, _, body = await session.next()
            if kind == packets.PUBACK:
                acknowledged.append(packets.packet_id(body))

    broker = await scripted(two_messages)
    link = transport(broker.url)
    receipts: dict[str, asyncio.Future[None]] = {}

    async def handler(topic: str, payload: bytes) -> asyncio.Future[None]:
        receipts[topic] = asyncio.get_running_loop().create_future()
        return receipts[topic]

    link.set_handler(handler)
    await link.subscribe("v/#")
    await link.start()
    try:
        async with asyncio.timeout(5):
            while len(receipts) < 2:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert acknowledged == [], "acknowledged before the message was stored"
        receipts["v/8"].set_result(None)
        async with asyncio.timeout(5):
            while acknowledged != [8]:
                await asyncio.sleep(0.01)
        receipts["v/7"].set_result(None)
        async with asyncio.timeout(5):
            while acknowledged != [8, 7]:
                await asyncio.sleep(0.01)
    finally:
        await link.stop()


async def test_the_dispatcher_link_leaves_a_black_holed_broker_within_its_keepalive(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    """With the default settings a broker that stops answering (but keeps the TCP connection
    open) is left within a few seconds, and the link connects again."""
    went_silent: list[float] = []

    async def answers_then_black_hole(session: Session) -> None:
        await session.accept()
        if went_silent:
            await session.next()  # the new connection: stays up
            return
        kind, _, _ = await session.next()
        assert kind == packets.PINGREQ
        session.send(bytes((packets.PINGRESP << 4, 0)))
        went_silent.append(time.perf_counter())
        while True:
            await session.next()  # reads everything, answers nothing

    broker = await scripted(answers_then_black_hole)
    settings = Settings(mqtt=broker.url, vehicles=0)
    link, _ = mqtt_link(settings, "scripted")
    await link.start()
    try:
        async with asyncio.timeout(15):
            while broker.sessions < 2:
                await asyncio.sleep(0.02)
        back = time.perf_counter() - went_silent[0]
        # Noticed within 1.5 keep-alives, then at most the first reconnect delay, plus a
        # second of slack for a loaded machine (before: 30 s + 15 s, or never).
        assert back < settings.mqtt_keepalive_s * 1.5 + Backoff().initial + 1.0, back
        assert settings.mqtt_keepalive_s <= 5
    finally:
        await link.stop()


async def test_a_handler_that_falls_behind_stops_the_reading_not_the_memory(
    scripted: Callable[[Script], Awaitable[ScriptedBroker]],
) -> None:
    """While the handler is held, the link reads a few messages ahead and then leaves the
    rest unread: they back up at the broker (here, its write buffer), not in our memory."""
    count, size = 400, 64 * 1024
    backed_up: list[int] = []

    async def flood(session: Session) -> None:
        await session.accept()
        kind, _, body = await session.next()
        assert kind == packets.SUBSCRIBE
        session.send(bytes((packets.SUBACK << 4, 3)) + body[:2] + b"\x01")
        for i in range(count):
            session.send(packets.publish(f"v/{i}", bytes(size), qos=1, retain=False, mid=i + 1))
        await asyncio.sleep(1.0)
        backed_up.append(session.writer.transport.get_write_buffer_size())
        while True:
            await session.next()

    broker = await scripted(flood)
    link = transport(broker.url, max_incoming=5)
    held = asyncio.Event()
    seen: list[str] = []

    async def handler(topic: str, payload: bytes) -> None:
        await held.wait()
        seen.append(topic)

    link.set_handler(handler)
    await link.subscribe("v/#")
    await link.start()
    try:
        async with asyncio.timeout(5):
            while not backed_up:
                await asyncio.sleep(0.02)
        assert backed_up[0] > count * size // 2, "the link read everything into memory"
        held.set()
        async with asyncio.timeout(20):
            while len(seen) < count:
                await asyncio.sleep(0.02)
        assert seen == [f"v/{i}" for i in range(count)]
    finally:
        await link.stop()
