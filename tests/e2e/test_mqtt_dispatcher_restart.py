"""A car's answer published while the only dispatcher is dead reaches it when it restarts.

``keyfob dispatcher`` runs in its own process against a private Mosquitto and is killed with
SIGKILL (no DISCONNECT: the broker only sees the connection vanish) right after it sent a
command. The car finishes the command and publishes its result while no dispatcher is
connected; a new process started under the same ``dispatcher_id`` resumes the persistent
session, receives the queued result, and the remote ends ``Success``, not with a time-out,
also when the command's deadline passed while no dispatcher ran.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_support import World, mqtt_world

from keyfob.sim.config import SimConfig
from keyfob.store.engine import Database

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

COMMAND_TIMEOUT_S = 20.0
SLOW_CAR = SimConfig(speed=1.0)  # a horn takes the car 2 s


class Dispatchers:
    """``keyfob dispatcher`` processes, each started with the same ``dispatcher_id``."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.command_timeout_s = COMMAND_TIMEOUT_S

    def start(self, world: World, log: Path) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "KEYFOB_DISPATCHER_ID": "restart-test",
            "KEYFOB_VEHICLE__COMMAND_TIMEOUT_S": str(self.command_timeout_s),
        }
        command = [sys.executable, "-m", "keyfob.cli.main", "dispatcher"]
        command += ["--db", world.db.url, "--mqtt", world.broker.url()]
        with log.open("ab") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)


@pytest.fixture
def dispatchers() -> Iterator[Dispatchers]:
    started = Dispatchers()
    yield started
    started.stop()


@pytest.mark.parametrize(
    ("command_timeout_s", "dead_s"),
    [
        pytest.param(COMMAND_TIMEOUT_S, 3.0, id="back-before-the-deadline"),
        # The deadline passes while no dispatcher runs: the restarted one must store what the
        # broker kept for it before it judges the deadline (it waits one command time-out).
        pytest.param(3.0, 4.0, id="back-after-the-deadline"),
    ],
)
async def test_a_result_published_while_the_dispatcher_is_dead_is_recorded_after_restart(
    db: Database,
    tmp_path: Path,
    dispatchers: Dispatchers,
    command_timeout_s: float,
    dead_s: float,
) -> None:
    dispatchers.command_timeout_s = command_timeout_s
    async with mqtt_world(
        db,
        tmp_path,
        vehicle={"command_timeout_s": command_timeout_s},
        sim=SLOW_CAR,
        dispatching=False,
    ) as world:
        vid = world.tenant.vehicles["Thermic"].id
        first = dispatchers.start(world, tmp_path / "first.log")
        await world.online(vid, timeout=60)
        remote_id = await world.post(vid, {"horn": {"state": "Activated"}})
        command_id = (await world.command_ids()).get(remote_id)
        async with asyncio.timeout(10):
            while command_id is None or command_id not in world.spy.ids:
                await asyncio.sleep(0.02)
                command_id = (await world.command_ids()).get(remote_id)
        os.kill(first.pid, signal.SIGKILL)  # the car has the command; its horn takes 2 s
        first.wait(timeout=10)
        await asyncio.sleep(dead_s)  # the car answers meanwhile, to no dispatcher
        assert (await world.read(vid, remote_id))["status"] == "SentToVehicle"
        dispatchers.start(world, tmp_path / "second.log")
        done = await world.done(vid, remote_id, timeout=command_timeout_s + 10)
    assert done["status"] == "Success", done
