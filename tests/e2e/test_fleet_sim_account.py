"""The simulated fleet's account in ``deploy/mosquitto/acl`` carries a whole fleet.

``deploy/compose.yaml`` and ``deploy/systemd/`` run ``keyfob sim`` with the one account
``keyfob-fleet-sim``, and its vehicles have no accounts of their own. Through a Mosquitto with
the shipped ACL, a vehicle simulated that way must be woken up (the SMS stand-in hears the
wake-up), take a command and answer it, all seen by the platform's own account.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from keyfob.kit.clock import utcnow
from keyfob.link.mqtt import MqttTransport
from keyfob.link.protocol import (
    Action,
    Outcome,
    Presence,
    PresenceState,
    Result,
    encode,
    new_command,
)
from keyfob.link.topics import UPLINK_SUBSCRIPTIONS, Channel, Uplink, decode_uplink, vehicle_topic
from keyfob.link.transport import Backoff
from keyfob.link.wakeup import MqttWakeUpChannel
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import VehicleSpec
from keyfob.sim.mqtt_fleet import run_standalone
from mosquitto import Mosquitto

pytestmark = pytest.mark.mqtt

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl"
VIN = "VF3FLEETSIM00000A"
USERS = {"keyfob-platform": "plat-secret", "keyfob-fleet-sim": "fleet-secret"}


async def until(inbox: asyncio.Queue[Uplink], wanted: type, **fields: object) -> Uplink:
    async with asyncio.timeout(10):
        while True:
            uplink = await inbox.get()
            message = uplink.message
            if isinstance(message, wanted) and all(
                getattr(message, k) == v for k, v in fields.items()
            ):
                return uplink


async def test_a_fleet_on_the_simulator_account_wakes_and_answers(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, users=USERS, acl=ACL)
    broker.start()
    inbox: asyncio.Queue[Uplink] = asyncio.Queue()
    platform = MqttTransport(
        broker.url("keyfob-platform", "plat-secret"),
        client_id="keyfob-dispatcher-fleet-sim-test",
        clean_session=True,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )

    async def receive(topic: str, payload: bytes) -> None:
        await inbox.put(decode_uplink(topic, payload))

    platform.set_handler(receive)
    stop = asyncio.Event()
    fleet: asyncio.Task[object] | None = None
    try:
        for pattern in UPLINK_SUBSCRIPTIONS:
            await platform.subscribe(pattern)
        await platform.start()
        fleet = asyncio.create_task(
            run_standalone(
                broker.url("keyfob-fleet-sim", "fleet-secret"),
                [VehicleSpec(VIN)],  # no account of its own: the URL's
                seed=5,
                speed=0,
                stop_event=stop,
                config=SimConfig(speed=0, awake_window=0.6, awake_extension=0.6, awake_cap=1.2),
                reconnect_delay=(0.1, 0.3),
            )
        )
        await until(inbox, Presence, state=PresenceState.ASLEEP)
        await MqttWakeUpChannel(platform).wake(VIN)
        await until(inbox, Presence, state=PresenceState.ONLINE)
        command = new_command(
            Action.HORN, {"state": "Activated"}, now=utcnow(), ttl=timedelta(seconds=30)
        )
        await platform.publish(vehicle_topic(VIN, Channel.CMD), encode(command))
        answer = await until(inbox, Result, id=command.id)
        assert isinstance(answer.message, Result)
        assert answer.message.outcome is Outcome.SUCCESS
        assert answer.vin == VIN
    finally:
        stop.set()
        if fleet is not None:
            await asyncio.wait_for(fleet, 10)
        await platform.stop()
        broker.stop()
