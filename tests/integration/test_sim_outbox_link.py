"""Simulated vehicles keep the results the link could not take, over the in-memory broker.

The vehicle's connection is cut and healed the way a broker fault does it: the connection
vanishes (the broker publishes the last will) and comes back with its subscriptions, calling the
connect hook, as the MQTT client's own reconnect does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from keyfob.kit.clock import utcnow
from keyfob.link.memory import MemoryBroker, MemoryConnection
from keyfob.link.protocol import (
    Ack,
    AckState,
    Action,
    Presence,
    PresenceState,
    Result,
    decode,
    encode,
    new_command,
)
from keyfob.link.topics import UPLINK_SUBSCRIPTIONS, Channel, Uplink, decode_uplink, vehicle_topic
from keyfob.link.transport import TransportError
from keyfob.link.wakeup import SimulatedSmsGateway
from keyfob.sim.config import ACTION_SECONDS, SimConfig
from keyfob.sim.fleet import Fleet, VehicleSpec, memory_fleet
from keyfob.store.engine import Database
from vehicle_support import callback_for_all, embedded, until_done

VIN = "VF3OUTBOXLINK0001"
# Each command takes longer than the one before, so they finish in the order they were sent.
STEPS: list[tuple[Action, dict[str, Any], float]] = [
    (Action.DOOR, {"state": "Unlocked"}, 0.2),
    (Action.HORN, {"state": "Activated"}, 0.3),
    (Action.LIGHTS, {"on": True, "duration": 10}, 0.4),
]


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[MemoryConnection, asyncio.Queue[Uplink], Fleet]]:
    broker = MemoryBroker()
    platform = broker.connect("keyfob-dispatcher")
    inbox: asyncio.Queue[Uplink] = asyncio.Queue()

    async def receive(topic: str, payload: bytes) -> None:
        await inbox.put(decode_uplink(topic, payload))

    platform.set_handler(receive)
    for pattern in UPLINK_SUBSCRIPTIONS:
        await platform.subscribe(pattern)
    await platform.start()
    seconds = dict(ACTION_SECONDS) | {action: s for action, _, s in STEPS}
    config = SimConfig(speed=1.0, action_seconds=seconds)
    fleet = memory_fleet(broker, SimulatedSmsGateway(), seed=5, config=config)
    yield platform, inbox, fleet
    await fleet.stop()
    await platform.stop()


async def next_matching(inbox: asyncio.Queue[Uplink], wanted: Callable[[Uplink], bool]) -> Uplink:
    async with asyncio.timeout(3):
        while not wanted(uplink := await inbox.get()):
            pass
    return uplink


async def test_results_finished_while_the_link_is_down_arrive_in_order_once_it_is_back(
    setup: tuple[MemoryConnection, asyncio.Queue[Uplink], Fleet],
) -> None:
    platform, inbox, fleet = setup
    await fleet.add(VehicleSpec(VIN))
    await next_matching(inbox, lambda u: isinstance(u.message, Presence))
    ids = []
    for action, params, _ in STEPS:
        command = new_command(action, params, now=utcnow(), ttl=timedelta(seconds=30))
        await platform.publish(vehicle_topic(VIN, Channel.CMD), encode(command))
        ids.append(command.id)
    last_executing = Ack(ids[-1], AckState.EXECUTING, utcnow())
    await next_matching(
        inbox,
        lambda u: (
            isinstance(u.message, Ack)
            and (u.message.id, u.message.state) == (last_executing.id, last_executing.state)
        ),
    )
    link = fleet.link(VIN)
    assert link is not None
    await link.abort()  # the network goes; every command finishes while it is gone
    will = await next_matching(inbox, lambda u: isinstance(u.message, Presence))
    assert isinstance(will.message, Presence)
    assert will.message.state is PresenceState.OFFLINE
    vehicle = fleet.vehicle(VIN)
    await eventually(lambda: len(vehicle.state.outbox) == len(STEPS))
    assert inbox.empty()  # nothing got through meanwhile
    await link.start()  # the network is back
    online = await next_matching(inbox, lambda u: isinstance(u.message, Presence))
    assert isinstance(online.message, Presence)
    assert online.message.state is PresenceState.ONLINE
    arrived = []
    for _ in ids:
        uplink = await next_matching(inbox, lambda u: isinstance(u.message, Result))
        assert isinstance(uplink.message, Result)
        arrived.append(uplink.message.id)
    assert arrived == ids
    assert vehicle.counters["results_held"] == len(ids)
    await asyncio.sleep(0.1)
    assert not any(isinstance(u.message, Result) for u in drain(inbox))  # each exactly once


def drain(inbox: asyncio.Queue[Uplink]) -> list[Uplink]:
    seen = []
    while not inbox.empty():
        seen.append(inbox.get_nowait())
    return seen


async def test_a_result_whose_puback_was_lost_is_sent_again_and_recorded_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(db) as (app, tenant):
        fleet = app.state.ctx.fleet
        vin = tenant.vehicles["Electric"].vin
        await eventually(lambda: vin in fleet.vins and fleet.link(vin) is not None)
        link = fleet.link(vin)
        publish = link.publish
        results: list[str] = []

        async def lossy(topic: str, payload: bytes, **options: Any) -> None:
            await publish(topic, payload, **options)  # the broker has it …
            if topic == vehicle_topic(vin, Channel.RESULT):
                results.append(decode(Result, payload).id)
                if len(results) == 1:  # … but the connection drops before the PUBACK
                    await link.abort()
                    raise TransportError(f"publish to {topic}: connection lost before PUBACK")

        monkeypatch.setattr(link, "publish", lossy)
        cbid = await callback_for_all(tenant)
        vid = tenant.vehicles["Electric"].id
        path = f"{tenant.fleet}/vehicles/{vid}/callbacks/{cbid}/remotes"
        posted = await tenant.http.post(path, json={"horn": {"state": "Activated"}})
        first = f"{path}/{posted.json()['remoteActionId']}"
        done = await until_done(tenant, first)
        assert done["status"] == "Success"
        await link.start()  # back: the vehicle sends what it still owes
        await eventually(lambda: len(results) == 2)
        assert results[0] == results[1]
        # The platform reads one vehicle's messages in order: once this next remote is done,
        # the duplicate before it has been processed.
        posted = await tenant.http.post(path, json={"lights": {"on": True}})
        await until_done(tenant, f"{path}/{posted.json()['remoteActionId']}")
        again = (await tenant.http.get(first)).json()
    assert again["events"] == done["events"]
    assert [e["type"] for e in again["events"]].count("Done") == 1
    assert again["status"] == "Success"
