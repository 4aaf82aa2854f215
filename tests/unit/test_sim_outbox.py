"""A simulated vehicle keeps the results it could not deliver and sends them, in order, later."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keyfob.errors import KeyfobError
from keyfob.kit.clock import FakeClock
from keyfob.link.protocol import (
    Action,
    Command,
    Outcome,
    Presence,
    PresenceState,
    Result,
    new_command,
)
from keyfob.link.topics import Channel
from keyfob.sim.config import SimConfig
from keyfob.sim.outbox import Outbox
from keyfob.sim.outputs import Disconnect, Output, Send
from keyfob.sim.state import Mode
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization

VIN = "VF3OUTBOX00000001"
BODIES: list[tuple[Action, dict[str, Any]]] = [
    (Action.DOOR, {"state": "Unlocked"}),
    (Action.HORN, {"state": "Activated"}),
    (Action.LIGHTS, {"on": True, "duration": 10}),
]


def car(**settings: Any) -> tuple[SimVehicle, FakeClock]:
    clock = FakeClock()
    vehicle = SimVehicle(
        VIN, Motorization.ELECTRIC, clock=clock, config=SimConfig(speed=0, **settings)
    )
    vehicle.connected(clock())
    return vehicle, clock


def command(clock: FakeClock, n: int, ttl: float = 60) -> Command:
    action, params = BODIES[n % len(BODIES)]
    return new_command(action, params, now=clock(), ttl=timedelta(seconds=ttl))


def results(outputs: list[Output]) -> list[Result]:
    return [o.message for o in outputs if isinstance(o, Send) and o.channel is Channel.RESULT]


def test_results_finished_while_one_is_held_queue_behind_it_and_leave_in_order() -> None:
    vehicle, clock = car()
    first = command(clock, 0)
    [sent] = results(vehicle.handle_command(first, clock()))
    vehicle.undelivered(sent, clock())  # the link could not take it
    later = [command(clock, n) for n in (1, 2)]
    for each in later:
        assert results(vehicle.handle_command(each, clock())) == []  # not ahead of the first
    back = vehicle.connected(clock())
    assert [r.id for r in results(back)] == [first.id, later[0].id, later[1].id]
    sends = [o for o in back if isinstance(o, Send)]
    assert [o.channel for o in sends[:2]] == [Channel.PRESENCE, Channel.STATUS]
    assert sends[0].message == Presence(PresenceState.ONLINE, clock())
    assert results(vehicle.connected(clock())) == []  # sent once, not kept afterwards


def test_held_results_are_tried_again_while_awake_and_keep_the_car_awake() -> None:
    vehicle, clock = car(outbox_retry=5, awake_window=3, awake_extension=0, awake_cap=3)
    [sent] = results(vehicle.handle_command(command(clock, 1), clock()))
    vehicle.undelivered(sent, clock())
    clock.advance(4)  # the awake window is over, but a result is owed
    outputs = vehicle.tick(clock())
    assert results(outputs) == []
    assert Disconnect(graceful=True) not in outputs
    assert vehicle.mode is Mode.AWAKE
    clock.advance(1)
    assert results(vehicle.tick(clock())) == [sent]
    clock.advance(1)
    assert Disconnect(graceful=True) in vehicle.tick(clock())  # delivered: now it may sleep


def test_a_result_past_its_command_deadline_is_still_sent() -> None:
    vehicle, clock = car(outbox_retry=3600)
    late = command(clock, 0, ttl=30)
    [sent] = results(vehicle.handle_command(late, clock()))
    vehicle.undelivered(sent, clock())
    clock.advance(600)
    assert late.expired(clock())
    assert [(r.id, r.outcome) for r in results(vehicle.connected(clock()))] == [
        (late.id, Outcome.SUCCESS)
    ]


def test_a_repeated_command_does_not_overtake_or_double_a_held_result() -> None:
    vehicle, clock = car()
    first, second = command(clock, 0), command(clock, 1)
    [sent] = results(vehicle.handle_command(first, clock()))
    vehicle.undelivered(sent, clock())
    vehicle.handle_command(second, clock())
    assert results(vehicle.handle_command(second, clock())) == []  # QoS 1 redelivery
    assert [r.id for r in results(vehicle.connected(clock()))] == [first.id, second.id]


def test_at_the_bound_the_oldest_result_is_dropped_and_counted() -> None:
    vehicle, clock = car(outbox_size=2, max_commands=100)
    commands = [command(clock, n) for n in range(3)]
    for each in commands:
        for result in results(vehicle.handle_command(each, clock())):
            vehicle.undelivered(result, clock())
    assert len(vehicle.state.outbox) == 2
    assert vehicle.counters["results_dropped_at_bound"] == 1
    assert [r.id for r in results(vehicle.connected(clock()))] == [c.id for c in commands[1:]]


def test_a_result_undelivered_twice_is_held_once() -> None:
    vehicle, clock = car()
    [sent] = results(vehicle.handle_command(command(clock, 0), clock()))
    vehicle.undelivered(sent, clock())
    vehicle.undelivered(sent, clock())
    assert results(vehicle.connected(clock())) == [sent]


def test_the_outbox_is_a_bounded_fifo_by_command_id() -> None:
    clock = FakeClock()
    box = Outbox(2)
    made = [Result(f"c{n}", Outcome.SUCCESS, clock()) for n in range(3)]
    assert box.keep(made[0]) is None
    assert box.keep(made[0]) is None  # already held: no second copy
    assert box.keep(made[1]) is None
    assert box.keep(made[2]) == made[0]
    assert (len(box), box.dropped, "c1" in box) == (2, 1, True)
    assert box.drain() == made[1:]
    assert not box
    with pytest.raises(ValueError, match="at least one"):
        Outbox(0)


def test_outbox_settings_are_checked() -> None:
    assert SimConfig(outbox_size=1, outbox_retry=0.5).outbox_size == 1
    with pytest.raises(KeyfobError, match="outbox_size: out of range"):
        SimConfig(outbox_size=0)
    with pytest.raises(KeyfobError, match="outbox_retry: out of range"):
        SimConfig(outbox_retry=0)
