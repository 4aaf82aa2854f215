"""Faults while remotes flow: the bar of issue 17 on the scaled-out and embedded shapes.

Each test keeps remotes coming at a modest rate over simulated cars, breaks one thing for a few
seconds (a link through a proxy, or a process), heals it, waits for every remote to end and
checks the bar: no remote stuck, no double Done, no command run twice, and no remote reported
``VehicleConnectionTimeout`` whose car answered (its result never reached the broker, or reached
it before the time-out or within one command deadline after the heal). The cars run in the test
process (what ``keyfob sim`` runs, so their memory of answered commands can be read), except
under a simulator kill, where a ``keyfob sim`` process is killed and only the broker tells.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from fault_embedded import embedded
from fault_scaled import ScaledOut, scaled_out

from faultproxy import FaultProxy, Mode
from keyfob.store.engine import Database

Fault = Callable[[ScaledOut, float], Awaitable[None]]


def through(proxy: Callable[[ScaledOut], FaultProxy], mode: Mode) -> Fault:
    async def fault(rig: ScaledOut, seconds: float) -> None:
        proxy(rig).set(mode)
        await asyncio.sleep(seconds)
        proxy(rig).set("pass")

    return fault


def killing(name: str) -> Fault:
    async def fault(rig: ScaledOut, seconds: float) -> None:
        process = getattr(rig, name)
        process.kill()
        await asyncio.sleep(seconds)
        process.start()

    return fault


async def slow_broker(rig: ScaledOut, seconds: float) -> None:
    rig.mqtt_proxy.delay = 0.3
    await asyncio.sleep(seconds)
    rig.mqtt_proxy.delay = 0.0


FAULTS: dict[str, Fault] = {
    "broker-blackhole": through(lambda rig: rig.mqtt_proxy, "blackhole"),
    "broker-reset": through(lambda rig: rig.mqtt_proxy, "reset"),
    "broker-latency": slow_broker,
    "sim-kill": killing("sim"),
    "dispatcher-kill": killing("dispatcher"),
    "postgres-reset": through(lambda rig: rig.pg_proxy, "reset"),
    "postgres-blackhole": through(lambda rig: rig.pg_proxy, "blackhole"),
}


@pytest.mark.slow
@pytest.mark.mqtt
@pytest.mark.postgres
@pytest.mark.parametrize("name", list(FAULTS))
async def test_scaled_out_fault_meets_the_bar(
    name: str, pg: Database, pg_url: str, tmp_path: Path
) -> None:
    async with scaled_out(pg, pg_url, tmp_path, sim_process=name == "sim-kill") as rig:
        bar = await rig.fault_during_flow(FAULTS[name])
    bar.check()


@pytest.mark.slow
async def test_embedded_serve_killed_and_restarted_meets_the_bar(tmp_path: Path) -> None:
    async with embedded(tmp_path) as rig:
        bar = await rig.kill_during_flow()
    bar.check()
