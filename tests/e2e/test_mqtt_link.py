"""Platform and simulated vehicles through a real Mosquitto with the shipped ACL file."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from keyfob.kit.clock import utcnow
from keyfob.link.mqtt import MqttTransport
from keyfob.link.protocol import (
    Ack,
    Action,
    Outcome,
    Presence,
    PresenceState,
    Result,
    Telemetry,
    encode,
    new_command,
)
from keyfob.link.topics import (
    UPLINK_SUBSCRIPTIONS,
    Channel,
    Uplink,
    decode_uplink,
    vehicle_topic,
)
from keyfob.link.transport import (
    Backoff,
    MessageHandler,
    Outgoing,
    TransportError,
    parse_broker_url,
)
from keyfob.link.wakeup import MqttWakeUpChannel
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import Fleet, VehicleSpec
from keyfob.sim.mqtt_fleet import GmqttLink, gmqtt_links, run_standalone
from mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.mqtt

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl"
VIN_A, VIN_B = "VF3MQTTLINK00000A", "VF3MQTTLINK00000B"
USERS = {
    "keyfob-platform": "plat-secret",
    "keyfob-sms": "sms-secret",
    VIN_A: "a-secret",
    VIN_B: "b-secret",
}
VEHICLES = [
    VehicleSpec(VIN_A, username=VIN_A, password="a-secret"),
    VehicleSpec(VIN_B, username=VIN_B, password="b-secret"),
]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path, users=USERS, acl=ACL)
    server.start()
    yield server
    server.stop()


@dataclass
class Platform:
    transport: MqttTransport
    inbox: asyncio.Queue[Uplink] = field(default_factory=asyncio.Queue)

    async def send(self, vin: str, action: Action, params: dict[str, object]) -> str:
        command = new_command(action, params, now=utcnow(), ttl=timedelta(seconds=30))
        await self.transport.publish(vehicle_topic(vin, Channel.CMD), encode(command))
        return command.id

    async def until(self, wanted: Callable[[Uplink], bool], timeout: float = 5.0) -> list[Uplink]:
        seen: list[Uplink] = []
        async with asyncio.timeout(timeout):
            while not seen or not wanted(seen[-1]):
                seen.append(await self.inbox.get())
        return seen


def presence(vin: str, state: PresenceState) -> Callable[[Uplink], bool]:
    return lambda u: u.vin == vin and isinstance(u.message, Presence) and u.message.state is state


def outcome(uplink: Uplink) -> Outcome:
    assert isinstance(uplink.message, Result)
    return uplink.message.outcome


def result_for(command_id: str) -> Callable[[Uplink], bool]:
    return lambda u: isinstance(u.message, Result) and u.message.id == command_id


@pytest.fixture
async def platform(broker: Mosquitto) -> AsyncIterator[Platform]:
    transport = MqttTransport(
        broker.url("keyfob-platform", "plat-secret"),
        client_id="keyfob-dispatcher-test",
        clean_session=True,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    side = Platform(transport)

    async def receive(topic: str, payload: bytes) -> None:
        await side.inbox.put(decode_uplink(topic, payload))

    transport.set_handler(receive)
    for pattern in UPLINK_SUBSCRIPTIONS:
        await transport.subscribe(pattern)
    await transport.start()
    yield side
    await transport.stop()


@pytest.fixture
async def simulator(broker: Mosquitto) -> AsyncIterator[Fleet]:
    """``run_standalone`` as ``keyfob sim`` runs it, on the broker, with fast reactions."""
    stop = asyncio.Event()
    started: asyncio.Future[Fleet] = asyncio.get_running_loop().create_future()
    config = SimConfig(speed=0, awake_window=0.6, awake_extension=0.6, awake_cap=1.2)
    task = asyncio.create_task(
        run_standalone(
            broker.url("keyfob-sms", "sms-secret"),
            VEHICLES,
            seed=5,
            speed=0,
            stop_event=stop,
            config=config,
            reconnect_delay=(0.1, 0.3),
            on_started=started.set_result,
        )
    )
    fleet = await asyncio.wait_for(started, 10)
    yield fleet
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_command_round_trip_through_the_broker(
    platform: Platform, simulator: Fleet
) -> None:
    await platform.until(presence(VIN_A, PresenceState.ONLINE))
    command_id = await platform.send(VIN_A, Action.DOOR, {"state": "Unlocked"})
    seen = await platform.until(result_for(command_id))
    mine = [u.message for u in seen if u.vin == VIN_A and not isinstance(u.message, Presence)]
    kinds = [type(m) for m in mine]
    mine = mine[kinds.index(Ack) :]  # what came before is the vehicle's hello
    assert [type(m) for m in mine] == [Ack, Ack, Telemetry, Result]
    result, telemetry = mine[-1], mine[2]
    assert isinstance(result, Result)
    assert isinstance(telemetry, Telemetry)
    assert result.outcome is Outcome.SUCCESS
    assert telemetry.status["doorsState"]["lockedStates"] == ["Unlocked"]


async def test_a_sleeping_vehicle_wakes_on_the_mqtt_wake_up_channel(
    platform: Platform, simulator: Fleet
) -> None:
    await platform.until(presence(VIN_B, PresenceState.ASLEEP))
    assert simulator.link(VIN_B) is None  # disconnected while asleep
    await MqttWakeUpChannel(platform.transport).wake(VIN_B)
    await platform.until(presence(VIN_B, PresenceState.ONLINE))
    command_id = await platform.send(VIN_B, Action.HORN, {"state": "Activated"})
    seen = await platform.until(result_for(command_id))
    assert outcome(seen[-1]) is Outcome.SUCCESS


async def test_going_offline_makes_the_broker_publish_the_last_will(
    platform: Platform, simulator: Fleet
) -> None:
    await platform.until(presence(VIN_A, PresenceState.ONLINE))
    await simulator.act(VIN_A, lambda vehicle, now: vehicle.go_offline(0.3, now))
    await platform.until(presence(VIN_A, PresenceState.OFFLINE))
    await platform.until(presence(VIN_A, PresenceState.ONLINE))


async def test_tcp_nodelay_is_set_on_both_ends(platform: Platform, simulator: Fleet) -> None:
    await platform.until(presence(VIN_A, PresenceState.ONLINE))
    assert platform.transport.tcp_nodelay() is True
    link = simulator.link(VIN_A)
    assert isinstance(link, GmqttLink)
    assert link.tcp_nodelay() is True
    rounds = []
    for _ in range(20):
        started = time.perf_counter()
        command_id = await platform.send(VIN_A, Action.HORN, {"state": "Activated"})
        await platform.until(result_for(command_id))
        rounds.append(time.perf_counter() - started)
    # Four QoS 1 publishes per round; with Nagle they would take ~90 ms each.
    assert statistics.median(rounds) < 0.05


async def test_a_vehicle_cannot_read_another_vehicles_commands(
    broker: Mosquitto, platform: Platform
) -> None:
    address = parse_broker_url(broker.url())
    received: dict[str, list[str]] = {VIN_A: [], VIN_B: []}

    def recorder(vin: str) -> MessageHandler:
        async def record(topic: str, payload: bytes) -> None:
            received[vin].append(topic)

        return record

    owner = GmqttLink(address, client_id=VIN_A, username=VIN_A, password="a-secret")
    snoop = GmqttLink(address, client_id=VIN_B, username=VIN_B, password="b-secret")
    owner.set_handler(recorder(VIN_A))
    snoop.set_handler(recorder(VIN_B))
    await owner.start()
    await snoop.start()
    await owner.subscribe(vehicle_topic(VIN_A, Channel.CMD))
    await snoop.subscribe(vehicle_topic(VIN_A, Channel.CMD))
    await snoop.subscribe("keyfob/v1/vehicles/#")
    await asyncio.sleep(0.2)
    await platform.send(VIN_A, Action.HORN, {"state": "Activated"})
    # B also tries to answer in A's name; the broker must drop it.
    forged = Result("forged", Outcome.SUCCESS, utcnow())
    await snoop.publish(vehicle_topic(VIN_A, Channel.RESULT), encode(forged))
    await asyncio.sleep(0.5)
    assert received[VIN_A] == [vehicle_topic(VIN_A, Channel.CMD)]
    assert received[VIN_B] == []
    assert all(not isinstance(u.message, Result) for u in list_inbox(platform))
    await owner.stop()
    await snoop.stop()


def list_inbox(platform: Platform) -> list[Uplink]:
    items = []
    while not platform.inbox.empty():
        items.append(platform.inbox.get_nowait())
    return items


async def test_wrong_credentials_are_refused_at_once(broker: Mosquitto) -> None:
    transport = MqttTransport(broker.url(VIN_A, "guess"), client_id=VIN_A, connect_timeout=5)
    started = time.perf_counter()
    with pytest.raises(TransportError, match="authori"):
        await transport.start()
    assert time.perf_counter() - started < 2
    link = GmqttLink(parse_broker_url(broker.url()), client_id=VIN_B, username=VIN_B, password="x")
    with pytest.raises(TransportError):
        await link.start()


async def test_both_ends_reconnect_after_a_broker_restart(
    broker: Mosquitto, platform: Platform, simulator: Fleet
) -> None:
    await platform.until(presence(VIN_A, PresenceState.ONLINE))
    await simulator.act(VIN_A, lambda vehicle, now: vehicle.set_ignition(True, now))  # stay awake
    broker.restart()
    async with asyncio.timeout(10):
        while platform.transport.connections < 2:
            await asyncio.sleep(0.05)
        await platform.until(presence(VIN_A, PresenceState.ONLINE))
    command_id = await platform.send(
        VIN_A, Action.NAVIGATION, {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}
    )
    seen = await platform.until(result_for(command_id))
    assert outcome(seen[-1]) is Outcome.SUCCESS


async def test_a_vehicle_started_before_its_broker_connects_when_it_comes_up(
    tmp_path: Path,
) -> None:
    server = Mosquitto(tmp_path)  # not started yet
    address = parse_broker_url(server.url())
    fleet = Fleet(gmqtt_links(address), config=SimConfig(speed=0))
    await fleet.add(VehicleSpec(VIN_A))
    assert fleet.link(VIN_A) is None
    assert fleet.counters["connect_errors"] == 1
    server.start()
    try:
        async with asyncio.timeout(10):
            while fleet.link(VIN_A) is None:
                await asyncio.sleep(0.1)
        link = fleet.link(VIN_A)
        assert link is not None
        assert link.connected
    finally:
        await fleet.stop()
        server.stop()


def test_the_platform_link_works_on_uvloop_as_the_server_runs_it(broker: Mosquitto) -> None:
    """uvicorn runs keyfob on uvloop, whose transports and sockets are its own classes."""
    import uvloop

    async def scenario() -> tuple[bool | None, list[tuple[str, bytes]]]:
        link = MqttTransport(
            broker.url("keyfob-platform", "plat-secret"),
            client_id="keyfob-uvloop-test",
            clean_session=True,
        )
        seen: list[tuple[str, bytes]] = []
        arrived = asyncio.Event()

        async def handler(topic: str, payload: bytes) -> None:
            seen.append((topic, payload))
            if len(seen) == 3:
                arrived.set()

        link.set_handler(handler)
        await link.start()
        try:
            await link.subscribe("keyfob/v1/vehicles/+/cmd")  # the platform may read what it sends
            topics = [vehicle_topic(vin, Channel.CMD) for vin in (VIN_A, VIN_B, VIN_A)]
            outcomes = await link.publish_many(
                [Outgoing(topic, str(index).encode()) for index, topic in enumerate(topics)]
            )
            assert outcomes == [None, None, None]
            async with asyncio.timeout(5):
                await arrived.wait()
            return link.tcp_nodelay(), seen
        finally:
            await link.stop()

    nodelay, seen = uvloop.run(scenario())
    assert nodelay is True
    assert seen == [
        (vehicle_topic(VIN_A, Channel.CMD), b"0"),
        (vehicle_topic(VIN_B, Channel.CMD), b"1"),
        (vehicle_topic(VIN_A, Channel.CMD), b"2"),
    ]


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 signed by it: (CA, certificate, key)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    new_key = ["-newkey", "rsa:2048", "-nodes"]
    ca = ["-subj", "/CN=keyfob test CA", "-keyout", "ca.key", "-out", "ca.crt"]
    openssl("req", "-x509", *new_key, "-days", "2", *ca)
    openssl(
        "req", *new_key, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    signing = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "san.ext"]
    openssl("x509", "-req", "-in", "server.csr", *signing, "-days", "2", "-out", "server.crt")
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, int, Path]]:
    """A broker with a second listener speaking TLS; yields it, that port and the CA file."""
    ca, certificate, key = _certificates(tmp_path)
    port = free_port()
    extra = [f"listener {port} 127.0.0.1", f"certfile {certificate}", f"keyfile {key}"]
    server = Mosquitto(tmp_path, extra=extra)
    server.start()
    yield server, port, ca
    server.stop()


async def test_mqtts_verifies_the_broker_and_carries_messages(
    tls_broker: tuple[Mosquitto, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port, ca = tls_broker
    url = f"mqtts://127.0.0.1:{port}"
    stranger = MqttTransport(url, client_id="keyfob-tls-untrusting", connect_timeout=10)
    started = time.perf_counter()
    with pytest.raises(TransportError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        await stranger.start()  # the test CA is not trusted yet: no point in retrying
    assert time.perf_counter() - started < 2

    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    link = MqttTransport(url, client_id="keyfob-tls-test", clean_session=True)
    seen: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def handler(topic: str, payload: bytes) -> None:
        await seen.put((topic, payload))

    link.set_handler(handler)
    await link.start()
    try:
        await link.subscribe("keyfob/v1/vehicles/+/cmd")
        await link.publish(vehicle_topic(VIN_A, Channel.CMD), b"over tls")
        async with asyncio.timeout(5):
            assert await seen.get() == (vehicle_topic(VIN_A, Channel.CMD), b"over tls")
        assert link.tcp_nodelay() is True
    finally:
        await link.stop()
