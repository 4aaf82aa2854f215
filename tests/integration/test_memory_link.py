"""Platform and simulated vehicles over the in-memory broker, as the one-process default runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from keyfob.kit.clock import utcnow
from keyfob.link.memory import MemoryBroker, MemoryConnection
from keyfob.link.protocol import (
    Ack,
    AckState,
    Action,
    Outcome,
    Presence,
    PresenceState,
    Result,
    Telemetry,
    decode,
    encode,
    new_command,
)
from keyfob.link.topics import (
    UPLINK_SUBSCRIPTIONS,
    WAKEUP_SUBSCRIPTION,
    Channel,
    Uplink,
    decode_uplink,
    parse_wakeup_topic,
    vehicle_topic,
)
from keyfob.link.transport import MessageHandler, TransportError, Will
from keyfob.link.wakeup import MqttWakeUpChannel, SimulatedSmsGateway, WakeUpError
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import Fleet, VehicleSpec, memory_fleet
from keyfob.vocabulary import Motorization

VIN = "VF3MEMORYLINK0001"
PRESENCE_TOPIC = vehicle_topic(VIN, Channel.PRESENCE)


@dataclass
class Platform:
    """The dispatcher's side, reduced to a connection and an inbox."""

    connection: MemoryConnection
    inbox: asyncio.Queue[Uplink] = field(default_factory=asyncio.Queue)

    async def send(self, vin: str, action: Action, params: dict[str, object]) -> str:
        command = new_command(action, params, now=utcnow(), ttl=timedelta(seconds=30))
        await self.connection.publish(vehicle_topic(vin, Channel.CMD), encode(command))
        return command.id

    async def until(self, wanted: Callable[[Uplink], bool], timeout: float = 2.0) -> list[Uplink]:
        """Everything received up to and including the first message ``wanted`` accepts."""
        seen: list[Uplink] = []
        async with asyncio.timeout(timeout):
            while not seen or not wanted(seen[-1]):
                seen.append(await self.inbox.get())
        return seen


def presence(state: PresenceState) -> Callable[[Uplink], bool]:
    return lambda u: isinstance(u.message, Presence) and u.message.state is state


def outcome(uplink: Uplink) -> Outcome:
    assert isinstance(uplink.message, Result)
    return uplink.message.outcome


def result_for(command_id: str) -> Callable[[Uplink], bool]:
    return lambda u: isinstance(u.message, Result) and u.message.id == command_id


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
async def platform(broker: MemoryBroker) -> AsyncIterator[Platform]:
    side = Platform(broker.connect("keyfob-dispatcher"))

    async def receive(topic: str, payload: bytes) -> None:
        await side.inbox.put(decode_uplink(topic, payload))

    side.connection.set_handler(receive)
    for pattern in UPLINK_SUBSCRIPTIONS:
        await side.connection.subscribe(pattern)
    await side.connection.start()
    yield side
    await side.connection.stop()


@pytest.fixture
async def fleet(broker: MemoryBroker) -> AsyncIterator[tuple[Fleet, SimulatedSmsGateway]]:
    sms = SimulatedSmsGateway()
    config = SimConfig(speed=0, awake_window=0.3, awake_extension=0.3, awake_cap=0.6)
    simulated = memory_fleet(broker, sms, seed=3, config=config)
    yield simulated, sms
    await simulated.stop()


async def test_a_command_is_acked_executed_reported_and_answered(
    platform: Platform, fleet: tuple[Fleet, SimulatedSmsGateway]
) -> None:
    await fleet[0].add(VehicleSpec(VIN, Motorization.ELECTRIC))
    await platform.until(presence(PresenceState.ONLINE))
    command_id = await platform.send(VIN, Action.DOOR, {"state": "Unlocked"})
    seen = await platform.until(result_for(command_id))
    acks = [u.message for u in seen if isinstance(u.message, Ack)]
    assert [(a.id, a.state) for a in acks] == [
        (command_id, AckState.RECEIVED),
        (command_id, AckState.EXECUTING),
    ]
    assert [type(u.message) for u in seen[-4:]] == [Ack, Ack, Telemetry, Result]
    assert outcome(seen[-1]) is Outcome.SUCCESS
    telemetry = [u.message for u in seen if isinstance(u.message, Telemetry)]
    assert telemetry[-1].status["doorsState"]["lockedStates"] == ["Unlocked"]
    assert all(u.vin == VIN for u in seen)


async def test_a_sleeping_vehicle_is_woken_through_the_sms_gateway(
    broker: MemoryBroker, platform: Platform, fleet: tuple[Fleet, SimulatedSmsGateway]
) -> None:
    simulated, sms = fleet
    await simulated.add(VehicleSpec(VIN))
    await platform.until(presence(PresenceState.ASLEEP))
    assert decode(Presence, broker.retained(PRESENCE_TOPIC) or b"").state is PresenceState.ASLEEP
    assert VIN not in broker.client_ids  # asleep means disconnected
    unheard = await platform.send(VIN, Action.HORN, {"state": "Activated"})
    await sms.wake(VIN)
    seen = await platform.until(presence(PresenceState.ONLINE))
    assert not any(result_for(unheard)(u) for u in seen)  # a sleeping car hears no command
    command_id = await platform.send(VIN, Action.HORN, {"state": "Activated"})
    seen = await platform.until(result_for(command_id))
    assert outcome(seen[-1]) is Outcome.SUCCESS


async def test_the_gateway_refuses_unknown_and_barred_numbers(
    fleet: tuple[Fleet, SimulatedSmsGateway],
) -> None:
    simulated, sms = fleet
    with pytest.raises(WakeUpError, match="no SIM"):
        await sms.wake("VF3UNKNOWN0000000")
    with pytest.raises(WakeUpError, match="vin:"):
        await sms.wake("VF3/../x")
    await simulated.add(VehicleSpec(VIN))
    sms.bar(VIN)
    with pytest.raises(WakeUpError, match="refuses"):
        await sms.wake(VIN)


async def test_wake_up_signals_travel_on_the_broker_to_the_sms_stand_in(
    broker: MemoryBroker, platform: Platform, fleet: tuple[Fleet, SimulatedSmsGateway]
) -> None:
    simulated, _ = fleet
    listener = broker.connect("sms-stand-in")

    async def on_wake(topic: str, payload: bytes) -> None:
        simulated.deliver_sms(parse_wakeup_topic(topic))

    listener.set_handler(on_wake)
    await listener.subscribe(WAKEUP_SUBSCRIPTION)
    await listener.start()
    await simulated.add(VehicleSpec(VIN))
    await platform.until(presence(PresenceState.ASLEEP))
    await MqttWakeUpChannel(platform.connection).wake(VIN)
    await platform.until(presence(PresenceState.ONLINE))
    await listener.stop()


async def test_a_vehicle_losing_its_network_leaves_its_last_will(
    broker: MemoryBroker, platform: Platform, fleet: tuple[Fleet, SimulatedSmsGateway]
) -> None:
    simulated, _ = fleet
    await simulated.add(VehicleSpec(VIN))
    await platform.until(presence(PresenceState.ONLINE))
    await simulated.act(VIN, lambda vehicle, now: vehicle.go_offline(0.2, now))
    await platform.until(presence(PresenceState.OFFLINE))
    assert decode(Presence, broker.retained(PRESENCE_TOPIC) or b"").state is PresenceState.OFFLINE
    await platform.until(presence(PresenceState.ONLINE))  # back after the outage


async def test_stopping_the_fleet_announces_every_vehicle_offline(
    broker: MemoryBroker, platform: Platform
) -> None:
    simulated = memory_fleet(broker, SimulatedSmsGateway(), config=SimConfig(speed=0))
    vins = [f"VF3STOPPING{n:06d}" for n in range(5)]
    await simulated.add_many(VehicleSpec(vin) for vin in vins)
    await simulated.stop()
    for vin in vins:
        retained = broker.retained(vehicle_topic(vin, Channel.PRESENCE)) or b""
        assert decode(Presence, retained).state is PresenceState.OFFLINE
    assert broker.client_ids == {"keyfob-dispatcher"}


async def test_hundreds_of_vehicles_answer_concurrently(
    broker: MemoryBroker, platform: Platform
) -> None:
    simulated = memory_fleet(broker, SimulatedSmsGateway(), config=SimConfig(speed=0))
    vins = [f"VF3CROWD{n:09d}" for n in range(300)]
    await simulated.add_many(VehicleSpec(vin, Motorization.HYBRID) for vin in vins)
    ids = {await platform.send(vin, Action.DOOR, {"state": "Unlocked"}) for vin in vins}
    answered: dict[str, Outcome] = {}
    async with asyncio.timeout(5):
        while len(answered) < len(ids):
            uplink = await platform.inbox.get()
            if isinstance(uplink.message, Result):
                answered[uplink.message.id] = uplink.message.outcome
    assert set(answered) == ids
    assert set(answered.values()) == {Outcome.SUCCESS}
    await simulated.stop()


async def test_the_memory_broker_keeps_mqtt_semantics(broker: MemoryBroker) -> None:
    got: list[tuple[str, str, bytes]] = []

    def recorder(name: str) -> MessageHandler:
        async def record(topic: str, payload: bytes) -> None:
            got.append((name, topic, payload))
            if payload == b"boom":
                raise RuntimeError("a broken handler must not stop delivery")

        return record

    will = Will("devices/a/presence", b"gone")
    a = broker.connect("a", will=will)
    b = broker.connect("b")
    a.set_handler(recorder("a"))
    b.set_handler(recorder("b"))
    await a.start()
    await a.publish("devices/a/state", b"retained", retain=True)
    await b.subscribe("devices/+/state")
    await b.subscribe("devices/a/#")  # overlaps: still one copy per message
    await b.start()
    await a.publish("devices/a/state", b"boom")
    await a.publish("devices/a/other", b"after")
    await asyncio.sleep(0.05)
    assert got[0] == got[1] == ("b", "devices/a/state", b"retained")  # one per subscription
    assert got[2:] == [
        ("b", "devices/a/state", b"boom"),
        ("b", "devices/a/other", b"after"),
    ]
    await a.abort()
    await asyncio.sleep(0.01)
    assert got[-1] == ("b", "devices/a/presence", b"gone")
    assert broker.retained("devices/a/presence") == b"gone"
    taken_over = broker.connect("b")
    await taken_over.start()
    assert not b.connected
    with pytest.raises(TransportError, match="not connected"):
        await b.publish("x", b"")
    with pytest.raises(TransportError, match="topic"):
        await taken_over.publish("devices/+", b"")
    await taken_over.stop()
