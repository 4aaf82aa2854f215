"""The scaled-out shape under faults: ``keyfob serve`` (API only), ``keyfob dispatcher`` and
``keyfob sim``, each its own process, on a private Mosquitto and a private PostgreSQL database.

Every process reaches the broker through one proxy and the database through another, so a test
can reset, black-hole or slow either link, or kill a process, while remotes flow. The test
watches from outside: it reads the database directly and spies on the broker. The cars run in
the test process (what ``keyfob sim`` runs, so their memory of answered commands can be read),
except when the simulator process itself is the one killed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fault_bar import Bar, judge, settled
from fault_flow import Flow, ResultSpy, demo_flow
from fault_links import FaultProxyWithLatency, behind
from fault_processes import COMMAND_TIMEOUT_S, Process, base_env, free_port, healthy
from sqlalchemy import func, select

from faultproxy import FaultProxy
from keyfob.kit.clock import utcnow
from keyfob.sim.fleet import Fleet, VehicleSpec
from keyfob.sim.mqtt_fleet import run_standalone
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicle_states
from keyfob.vehicles.service import all_vehicles
from keyfob.vocabulary import Motorization
from mosquitto import Mosquitto


@dataclass
class ScaledOut:
    """``keyfob serve`` (API), ``dispatcher`` and ``sim`` on a private broker and database."""

    db: Database
    broker: Mosquitto
    mqtt_proxy: FaultProxyWithLatency
    pg_proxy: FaultProxy
    serve: Process
    dispatcher: Process
    sim: Process | None  # None: the cars run in the test process, in ``fleet``
    fleet: Fleet | None
    spy: ResultSpy
    flow: Flow

    def processes(self) -> list[Process]:
        return [p for p in (self.serve, self.dispatcher, self.sim) if p is not None]

    async def online(self, timeout: float = 30.0) -> None:
        """Until a dispatcher has heard every car's presence."""
        async with asyncio.timeout(timeout):
            while True:
                async with self.db.read() as conn:
                    count = (
                        await conn.execute(
                            select(func.count())
                            .select_from(vehicle_states)
                            .where(vehicle_states.c.presence != "unknown")
                        )
                    ).scalar_one()
                if count >= len(self.flow.vids):
                    return
                await asyncio.sleep(0.2)

    async def fault_during_flow(
        self, fault: Any, *, seconds: float = 3.0, rate: float = 15.0, total: float = 10.0
    ) -> Bar:
        """Remotes flow for ``total`` seconds; ``fault`` (an async callable taking the rig and
        the fault's length) runs from a third of the way in. Then wait and judge."""
        flow = asyncio.create_task(self.flow.run(total, rate))
        await asyncio.sleep(total / 3)
        await fault(self, seconds)
        healed = utcnow()
        await flow
        accepted = set(self.flow.accepted)
        await settled(self.db, accepted, timeout=4 * COMMAND_TIMEOUT_S + 20)
        await asyncio.sleep(0.5)
        answered = None
        if self.fleet is not None:
            fleet = self.fleet
            answered = {c for vin in fleet.vins for c in fleet.vehicle(vin).state.answered}
        bar = await judge(self.db, accepted, self.spy, answered, healed)
        print(
            f"{len(accepted)} remotes; answers {dict(self.flow.answers)}; "
            f"outcomes {dict(bar.outcomes)}; late time-outs {bar.late_time_outs}"
        )
        return bar


@contextlib.asynccontextmanager
async def scaled_out(
    pg: Database, pg_url: str, workdir: Path, cars: int = 30, *, sim_process: bool = False
) -> AsyncIterator[ScaledOut]:
    broker = Mosquitto(workdir)
    broker.start()
    stack = contextlib.AsyncExitStack()
    async with stack:
        stack.callback(broker.stop)
        mqtt_proxy = FaultProxyWithLatency("127.0.0.1", broker.port)
        await mqtt_proxy.start()
        stack.push_async_callback(mqtt_proxy.close)
        target = urlsplit(pg_url)
        pg_proxy = await FaultProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
        stack.push_async_callback(pg_proxy.close)
        mqtt_url, db_url = behind(broker.url(), mqtt_proxy), behind(pg_url, pg_proxy)
        port = free_port()
        demo = workdir / "demo.json"
        serve = Process(
            "serve",
            [
                "serve",
                "--port",
                str(port),
                "--db",
                db_url,
                "--mqtt",
                mqtt_url,
                "--vehicles",
                str(cars),
                "--credentials-file",
                str(demo),
            ],
            base_env(
                KEYFOB_RUN_DISPATCHER="false",
                KEYFOB_RUN_WORKER="false",
                KEYFOB_RUN_SIMULATOR="false",
            ),
            workdir,
        )
        dispatcher = Process(
            "dispatcher", ["dispatcher", "--db", db_url, "--mqtt", mqtt_url], base_env(), workdir
        )
        sim = Process(
            "sim", ["sim", "--mqtt", mqtt_url, "--db", pg_url, "--speed", "0"], base_env(), workdir
        )
        spy = ResultSpy(broker)
        await spy.start()
        stack.push_async_callback(spy.stop)
        serve.start()
        stack.callback(serve.stop)
        base = f"http://127.0.0.1:{port}"
        await healthy(base, serve)
        flow = await demo_flow(base, demo)
        dispatcher.start()
        stack.callback(dispatcher.stop)
        fleet = None
        if sim_process:
            sim.start()
            stack.callback(sim.stop)
        else:
            fleet = await _cars_here(pg, mqtt_url, stack)
        rig = ScaledOut(
            pg,
            broker,
            mqtt_proxy,
            pg_proxy,
            serve,
            dispatcher,
            sim if sim_process else None,
            fleet,
            spy,
            flow,
        )
        try:
            await rig.online()
            yield rig
        except BaseException:
            for process in rig.processes():
                print(f"--- {process.name} log ---\n{process.tail()}")
            raise


async def _cars_here(db: Database, mqtt_url: str, stack: contextlib.AsyncExitStack) -> Fleet:
    """What ``keyfob sim --db`` runs, in this process, so that the test can read each car's
    memory of the commands it answered."""
    async with db.read() as conn:
        found = await all_vehicles(conn)
    specs = [VehicleSpec(v.vin, Motorization(v.motorization)) for v in found if v.simulated]
    started: asyncio.Future[Fleet] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_standalone(mqtt_url, specs, 7, 0.0, stop, on_started=started.set_result)
    )

    async def halt() -> None:
        stop.set()
        await task

    stack.push_async_callback(halt)
    async with asyncio.timeout(30):
        return await asyncio.shield(started)
