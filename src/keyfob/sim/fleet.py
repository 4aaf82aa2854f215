"""Runs many simulated vehicles over any transport: their connections, timers and wake-ups.

Each vehicle is a ``SimVehicle`` (pure) plus a slot here holding its broker link, one timer and
a lock. Everything that happens to a vehicle (a command, a timer, an SMS, a scenario knob, the
link coming up) runs under that lock and its outputs are carried out in order, so a vehicle's
ack, telemetry and result leave in the order the state machine produced them, while thousands
of vehicles proceed concurrently.

An awake vehicle holds one connection whose last will is its ``offline`` presence; a sleeping
vehicle holds none (it announces ``asleep``, retained, then disconnects gracefully) and comes
back only through the wake-up channel. Idle vehicles cost no task, only a timer handle.

A result the link cannot take (no connection, a publish that fails) goes back to the vehicle
(``SimVehicle.undelivered``), which keeps it in its outbox and sends it again, in order, once
connected; while it holds results, newer ones are not tried ahead of them. Other messages are
counted and dropped: presence and telemetry are superseded by the next ones, acks are
diagnostics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock, utcnow
from keyfob.link.memory import MemoryBroker
from keyfob.link.protocol import (
    Command,
    Presence,
    PresenceState,
    ProtocolError,
    Result,
    decode,
    encode,
)
from keyfob.link.topics import Channel, vehicle_topic
from keyfob.link.transport import AbortableTransport, Backoff, TransportError, Will
from keyfob.link.wakeup import SimulatedSmsGateway
from keyfob.sim.config import SimConfig
from keyfob.sim.outputs import Connect, Disconnect, Output, Send, Timer
from keyfob.sim.rng import Rng
from keyfob.sim.state import Mode
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """A vehicle to simulate; the credentials are its own broker account (MQTT mode)."""

    vin: str
    motorization: Motorization = Motorization.ELECTRIC
    username: str | None = None
    password: str | None = None


# Roughly the group's fleet mix; used when no registry says what each vehicle is.
_MIX: tuple[Motorization, ...] = (
    (Motorization.ELECTRIC,) * 10
    + (Motorization.HYBRID,) * 5
    + (Motorization.THERMIC,) * 4
    + (Motorization.HYDROGEN,)
)


def mixed_specs(vins: Iterable[str], *, seed: int = 0) -> list[VehicleSpec]:
    """Specs for ``vins`` with a reproducible mix of motorizations (no credentials)."""
    specs = []
    for vin in vins:
        draw = Rng(f"{seed}:{vin}:motorization").randrange(0, len(_MIX))
        specs.append(VehicleSpec(vin, _MIX[draw]))
    return specs


LinkFactory = Callable[[VehicleSpec, Will], AbortableTransport]
Knob = Callable[[SimVehicle, datetime], list[Output]]


class _Slot:
    __slots__ = (
        "connecting",
        "failures",
        "hello_due",
        "link",
        "lock",
        "removed",
        "spec",
        "timer",
        "vehicle",
    )

    def __init__(self, spec: VehicleSpec, vehicle: SimVehicle) -> None:
        self.spec = spec
        self.vehicle = vehicle
        self.lock = asyncio.Lock()
        self.link: AbortableTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.removed = False
        self.connecting = False  # inside _connect, under the lock
        self.hello_due = False  # the link came up while connecting
        self.failures = 0  # consecutive failed connection attempts


class Fleet:
    """Simulated vehicles on one transport; ``deliver_sms`` is their wake-up receiver."""

    def __init__(
        self,
        links: LinkFactory,
        *,
        seed: int = 0,
        config: SimConfig | None = None,
        clock: Clock = utcnow,
        sms: SimulatedSmsGateway | None = None,
        start_awake: bool = True,
        concurrency: int = 256,
    ) -> None:
        self._links = links
        self.seed = seed
        self.config = config or SimConfig()
        self._clock = clock
        self._sms = sms
        self._start_awake = start_awake
        self._concurrency = concurrency
        self._slots: dict[str, _Slot] = {}
        self._backoff = Backoff(initial=1.0, maximum=60.0)
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = {}

    @property
    def vins(self) -> list[str]:
        return list(self._slots)

    def vehicle(self, vin: str) -> SimVehicle:
        return self._slot(vin).vehicle

    def link(self, vin: str) -> AbortableTransport | None:
        return self._slot(vin).link

    async def add(self, spec: VehicleSpec) -> SimVehicle:
        """Start simulating ``spec`` (it connects at once when the fleet starts vehicles awake)."""
        if spec.vin in self._slots:
            raise KeyfobError(ErrorCode.ALREADY_EXISTS, f"vin: {spec.vin} is already simulated")
        vehicle = SimVehicle(
            spec.vin,
            spec.motorization,
            seed=self.seed,
            clock=self._clock,
            config=self.config,
            awake=self._start_awake,
        )
        slot = self._slots[spec.vin] = _Slot(spec, vehicle)
        if self._sms is not None:
            self._sms.register(spec.vin, self.deliver_sms)
        await self._event(slot, vehicle.start)
        return vehicle

    async def add_many(self, specs: Iterable[VehicleSpec]) -> None:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(spec: VehicleSpec) -> None:
            async with gate:
                await self.add(spec)

        await asyncio.gather(*(one(spec) for spec in specs))

    async def remove(self, vin: str) -> None:
        slot = self._slots.pop(vin)
        if self._sms is not None:
            self._sms.unregister(vin)
        await self._retire(slot)

    async def stop(self) -> None:
        """Announce every connected vehicle ``offline`` and disconnect it."""
        slots, self._slots = list(self._slots.values()), {}
        gate = asyncio.Semaphore(self._concurrency)

        async def one(slot: _Slot) -> None:
            async with gate:
                await self._retire(slot)

        await asyncio.gather(*(one(slot) for slot in slots))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def deliver_sms(self, vin: str) -> None:
        """A wake-up signal for ``vin`` (from the SMS gateway or its MQTT stand-in)."""
        slot = self._slots.get(vin)
        if slot is None:
            self._count("sms_for_unknown_vin")
            return
        self._spawn(self._event(slot, slot.vehicle.wake), f"sim-wake:{vin}")

    async def act(self, vin: str, knob: Knob) -> None:
        """Apply a scenario knob: ``fleet.act(vin, lambda v, now: v.open_door("Driver", now))``."""
        slot = self._slot(vin)
        await self._event(slot, partial(knob, slot.vehicle))

    # -- carrying out a vehicle's outputs --------------------------------------------------

    async def _event(self, slot: _Slot, step: Callable[[datetime], list[Output]]) -> None:
        async with slot.lock:
            if slot.removed:
                return
            outputs = step(self._clock())
            for output in outputs:
                await self._carry_out(slot, output)

    async def _carry_out(self, slot: _Slot, output: Output) -> None:
        match output:
            case Send(message=Result() as result):
                # Held results go first: a newer one is not tried ahead of them.
                if slot.vehicle.state.outbox or not await self._send(slot, output):
                    for then in slot.vehicle.undelivered(result, self._clock()):
                        await self._carry_out(slot, then)
            case Send():
                await self._send(slot, output)
            case Connect():
                await self._connect(slot)
            case Disconnect():
                await self._disconnect(slot, graceful=output.graceful)
            case Timer():
                self._arm(slot, output.at)

    async def _send(self, slot: _Slot, send: Send) -> bool:
        """Publish one message; whether the link took it."""
        link = slot.link
        if link is None or not link.connected:
            self._count("sends_without_link")
            return False
        topic = vehicle_topic(slot.spec.vin, send.channel)
        try:
            await link.publish(topic, encode(send.message), qos=1, retain=send.retain)
        except TransportError as exc:
            self._count("send_errors")
            log.warning("simulated %s could not publish: %s", slot.spec.vin, exc.message)
            return False
        return True

    async def _connect(self, slot: _Slot) -> None:
        vin = slot.spec.vin
        will = Will(
            vehicle_topic(vin, Channel.PRESENCE),
            encode(Presence(PresenceState.OFFLINE, self._clock())),
        )
        link = self._links(slot.spec, will)
        link.set_handler(partial(self._on_message, slot))
        link.set_connect_hook(partial(self._on_connected, slot))
        slot.connecting = True
        try:
            await link.start()
            await link.subscribe(vehicle_topic(vin, Channel.CMD))
        except TransportError as exc:
            self._count("connect_errors")
            log.warning("simulated %s could not connect: %s", vin, exc.message)
            self._retry_connect(slot)
            return
        finally:
            slot.connecting = False
        slot.link, slot.failures = link, 0
        if slot.hello_due:  # announce now, still under the lock: no second task, no waiting
            slot.hello_due = False
            for output in slot.vehicle.connected(self._clock()):
                await self._carry_out(slot, output)

    async def _disconnect(self, slot: _Slot, *, graceful: bool) -> None:
        link, slot.link = slot.link, None
        if link is None:
            return
        try:
            await (link.stop() if graceful else link.abort())
        except TransportError as exc:
            log.warning("simulated %s did not disconnect cleanly: %s", slot.spec.vin, exc.message)

    async def _retire(self, slot: _Slot) -> None:
        async with slot.lock:
            slot.removed = True
            if slot.timer is not None:
                slot.timer.cancel()
            if slot.link is not None and slot.link.connected:
                offline = Presence(PresenceState.OFFLINE, self._clock())
                await self._send(slot, Send(Channel.PRESENCE, offline, retain=True))
            await self._disconnect(slot, graceful=True)

    async def _on_message(self, slot: _Slot, topic: str, payload: bytes) -> None:
        try:
            command = decode(Command, payload)
        except ProtocolError as exc:
            self._count("unreadable_commands")
            log.info("simulated %s ignored a message on %s: %s", slot.spec.vin, topic, exc.message)
            return
        await self._event(slot, partial(slot.vehicle.handle_command, command))

    async def _on_connected(self, slot: _Slot) -> None:
        if slot.connecting:
            slot.hello_due = True
            return
        self._spawn(self._event(slot, slot.vehicle.connected), f"sim-online:{slot.spec.vin}")

    def _retry_connect(self, slot: _Slot) -> None:
        """Try again later, while the vehicle still wants to be online."""
        delay = self._backoff.delay(slot.failures, slot.vehicle.rng)
        slot.failures += 1

        def again(now: datetime) -> list[Output]:
            awake = slot.vehicle.mode is Mode.AWAKE and slot.link is None
            return [Connect()] if awake else []

        def fire() -> None:
            self._spawn(self._event(slot, again), f"sim-reconnect:{slot.spec.vin}")

        asyncio.get_running_loop().call_later(delay, fire)

    def _arm(self, slot: _Slot, at: datetime) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
        delay = max(0.0, (at - self._clock()).total_seconds())
        loop = asyncio.get_running_loop()
        slot.timer = loop.call_later(delay, self._fire, slot)

    def _fire(self, slot: _Slot) -> None:
        slot.timer = None
        self._spawn(self._event(slot, slot.vehicle.tick), f"sim-tick:{slot.spec.vin}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _slot(self, vin: str) -> _Slot:
        try:
            return self._slots[vin]
        except KeyError:
            raise KeyfobError(ErrorCode.VEHICLE_NOT_FOUND, f"vin: {vin} is not simulated") from None

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def memory_fleet(
    broker: MemoryBroker,
    sms: SimulatedSmsGateway,
    *,
    seed: int = 0,
    speed: float = 1.0,
    config: SimConfig | None = None,
    clock: Clock = utcnow,
) -> Fleet:
    """A fleet on the in-process broker, woken through the in-process SMS gateway.

    ``config`` wins over ``speed`` when both are given.
    """

    def link(spec: VehicleSpec, will: Will) -> AbortableTransport:
        return broker.connect(spec.vin, will=will)

    chosen = config or SimConfig(speed=speed)
    return Fleet(link, seed=seed, config=chosen, clock=clock, sms=sms)


async def run_fleet(fleet: Fleet, vehicles: Iterable[VehicleSpec], stop: asyncio.Event) -> None:
    """Simulate ``vehicles`` until ``stop`` is set (what ``keyfob serve`` embeds)."""
    try:
        await fleet.add_many(vehicles)
        await stop.wait()
    finally:
        await fleet.stop()
