"""The vehicle side of ``keyfob serve``: the link, the simulated fleet and the dispatcher.

Embedded default: an in-process broker and SMS gateway, one simulated vehicle per provisioned
vehicle. With ``--mqtt`` the dispatcher talks to the broker and the simulated fleet connects
to the same broker as separate MQTT clients, exactly as ``keyfob sim`` would from elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from keyfob.config import Settings
from keyfob.kit.ids import random_suffix
from keyfob.link.memory import MemoryBroker
from keyfob.link.mqtt import MqttTransport
from keyfob.link.transport import Transport
from keyfob.link.wakeup import MqttWakeUpChannel, SimulatedSmsGateway, WakeUpChannel
from keyfob.remotes.dispatcher import Dispatcher, DispatcherOptions
from keyfob.remotes.lifecycle import Limits
from keyfob.runtime.context import AppContext
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import Fleet, VehicleSpec, memory_fleet, run_fleet
from keyfob.sim.mqtt_fleet import run_standalone
from keyfob.store.nudge import listening
from keyfob.vehicles.service import all_vehicles
from keyfob.vocabulary import Motorization


def limits(settings: Settings) -> Limits:
    v = settings.vehicle
    return Limits(
        wake_up_timeout=timedelta(seconds=v.wake_up_timeout_s),
        command_timeout=timedelta(seconds=v.command_timeout_s),
        month_quota=v.wake_up_quota_per_month,
        short_limit=v.short_window_wake_ups,
        low_battery_percent=v.low_battery_percent,
    )


def dispatcher_options(settings: Settings, *, shared: bool) -> DispatcherOptions:
    return DispatcherOptions(
        short_window=timedelta(seconds=settings.vehicle.short_window_s),
        share_group="keyfob-dispatchers" if shared else None,
    )


async def simulated_specs(ctx: AppContext) -> list[VehicleSpec]:
    async with ctx.database.read() as conn:
        found = await all_vehicles(conn)
    return [VehicleSpec(v.vin, Motorization(v.motorization)) for v in found if v.simulated]


def mqtt_link(url: str, role: str) -> tuple[Transport, WakeUpChannel]:
    # A clean session: the client id is new in every process, so a persistent session would
    # never be resumed, and the broker would go on handing it its share of the dispatchers'
    # shared subscription after the process died: half of all results lost for good.
    link = MqttTransport(url, client_id=f"keyfob-{role}-{random_suffix()}", clean_session=True)
    return link, MqttWakeUpChannel(link)


@asynccontextmanager
async def vehicle_role(ctx: AppContext) -> AsyncIterator[Dispatcher]:
    settings = ctx.settings
    stop_fleet = asyncio.Event()
    fleet_task: asyncio.Task[object] | None = None
    specs = await simulated_specs(ctx) if settings.run_simulator else []
    if settings.mqtt:
        link, wakeup = mqtt_link(settings.mqtt, "dispatcher")
        if specs:
            fleet_task = asyncio.create_task(
                run_standalone(
                    settings.mqtt,
                    specs,
                    settings.sim_seed,
                    settings.sim_speed,
                    stop_fleet,
                    config=SimConfig(speed=settings.sim_speed),
                ),
                name="simulated-fleet",
            )
    else:
        broker = MemoryBroker()
        sms = SimulatedSmsGateway()
        link, wakeup = broker.connect("keyfob-dispatcher"), sms
        fleet: Fleet = memory_fleet(
            broker, sms, seed=settings.sim_seed, speed=settings.sim_speed, clock=ctx.clock
        )
        ctx.fleet = fleet
        fleet_task = asyncio.create_task(
            run_fleet(fleet, specs, stop_fleet), name="simulated-fleet"
        )
    dispatcher = Dispatcher(
        ctx.database,
        link,
        wakeup,
        clock=ctx.clock,
        limits=limits(settings),
        options=dispatcher_options(settings, shared=bool(settings.mqtt)),
    )
    await dispatcher.start()
    ctx.wakers.append(dispatcher.wake)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher")
    try:
        async with listening(ctx.database, dispatcher.wake):  # remotes accepted elsewhere
            yield dispatcher
    finally:
        ctx.wakers.remove(dispatcher.wake)
        dispatcher.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await link.stop()
        stop_fleet.set()
        if fleet_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await fleet_task
