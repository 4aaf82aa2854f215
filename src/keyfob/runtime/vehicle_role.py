"""The vehicle side of ``keyfob serve``: the link, the simulated fleet and the dispatcher.

Embedded default: an in-process broker and SMS gateway, one simulated vehicle per provisioned
vehicle, added or retired as the registry changes (``runtime.sim_registry``). With ``--mqtt``
the dispatcher talks to the broker and the simulated fleet connects to the same broker as
separate MQTT clients, exactly as ``keyfob sim`` would from elsewhere.

Over MQTT the dispatcher keeps a persistent session under a stable client id,
``keyfob-dispatcher-<dispatcher_id>``, so that what vehicles publish while it restarts waits at
the broker. Stable matters twice: a new id would never get that backlog, and with several
dispatchers the broker goes on dealing the shared subscription's share to a member that is away
until that same id comes back (``docs/decisions.md``). Without ``dispatcher_id`` the id is the
host name and the lowest slot that no other dispatcher process on this host holds for the same
broker (a lock file that the system releases when the process dies), so a restarted process
takes its slot back. Slots are counted per broker: a dispatcher of another deployment (another
broker) starting on the host while this one restarts must not take its slot, or the restarted
process would open a new session and the old one, still a member of the shared subscription,
would go on being dealt a share of the results with nobody to read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path

from keyfob.config import Settings
from keyfob.link.memory import MemoryBroker
from keyfob.link.mqtt import MqttTransport
from keyfob.link.transport import Transport, parse_broker_url
from keyfob.link.wakeup import MqttWakeUpChannel, SimulatedSmsGateway, WakeUpChannel
from keyfob.notifications.handover_local import HandoverSender
from keyfob.remotes.dispatcher import Dispatcher, DispatcherOptions
from keyfob.remotes.lifecycle import Limits
from keyfob.runtime.context import AppContext, inline, running_check
from keyfob.runtime.sim_registry import RegistryFollower
from keyfob.sim.config import SimConfig
from keyfob.sim.fleet import Fleet, VehicleSpec, memory_fleet, run_fleet
from keyfob.sim.mqtt_fleet import run_standalone
from keyfob.store.nudge import EVENTS_STORED, EVENTS_TAKEN, Nudger, listening
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


SLOTS = 256


def _broker(settings: Settings) -> str:
    """A short name for the broker whose sessions the slots stand for (address, not account)."""
    if not settings.mqtt:
        return "none"
    address = parse_broker_url(settings.mqtt)
    return hashlib.sha256(f"{address.host}:{address.port}".encode()).hexdigest()[:12]


@contextmanager
def dispatcher_id(settings: Settings, lock_dir: Path | None = None) -> Iterator[str]:
    """``settings.dispatcher_id``, else ``<host>-<slot>`` held for as long as this lasts."""
    if settings.dispatcher_id:
        yield settings.dispatcher_id
        return
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
    where = lock_dir or Path(tempfile.gettempdir())
    broker = _broker(settings)
    for slot in range(SLOTS):
        lock = where / f"keyfob-dispatcher-{host}-{broker}-{slot}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            yield f"{host}-{slot}"
        finally:
            os.close(fd)  # releases the lock
        return
    raise RuntimeError(f"{SLOTS} dispatchers already run on {host}: set dispatcher_id")


def mqtt_link(settings: Settings, name: str) -> tuple[MqttTransport, WakeUpChannel]:
    """The dispatcher's link: a persistent session under ``keyfob-dispatcher-<name>``."""
    assert settings.mqtt is not None
    link = MqttTransport(
        settings.mqtt,
        client_id=f"keyfob-dispatcher-{name}",
        clean_session=False,
        keepalive=settings.mqtt_keepalive_s,
    )
    return link, MqttWakeUpChannel(link)


@asynccontextmanager
async def vehicle_role(ctx: AppContext) -> AsyncIterator[Dispatcher]:
    with contextlib.ExitStack() as held:
        name = held.enter_context(dispatcher_id(ctx.settings)) if ctx.settings.mqtt else ""
        async with _running(ctx, name) as dispatcher:
            yield dispatcher


@asynccontextmanager
async def _running(ctx: AppContext, name: str) -> AsyncIterator[Dispatcher]:
    settings = ctx.settings
    stop_fleet = asyncio.Event()
    fleet_task: asyncio.Task[object] | None = None
    specs = await simulated_specs(ctx) if settings.run_simulator else []
    follower = RegistryFollower(ctx.database, specs, every=settings.sim_registry_poll_s)
    link: Transport
    if settings.mqtt:
        link, wakeup = mqtt_link(settings, name)
        if settings.run_simulator:
            fleet_task = asyncio.create_task(
                run_standalone(
                    settings.mqtt,
                    specs,
                    settings.sim_seed,
                    settings.sim_speed,
                    stop_fleet,
                    config=SimConfig(speed=settings.sim_speed),
                    on_started=follower.follow,
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
        if settings.run_simulator:
            follower.follow(fleet)
    events_stored = Nudger(ctx.database, EVENTS_STORED)  # workers in other processes
    events_taken = Nudger(ctx.database, EVENTS_TAKEN)  # event streams, when no worker need be

    def recorded(taken: bool) -> None:
        if taken:
            events_taken.request()
            return
        ctx.wake_delivery()
        events_stored.request()  # workers and event streams elsewhere

    deliverer = ctx.deliverer
    handover: HandoverSender | None = None
    if deliverer is None and inline(settings) and ctx.database.file is not None:
        # A worker in another process on this file (serve's delivery child) takes the rows.
        lease = timedelta(seconds=settings.delivery.lease_s)
        deliverer = handover = HandoverSender(ctx.database.file, lease=lease)
    dispatcher = Dispatcher(
        ctx.database,
        link,
        wakeup,
        clock=ctx.clock,
        limits=limits(settings),
        options=dispatcher_options(settings, shared=bool(settings.mqtt)),
        metrics=ctx.remote_metrics,
        on_recorded=recorded,
        delivery=deliverer,
    )
    await dispatcher.start()
    ctx.wakers.append(dispatcher.wake)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher")
    ctx.checks["dispatcher"] = running_check(task, "the dispatcher")
    ctx.checks["broker"] = lambda: None if link.connected else "the vehicle link is down"
    try:
        async with listening(ctx.database, dispatcher.wake):  # remotes accepted elsewhere
            yield dispatcher
    finally:
        ctx.checks.pop("dispatcher", None)
        ctx.checks.pop("broker", None)
        ctx.wakers.remove(dispatcher.wake)
        dispatcher.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await events_stored.close()
        await events_taken.close()
        if handover is not None:
            handover.close()
        await link.stop()
        await follower.stop()
        stop_fleet.set()
        if fleet_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await fleet_task
