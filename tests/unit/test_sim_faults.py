"""Seeded fault injection: each fault does what it says, and a seed replays a run exactly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keyfob.errors import KeyfobError
from keyfob.kit.clock import FakeClock
from keyfob.link.protocol import Action, Outcome, WireCause, new_command
from keyfob.link.topics import Channel
from keyfob.sim.config import SimConfig
from keyfob.sim.faults import FaultPlan, roll
from keyfob.sim.fleet import mixed_specs
from keyfob.sim.outputs import Disconnect, Output, Send
from keyfob.sim.rng import Rng
from keyfob.sim.vehicle import SimVehicle
from keyfob.vocabulary import Motorization

VIN = "VF3FAULTY00000001"


def car(plan: FaultPlan, seed: int = 1, vin: str = VIN) -> SimVehicle:
    clock = FakeClock()
    config = SimConfig(speed=0, faults=plan, max_commands=1000)
    vehicle = SimVehicle(vin, Motorization.ELECTRIC, seed=seed, clock=clock, config=config)
    vehicle.connected(clock())
    return vehicle


def later(vehicle: SimVehicle, seconds: float) -> None:
    """Move the vehicle's fake clock forward."""
    clock = vehicle.clock
    assert isinstance(clock, FakeClock)
    clock.advance(seconds)


def unlock(vehicle: SimVehicle, state: str = "Unlocked") -> list[Output]:
    now = vehicle.clock()
    command = new_command(Action.DOOR, {"state": state}, now=now, ttl=timedelta(minutes=5))
    return vehicle.handle_command(command, now)


def sends(outputs: list[Output], channel: Channel) -> list[Any]:
    return [o.message for o in outputs if isinstance(o, Send) and o.channel is channel]


def test_a_dropped_command_is_never_acknowledged_nor_executed() -> None:
    vehicle = car(FaultPlan(drop_command=1.0))
    assert [o for o in unlock(vehicle) if isinstance(o, Send)] == []
    assert vehicle.state.locked


def test_a_dropped_result_still_changes_the_car() -> None:
    vehicle = car(FaultPlan(drop_result=1.0))
    outputs = unlock(vehicle)
    assert len(sends(outputs, Channel.ACK)) == 2
    assert sends(outputs, Channel.RESULT) == []
    assert not vehicle.state.locked
    assert vehicle.counters["dropped_results"] == 1


def test_a_delayed_answer_arrives_after_the_delay() -> None:
    vehicle = car(FaultPlan(delay=1.0, delay_seconds=(7.0, 7.0)))
    assert sends(unlock(vehicle), Channel.RESULT) == []
    later(vehicle, 6.9)
    assert sends(vehicle.tick(vehicle.clock()), Channel.RESULT) == []
    later(vehicle, 0.1)
    assert sends(vehicle.tick(vehicle.clock()), Channel.RESULT)[0].outcome is Outcome.SUCCESS


def test_going_offline_loses_the_command_and_triggers_the_will() -> None:
    vehicle = car(FaultPlan(offline=1.0, offline_seconds=(30.0, 30.0)))
    outputs = unlock(vehicle)
    assert Disconnect(graceful=False) in outputs
    assert sends(outputs, Channel.ACK) == []
    assert vehicle.state.locked


def test_an_error_answer_replaces_a_success() -> None:
    vehicle = car(FaultPlan(vehicle_error=1.0))
    assert sends(unlock(vehicle), Channel.RESULT)[0].cause is WireCause.VEHICLE_ERROR
    assert vehicle.state.locked
    vehicle.state.locked = False
    lock = sends(unlock(vehicle, "Locked"), Channel.RESULT)[0]
    assert lock.cause is WireCause.ERROR_OR_KEY_INSIDE


def outcomes(vehicle: SimVehicle, count: int) -> list[object]:
    """What happened to each of ``count`` alternating lock / unlock commands."""
    answers: list[object] = []
    for index in range(count):
        outputs = unlock(vehicle, "Locked" if index % 2 else "Unlocked")
        results = sends(outputs, Channel.RESULT)
        if Disconnect(graceful=False) in outputs:
            answers.append("offline")
            later(vehicle, 1000)
            vehicle.tick(vehicle.clock())
            vehicle.connected(vehicle.clock())
        elif not results:
            answers.append("dropped")
        else:
            answers.append(results[0].cause or results[0].outcome)
    return answers


MIXED = FaultPlan(drop_command=0.1, drop_result=0.1, offline=0.05, vehicle_error=0.2)


def test_the_same_seed_replays_the_same_faults() -> None:
    first = outcomes(car(MIXED, seed=42), 60)
    assert outcomes(car(MIXED, seed=42), 60) == first
    assert outcomes(car(MIXED, seed=43), 60) != first
    assert {"dropped", WireCause.VEHICLE_ERROR, Outcome.SUCCESS} <= set(first)


def test_rolls_do_not_shift_when_one_probability_changes() -> None:
    calm = FaultPlan(delay=0.0, vehicle_error=0.3)
    slow = FaultPlan(delay=0.5, vehicle_error=0.3)
    rng_a, rng_b = Rng(5), Rng(5)
    errors_calm = [roll(calm, rng_a).vehicle_error for _ in range(200)]
    errors_slow = [roll(slow, rng_b).vehicle_error for _ in range(200)]
    assert errors_calm == errors_slow


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ({"drop_command": 1.5}, "faults.drop_command"),
        ({"vehicle_error": -0.1}, "faults.vehicle_error"),
        ({"delay_seconds": (5.0, 1.0)}, "faults.delay_seconds"),
    ],
)
def test_impossible_plans_are_refused(plan: dict[str, Any], field: str) -> None:
    with pytest.raises(KeyfobError, match=field):
        FaultPlan(**plan)


def test_impossible_configs_are_refused() -> None:
    with pytest.raises(KeyfobError, match="speed"):
        SimConfig(speed=-1)
    with pytest.raises(KeyfobError, match="awake_cap"):
        SimConfig(awake_window=600, awake_cap=300)


def test_the_generator_is_reproducible_and_spread() -> None:
    draws = [Rng("seed").random() for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    rng = Rng(7)
    values = [rng.random() for _ in range(4000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.45 < sum(values) / len(values) < 0.55
    assert len({int(v * 10) for v in values}) == 10
    assert all(3 <= rng.randrange(3, 6) < 6 for _ in range(200))
    assert Rng(1).hex_id() != Rng(2).hex_id()
    assert len(Rng(1).hex_id()) == 32


def test_generated_fleets_mix_motorizations_reproducibly() -> None:
    vins = [f"VF3MIXED{n:09d}" for n in range(400)]
    first = mixed_specs(vins, seed=3)
    assert first == mixed_specs(vins, seed=3)
    counts = {m: sum(1 for s in first if s.motorization is m) for m in Motorization}
    assert (
        counts[Motorization.ELECTRIC] > counts[Motorization.HYBRID] > counts[Motorization.HYDROGEN]
    )
    assert all(count > 0 for count in counts.values())
    assert [s.vin for s in first] == vins
