"""No remote stays pending when the broker or a dispatcher dies in the middle of a run.

Each test keeps a steady stream of remotes going (every car: post, wait for Done, post the
next) and breaks something halfway: the broker restarts, or the dispatcher process is killed
with SIGKILL and another one started. Every remote must end Done, the only failure allowed
being ``VehicleConnectionTimeout`` (a command or an answer lost with the broker, or a result
that arrived while no dispatcher listened), and the remotes posted once things are back must
succeed. A last test runs two dispatcher processes on one PostgreSQL database and checks at
the broker that each remote was sent exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import Extra, World, mqtt_world
from sqlalchemy import func, select

from keyfob.remotes.models import remotes
from keyfob.sim.config import SimConfig
from keyfob.store.engine import Database
from keyfob.vocabulary import Motorization

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

BODIES: list[dict[str, Any]] = [
    {"horn": {"state": "Activated"}},
    {"lights": {"on": True}},
    {"wakeUp": {}},
]
QUICK = {"command_timeout_s": 3.0, "wake_up_timeout_s": 3.0}
BUSY = SimConfig(speed=0, max_commands=10_000)
CARS = [Extra(f"car{i}", Motorization.THERMIC) for i in range(12)]


@dataclass
class Traffic:
    """Remotes in the order they were posted, and each one's final state."""

    posted: list[tuple[str, str]] = field(default_factory=list)  # (vehicle id, remote id)
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def drive(self, world: World, per_car: int, timeout: float = 40.0) -> None:
        async def car(vid: str) -> None:
            for index in range(per_car):
                remote_id = await world.post(vid, BODIES[index % len(BODIES)])
                self.posted.append((vid, remote_id))
                self.finished[remote_id] = await world.done(vid, remote_id, timeout)

        await asyncio.gather(*(car(world.vids[c.name]) for c in CARS))

    async def until_finished(self, count: int) -> None:
        while len(self.finished) < count:
            await asyncio.sleep(0.02)

    async def recovered(self, since: int, vids: set[str], timeout: float = 60.0) -> int:
        """Until every car in ``vids`` had a success among the remotes posted from index
        ``since`` on; returns how many had been posted then (the run is healthy from there)."""
        async with asyncio.timeout(timeout):
            while True:
                succeeded = {
                    vid
                    for vid, rid in self.posted[since:]
                    if self.finished.get(rid, {}).get("status") == "Success"
                }
                if succeeded >= vids:
                    return len(self.posted)
                await asyncio.sleep(0.02)

    def outcomes(self) -> Counter[str]:
        return Counter(
            f"{body['status']}/{body.get('failureCause', '-')}" for body in self.finished.values()
        )


async def nothing_active(world: World) -> int:
    async with world.db.read() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(remotes)
                .where(remotes.c.phase.in_(("queued", "waking", "sent")))
            )
        ).scalar_one()
    return int(count)


def check_ends(traffic: Traffic, after: int) -> None:
    """All ended; failures are only time-outs; everything posted from ``after`` on succeeded."""
    assert len(traffic.finished) == len(traffic.posted)
    outcomes = traffic.outcomes()
    allowed = {"Success/-", "Failed/VehicleConnectionTimeout"}
    assert set(outcomes) <= allowed, outcomes
    late = [traffic.finished[rid]["status"] for _, rid in traffic.posted[after:]]
    assert late, "the run ended before things were back"
    assert set(late) == {"Success"}, Counter(late)


async def online(world: World) -> None:
    """Until a dispatcher process has recorded every car online (it starts in seconds)."""
    await asyncio.gather(*(world.online(world.vids[c.name], timeout=60) for c in CARS))


async def test_a_broker_restart_mid_run_leaves_no_remote_pending(
    db: Database, tmp_path: Path
) -> None:
    per_car = 8
    async with mqtt_world(db, tmp_path, vehicle=QUICK, sim=BUSY, extras=CARS) as world:
        traffic = Traffic()
        run = asyncio.create_task(traffic.drive(world, per_car))
        await traffic.until_finished(len(CARS) * 2)
        await asyncio.to_thread(world.broker.restart)
        back = len(traffic.posted)
        after = await traffic.recovered(back, cars(world))
        await run
        left = await nothing_active(world)
    print(f"broker restarted after {back} posts; outcomes {dict(traffic.outcomes())}")
    assert left == 0
    check_ends(traffic, after)


def cars(world: World) -> set[str]:
    return {world.vids[c.name] for c in CARS}


class DispatcherProcess:
    """``keyfob dispatcher`` in its own process, as an operator would run it."""

    def __init__(self, world: World, log: Path) -> None:
        self.world = world
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KEYFOB_VEHICLE__COMMAND_TIMEOUT_S": str(QUICK["command_timeout_s"]),
            "KEYFOB_VEHICLE__WAKE_UP_TIMEOUT_S": str(QUICK["wake_up_timeout_s"]),
        }
        command = [sys.executable, "-m", "keyfob.cli.main", "dispatcher"]
        command += ["--db", self.world.db.url, "--mqtt", self.world.broker.url()]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def dispatchers(tmp_path: Path) -> Iterator[list[DispatcherProcess]]:
    started: list[DispatcherProcess] = []
    yield started
    for process in started:
        process.stop()


def spawn(world: World, started: list[DispatcherProcess], name: str) -> DispatcherProcess:
    process = DispatcherProcess(world, world.broker.directory / f"{name}.log")
    started.append(process)
    process.start()
    return process


async def test_a_killed_dispatcher_is_replaced_and_no_remote_stays_pending(
    db: Database, tmp_path: Path, dispatchers: list[DispatcherProcess]
) -> None:
    per_car = 8
    async with mqtt_world(
        db, tmp_path, vehicle=QUICK, sim=BUSY, extras=CARS, dispatching=False
    ) as world:
        first = spawn(world, dispatchers, "first")
        await online(world)
        traffic = Traffic()
        run = asyncio.create_task(traffic.drive(world, per_car))
        await traffic.until_finished(len(CARS) * 2)
        while len(traffic.posted) <= len(traffic.finished):
            await asyncio.sleep(0.001)  # kill while remotes are mid-lifecycle
        first.kill()
        killed_at = len(traffic.posted)
        in_flight = killed_at - len(traffic.finished)
        spawn(world, dispatchers, "second")
        after = await traffic.recovered(killed_at, cars(world))
        await run
        left = await nothing_active(world)
    print(f"dispatcher killed after {killed_at} posts; outcomes {dict(traffic.outcomes())}")
    assert in_flight > 0, "the kill must catch remotes in the middle of their lifecycle"
    assert left == 0
    check_ends(traffic, after)


@pytest.mark.postgres
async def test_two_dispatchers_on_postgresql_send_each_remote_once(
    pg: Database, tmp_path: Path, dispatchers: list[DispatcherProcess]
) -> None:
    per_car = 10
    async with mqtt_world(
        pg, tmp_path, vehicle=QUICK, sim=BUSY, extras=CARS, dispatching=False
    ) as world:
        spawn(world, dispatchers, "one")
        spawn(world, dispatchers, "two")
        await online(world)
        traffic = Traffic()
        await traffic.drive(world, per_car)
        await asyncio.sleep(0.3)  # a duplicate, if any, would be on the wire by now
        sent_events = await world.sent_to_vehicle_counts()
        command_ids = await world.command_ids()
        on_the_wire = Counter(world.spy.ids)
        alive = [d.process is not None and d.process.poll() is None for d in dispatchers]
    assert alive == [True, True]
    posted = [rid for _, rid in traffic.posted]
    assert len(posted) == len(CARS) * per_car
    assert traffic.outcomes() == {"Success/-": len(posted)}
    assert {sent_events[rid] for rid in posted} == {1}, "a remote was sent twice"
    assert sorted(on_the_wire.values()) == [1] * len(posted), "a command went out twice"
    assert set(on_the_wire) == {command_ids[rid] for rid in posted}
