"""A simulated car on a real broker keeps a result whose PUBACK never came, and sends it again.

The car reaches Mosquitto through a small TCP relay the test can black-hole. The result is
published into the black hole (the broker never gets it, no PUBACK comes back), then the broker
restarts without its sessions, so the MQTT client's own replay of unacknowledged messages is
gone too: only the vehicle's outbox still has the result.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from keyfob.kit.clock import utcnow
from keyfob.link.protocol import (
    Ack,
    AckState,
    Action,
    Outcome,
    Presence,
    Result,
    encode,
    new_command,
)
from keyfob.link.topics import Channel, Uplink, decode_uplink, vehicle_topic
from keyfob.link.transport import BrokerAddress, TransportError
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import Fleet, VehicleSpec
from keyfob.sim.mqtt_fleet import GmqttLink, gmqtt_links
from mosquitto import Mosquitto

pytestmark = pytest.mark.mqtt

VIN = "VF3MQTTOUTBOX0001"


class Relay:
    """TCP relay to the broker; ``black_hole`` swallows every byte and refuses new
    connections, ``heal`` drops the open connections and relays again."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.passing = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def black_hole(self) -> None:
        self.passing = False

    def heal(self) -> None:
        self._drop()
        self.passing = True

    def _drop(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.passing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for each in (writer, up_writer):
            self.writers.discard(each)
            each.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.passing:
                writer.write(data)
                await writer.drain()


async def until(inbox: asyncio.Queue[Uplink], wanted: Callable[[object], bool]) -> None:
    async with asyncio.timeout(10):
        while not wanted((await inbox.get()).message):
            pass


async def subscribed_again(platform: GmqttLink, inbox: asyncio.Queue[Uplink]) -> None:
    """Wait until the platform's own probe comes back through the restarted broker."""
    probe = Result("probe", Outcome.SUCCESS, utcnow())
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(TransportError):
                await platform.publish(vehicle_topic("PROBE", Channel.RESULT), encode(probe))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.3):
                    message = (await inbox.get()).message
                    if isinstance(message, Result) and message.id == probe.id:
                        return


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def relay(broker: Mosquitto) -> AsyncIterator[Relay]:
    side = Relay(broker.port)
    await side.start()
    yield side
    await side.close()


async def test_a_result_lost_with_its_puback_reaches_the_platform_after_a_broker_restart(
    broker: Mosquitto, relay: Relay
) -> None:
    inbox: asyncio.Queue[Uplink] = asyncio.Queue()
    platform = GmqttLink(
        BrokerAddress("127.0.0.1", broker.port),
        client_id="platform-outbox-test",
        persistent=False,
        reconnect_delay=0.2,
    )

    async def receive(topic: str, payload: bytes) -> None:
        await inbox.put(decode_uplink(topic, payload))

    platform.set_handler(receive)
    await platform.start()
    for channel in (Channel.ACK, Channel.RESULT, Channel.PRESENCE):
        await platform.subscribe(f"keyfob/v1/vehicles/+/{channel.value}")
    links = gmqtt_links(BrokerAddress("127.0.0.1", relay.port), reconnect_delay=(0.2, 0.2))
    fleet = Fleet(links, config=SimConfig(speed=0.2))  # a door takes 0.6 s
    try:
        await fleet.add(VehicleSpec(VIN))
        await until(inbox, lambda m: isinstance(m, Presence))  # subscribed to its commands
        command = new_command(
            Action.DOOR, {"state": "Unlocked"}, now=utcnow(), ttl=timedelta(seconds=60)
        )
        await platform.publish(vehicle_topic(VIN, Channel.CMD), encode(command))
        await until(inbox, lambda m: isinstance(m, Ack) and m.state is AckState.EXECUTING)
        relay.black_hole()  # the result goes in, nothing comes back
        vehicle = fleet.vehicle(VIN)
        await asyncio.sleep(1.0)
        assert not vehicle.state.locked  # the car acted
        broker.restart()  # sessions gone: nothing left to replay at the client level
        await subscribed_again(platform, inbox)
        assert inbox.empty()  # the result never reached the broker
        relay.heal()
        await until(inbox, lambda m: isinstance(m, Result) and m.id == command.id)
        assert vehicle.counters["results_held"] == 1
    finally:
        await fleet.stop()
        await platform.stop()
