"""The vehicle side over a real broker: API + dispatcher app, simulated cars, an SMS stand-in.

A ``World`` is what ``keyfob serve --mqtt`` plus ``keyfob sim`` would be, inside the test
process so a test can turn the cars' knobs (``world.act(vid, ...)``) and look at the broker
traffic: a private Mosquitto, an app built with ``create_app(..., roles=[vehicle_role])``
whose dispatcher speaks MQTT, and a ``Fleet`` of gmqtt vehicles, one per provisioned vehicle,
each on its own connection. Wake-up signals go over the broker to an SMS stand-in that hands
them to the fleet, as ``run_standalone`` does, except that a test can bar a VIN (a SIM the
network refuses) and count what it heard. A command spy subscribed to every vehicle's command
topic counts what the platform sent, per command id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from conftest import Tenant, make_settings, make_tenant
from keyfob.api.app import create_app
from keyfob.kit.clock import utcnow
from keyfob.link.protocol import Command, ProtocolError, decode
from keyfob.link.topics import VEHICLES, WAKEUP_SUBSCRIPTION, Channel, parse_wakeup_topic
from keyfob.link.transport import parse_broker_url
from keyfob.remotes.models import remote_events, remotes
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import Fleet, Knob, VehicleSpec
from keyfob.sim.mqtt_fleet import GmqttLink, gmqtt_links
from keyfob.sim.vehicle import SimVehicle
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.models import vehicle_states
from keyfob.vehicles.service import all_vehicles, create_vehicle
from keyfob.vocabulary import Motorization
from mosquitto import Mosquitto
from vehicle_support import ALL_TYPES

FAST_SIM = SimConfig(speed=0)
# Short enough that a lost command or wake-up fails a test in seconds, long enough for a
# loaded two-core machine.
VEHICLE_DEFAULTS: dict[str, Any] = {"wake_up_timeout_s": 5.0, "command_timeout_s": 5.0}


@dataclass(frozen=True)
class Extra:
    """One more vehicle for the tenant: ``motorization`` is what the car is, ``claims`` what
    its registry entry (and so its capabilities document) says it is."""

    name: str
    motorization: Motorization
    claims: Motorization | None = None


class SmsStandIn:
    """The SMS network: hears every wake-up signal on the broker and hands it to the fleet."""

    def __init__(self, broker: Mosquitto, fleet: Fleet) -> None:
        self.link = GmqttLink(
            parse_broker_url(broker.url()), client_id="test-sms", persistent=False
        )
        self.fleet = fleet
        self.barred: set[str] = set()
        self.heard: Counter[str] = Counter()
        self.link.set_handler(self._on_signal)

    async def _on_signal(self, topic: str, payload: bytes) -> None:
        vin = parse_wakeup_topic(topic)
        self.heard[vin] += 1
        if vin not in self.barred:
            self.fleet.deliver_sms(vin)

    async def start(self) -> None:
        await self.link.start()
        await self.link.subscribe(WAKEUP_SUBSCRIPTION)

    async def stop(self) -> None:
        await self.link.stop()


class CommandSpy:
    """Counts every command the platform publishes, by command id, as the broker delivers."""

    def __init__(self, broker: Mosquitto) -> None:
        self.link = GmqttLink(
            parse_broker_url(broker.url()), client_id="test-spy", persistent=False
        )
        self.ids: Counter[str] = Counter()
        self.link.set_handler(self._on_command)

    async def _on_command(self, topic: str, payload: bytes) -> None:
        with contextlib.suppress(ProtocolError):
            self.ids[decode(Command, payload).id] += 1

    async def start(self) -> None:
        await self.link.start()
        await self.link.subscribe(f"{VEHICLES}/+/{Channel.CMD.value}")

    async def stop(self) -> None:
        await self.link.stop()


@dataclass
class World:
    db: Database
    broker: Mosquitto
    tenant: Tenant
    fleet: Fleet
    sms: SmsStandIn
    spy: CommandSpy
    settings: dict[str, Any]
    callback_id: str = ""
    vids: dict[str, str] = field(default_factory=dict)  # name → vehicle id
    vins: dict[str, str] = field(default_factory=dict)  # vehicle id → VIN
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    # -- the platform's face -------------------------------------------------------------

    def remotes_path(self, vid: str) -> str:
        return f"{self.tenant.fleet}/vehicles/{vid}/callbacks/{self.callback_id}/remotes"

    async def post(self, vid: str, body: dict[str, Any]) -> str:
        posted = await self.tenant.http.post(self.remotes_path(vid), json=body)
        assert posted.status_code == 202, posted.text
        remote_id: str = posted.json()["remoteActionId"]
        return remote_id

    async def read(self, vid: str, remote_id: str) -> dict[str, Any]:
        answer = await self.tenant.http.get(f"{self.remotes_path(vid)}/{remote_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def done(self, vid: str, remote_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """The remote, read through the API once it has finished; fails with its history
        if it does not finish within ``timeout``.

        Finishing is watched in the database (one cheap query), so that many concurrent
        waiters do not load the API; the Done event and the final status are written in one
        transaction, so the API shows both once the phase reads ``done``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.db.read() as conn:
                phase = (
                    await conn.execute(select(remotes.c.phase).where(remotes.c.id == remote_id))
                ).scalar_one()
            if phase == "done":
                return await self.read(vid, remote_id)
            await asyncio.sleep(0.05)
        body = await self.read(vid, remote_id)
        raise AssertionError(f"remote never finished within {timeout} s: {body}")

    async def run(self, vid: str, body: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        return await self.done(vid, await self.post(vid, body), timeout)

    async def status(self, vid: str) -> httpx.Response:
        return await self.tenant.http.get(f"{self.tenant.fleet}/vehicles/{vid}/status")

    # -- the cars ----------------------------------------------------------------------

    def car(self, vid: str) -> SimVehicle:
        return self.fleet.vehicle(self.vins[vid])

    async def act(self, vid: str, knob: Knob) -> None:
        await self.fleet.act(self.vins[vid], knob)

    async def known(
        self, vid: str, wanted: Callable[[str, dict[str, Any] | None], bool], timeout: float = 10.0
    ) -> None:
        """Until what the platform stored about the vehicle (presence, status) is ``wanted``."""
        seen: tuple[str, dict[str, Any] | None] = ("", None)
        async with asyncio.timeout(timeout):
            while True:
                async with self.db.read() as conn:
                    row = (
                        await conn.execute(
                            select(vehicle_states.c.presence, vehicle_states.c.status).where(
                                vehicle_states.c.vehicle_id == vid
                            )
                        )
                    ).one()
                seen = (row.presence, row.status)
                if wanted(*seen):
                    return
                await asyncio.sleep(0.03)

    async def online(self, vid: str, timeout: float = 10.0) -> None:
        await self.known(vid, lambda presence, _: presence == "online", timeout)

    # -- the database, for what the API does not show ------------------------------------

    async def sent_to_vehicle_counts(self) -> Counter[str]:
        """Per remote id, how many SentToVehicle events it has."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(remote_events.c.remote_id).where(
                        remote_events.c.status == "SentToVehicle"
                    )
                )
            ).all()
        return Counter(r.remote_id for r in rows)

    async def command_ids(self) -> dict[str, str | None]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(remotes.c.id, remotes.c.command_id))).all()
        return {r.id: r.command_id for r in rows}

    # -- the dispatcher ----------------------------------------------------------------

    def app_settings(self) -> Any:
        return make_settings(self.db.url, **self.settings)

    async def start_dispatcher(self) -> Any:
        """Another app whose only job is to run the vehicle role (its API is not used)."""
        app = create_app(
            self.app_settings(),
            database=self.db,
            clock=utcnow,
            roles=[vehicle_role],
            announce=lambda _: None,
        )
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        return app


async def _provision(db: Database, extras: Sequence[Extra]) -> tuple[Tenant, dict[str, str]]:
    plain = create_app(make_settings(db.url), database=db, clock=utcnow, announce=lambda _: None)
    async with plain.router.lifespan_context(plain):
        tenant = await make_tenant(plain, db, "alice", utcnow())
    await tenant.http.aclose()
    vids = {name: vehicle.id for name, vehicle in tenant.vehicles.items()}
    async with db.transaction() as conn:
        for index, extra in enumerate(extras):
            vehicle = await create_vehicle(
                conn,
                fleet_id=tenant.fleet_id,
                vin=f"VF3EXTRA{index:09d}",
                motorization=extra.motorization.value,
                capabilities=capabilities_for(extra.claims or extra.motorization),
                now=utcnow(),
            )
            vids[extra.name] = vehicle.id
    return tenant, vids


async def _callback(tenant: Tenant) -> str:
    answer = await tenant.http.post(
        f"{tenant.fleet}/remote/callbacks",
        json={
            "callback": {"webhook": {"target": "https://hooks.example.com/k", "name": "k"}},
            "remoteTypes": ALL_TYPES,
        },
    )
    assert answer.status_code == 200, answer.text
    callback_id: str = answer.json()["callbackId"]
    return callback_id


@asynccontextmanager
async def mqtt_world(
    db: Database,
    directory: Path,
    *,
    vehicle: dict[str, Any] | None = None,
    sim: SimConfig = FAST_SIM,
    start_awake: bool = True,
    dispatching: bool = True,
    extras: Sequence[Extra] = (),
) -> AsyncIterator[World]:
    """A tenant (Electric, Hybrid, Thermic + ``extras``) whose cars are simulated on a private
    Mosquitto started in ``directory``.

    ``vehicle`` overrides the ``vehicle`` settings group (time-outs, wake budgets). With
    ``dispatching=False`` the API runs alone until the test calls ``start_dispatcher``.
    Awake cars are known online to the platform before the world is handed over.
    """
    tenant, vids = await _provision(db, extras)
    broker = Mosquitto(directory)
    settings: dict[str, Any] = {
        "mqtt": broker.url(),
        "run_simulator": False,
        "sim_speed": 0.0,
        "vehicle": {**VEHICLE_DEFAULTS, **(vehicle or {})},
        "rate_limit": {"burst": 100_000},
    }
    fleet = Fleet(
        gmqtt_links(parse_broker_url(broker.url()), reconnect_delay=(0.05, 0.2)),
        config=sim,
        start_awake=start_awake,
    )
    world = World(
        db, broker, tenant, fleet, SmsStandIn(broker, fleet), CommandSpy(broker), settings
    )
    world.vids = vids
    async with world.stack:
        world.stack.callback(broker.stop)
        broker.start()
        await world.sms.start()
        world.stack.push_async_callback(world.sms.stop)
        await world.spy.start()
        world.stack.push_async_callback(world.spy.stop)
        app = create_app(
            world.app_settings(),
            database=db,
            clock=utcnow,
            roles=[vehicle_role] if dispatching else [],
            announce=lambda _: None,
        )
        await world.stack.enter_async_context(app.router.lifespan_context(app))
        async with db.read() as conn:
            found = await all_vehicles(conn)
        world.vins = {v.id: v.vin for v in found}
        await fleet.add_many(VehicleSpec(v.vin, Motorization(v.motorization)) for v in found)
        world.stack.push_async_callback(fleet.stop)
        tenant.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://keyfob.test",
            auth=(tenant.login, tenant.password),
            params={"client_id": tenant.client_id},
        )
        world.stack.push_async_callback(tenant.http.aclose)
        world.callback_id = await _callback(tenant)
        if start_awake and dispatching:
            await asyncio.gather(*(world.online(vid) for vid in vids.values()))
        yield world
