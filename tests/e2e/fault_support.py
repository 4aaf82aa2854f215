"""Fault tests' rig: real keyfob processes behind switchable proxies, a flow of remotes, the bar.

The scaled-out shape is what an operator runs: ``keyfob serve`` (API only), ``keyfob
dispatcher`` and ``keyfob sim``, each its own process, on a private Mosquitto and a private
PostgreSQL database. Every process reaches the broker through one ``FaultProxy`` and the
database through another, so a test can reset or black-hole either link while remotes flow.
The test itself watches from outside the proxies: it reads the database directly, and a
result spy subscribed to every vehicle's result topic on the broker notes when each result
reached the broker and how many distinct results each command id got (a car that runs a
command again answers with a new ``at``; one that repeats its answer sends the same one).

The bar (``Bar``) is the one a partner cares about: no remote stuck, no remote with two Done
events, no command run twice, no result of an unknown command (a remote sent twice under two
ids), and no remote reported ``VehicleConnectionTimeout`` although its car's result was on the
broker in time for the platform to take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import func, select

from faultproxy import FaultProxy
from keyfob.kit.clock import utcnow
from keyfob.link.protocol import ProtocolError, Result, decode
from keyfob.link.topics import VEHICLES, Channel
from keyfob.link.transport import parse_broker_url
from keyfob.remotes.models import remote_events, remotes
from keyfob.sim.fleet import Fleet, VehicleSpec
from keyfob.sim.mqtt_fleet import GmqttLink, run_standalone
from keyfob.store.engine import Database
from keyfob.vehicles.models import vehicle_states
from keyfob.vehicles.service import all_vehicles
from keyfob.vocabulary import Motorization
from mosquitto import Mosquitto

COMMAND_TIMEOUT_S = 4.0
BODIES: list[dict[str, Any]] = [
    {"horn": {"state": "Activated"}},
    {"lights": {"on": True}},
    {"wakeUp": {}},
]
# A result that reached the broker this long before the deadline must be taken: less is a race
# the platform may lose honestly (the deadline fired while the message was on its way).
MARGIN = timedelta(seconds=0.5)


class FaultProxyWithLatency(FaultProxy):
    """``FaultProxy`` plus latency: while ``delay`` is positive each chunk waits that long
    (in order, as on a slow link; the delays of one burst overlap)."""

    delay = 0.0

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        late = loop.create_task(super()._pump(_Delayed(queue), sink, client))  # type: ignore[arg-type]
        try:
            while data := await source.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            queue.put_nowait((0.0, b""))
            await asyncio.shield(late)


class _Delayed:
    """A reader for ``FaultProxy._pump`` that hands out each chunk once it is due."""

    def __init__(self, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
        self.queue = queue

    async def read(self, _: int) -> bytes:
        due, data = await self.queue.get()
        await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def base_env(**extra: str) -> dict[str, str]:
    """Short deadlines and no budgets in the way: a lost answer shows in seconds."""
    return {
        **os.environ,
        "KEYFOB_SIM_SPEED": "0",
        "KEYFOB_VEHICLE__COMMAND_TIMEOUT_S": str(COMMAND_TIMEOUT_S),
        "KEYFOB_VEHICLE__WAKE_UP_TIMEOUT_S": str(COMMAND_TIMEOUT_S),
        "KEYFOB_VEHICLE__WAKE_UP_QUOTA_PER_MONTH": "100000",
        "KEYFOB_VEHICLE__SHORT_WINDOW_WAKE_UPS": "100000",
        "KEYFOB_RATE_LIMIT__BURST": "100000",
        **extra,
    }


class Process:
    """One ``keyfob`` command in its own process group; killed by its pid, never by name."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "keyfob.cli.main", *args]
        self.env = env
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """At the end of a test: SIGKILL (a graceful stop is not what is under test here)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class ResultSpy:
    """Every result on the broker, per command id: when it first arrived and each ``at``."""

    def __init__(self, broker: Mosquitto) -> None:
        self.link = GmqttLink(
            parse_broker_url(broker.url()), client_id="fault-spy", persistent=False
        )
        self.first: dict[str, datetime] = {}
        self.runs: dict[str, set[datetime]] = {}
        self.link.set_handler(self._on_result)

    async def _on_result(self, topic: str, payload: bytes) -> None:
        with contextlib.suppress(ProtocolError):
            result = decode(Result, payload)
            self.first.setdefault(result.id, utcnow())
            self.runs.setdefault(result.id, set()).add(result.at)

    @classmethod
    def nothing_seen(cls) -> ResultSpy:
        """For a shape without a broker: no result is visible from outside."""
        spy = cls.__new__(cls)
        spy.first, spy.runs = {}, {}
        return spy

    async def start(self) -> None:
        await self.link.start()
        await self.link.subscribe(f"{VEHICLES}/+/{Channel.RESULT.value}")

    async def stop(self) -> None:
        await self.link.stop()


@dataclass
class Flow:
    """Remotes posted at ``rate`` per second over the cars, as a careful client: each with its
    own Idempotency-Key, posted again (same key) after a transport error or a 5xx."""

    base: str
    vids: list[str]
    callback_id: str
    auth: tuple[str, str]
    client_id: str
    accepted: dict[str, str] = field(default_factory=dict)  # remote id → vehicle id
    answers: Counter[str] = field(default_factory=Counter)

    async def run(self, seconds: float, rate: float) -> None:
        async with httpx.AsyncClient(
            auth=self.auth, params={"client_id": self.client_id}, timeout=5
        ) as client:
            posts = []
            for index in range(int(seconds * rate)):
                posts.append(asyncio.create_task(self._one(client, index)))
                await asyncio.sleep(1 / rate)
            async with asyncio.timeout(60):
                await asyncio.gather(*posts)

    async def _one(self, client: httpx.AsyncClient, index: int) -> None:
        vid = self.vids[index % len(self.vids)]
        url = f"{self.base}/vehicles/{vid}/callbacks/{self.callback_id}/remotes"
        key = f"fault-{index}"
        while True:
            try:
                answer = await client.post(
                    url,
                    json=BODIES[index // len(self.vids) % len(BODIES)],
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError as error:
                self.answers[type(error).__name__] += 1
                await asyncio.sleep(0.2)
                continue
            self.answers[str(answer.status_code)] += 1
            if answer.status_code == 202:
                self.accepted[answer.json()["remoteActionId"]] = vid
                return
            assert answer.status_code >= 500, answer.text  # only trouble may refuse a remote
            await asyncio.sleep(0.2)


@dataclass
class Bar:
    """What the platform did with the accepted remotes, judged against the results seen."""

    stuck: list[str]
    double_done: list[str]
    run_twice: list[str]
    unknown_results: list[str]
    acted_but_timed_out: list[str]
    outcomes: Counter[str]
    late_time_outs: int  # time-outs whose result came after the deadline (allowed)

    def check(self) -> None:
        assert self.stuck == [], f"stuck remotes {self.stuck}; {self}"
        assert self.double_done == [], f"two Done events: {self.double_done}; {self}"
        assert self.run_twice == [], f"commands run twice: {self.run_twice}; {self}"
        assert self.unknown_results == [], f"results of unknown commands; {self}"
        assert self.acted_but_timed_out == [], f"car acted, reported time-out; {self}"


async def settled(db: Database, remote_ids: set[str], timeout: float) -> None:
    """Until every remote in ``remote_ids`` is done (or ``timeout`` passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with db.read() as conn:
            active = (
                await conn.execute(
                    select(func.count())
                    .select_from(remotes)
                    .where(remotes.c.id.in_(remote_ids), remotes.c.phase != "done")
                )
            ).scalar_one()
        if active == 0:
            return
        await asyncio.sleep(0.2)


async def judge(
    db: Database,
    accepted: set[str],
    spy: ResultSpy,
    answered: set[str] | None = None,
    healed: datetime | None = None,
) -> Bar:
    """``answered``: the command ids the cars themselves answered, when the test can see the
    cars; then a time-out for a command the car answered fails the bar even if its result
    never reached the broker (without it, only results seen on the broker tell). A result
    that reached the broker within one command deadline after ``healed`` (the end of the
    fault) must have been taken too: the platform's deadline may not run out on a link that
    was down."""
    deadline = timedelta(seconds=COMMAND_TIMEOUT_S)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    remotes.c.id,
                    remotes.c.phase,
                    remotes.c.status,
                    remotes.c.failure_cause,
                    remotes.c.command_id,
                    remotes.c.deadline_at,
                )
            )
        ).all()
        dones = (
            await conn.execute(
                select(remote_events.c.remote_id, remote_events.c.created_at).where(
                    remote_events.c.type == "Done"
                )
            )
        ).all()
    done_at: dict[str, datetime] = {}
    done_count: Counter[str] = Counter()
    for remote_id, created in dones:
        done_count[remote_id] += 1
        done_at.setdefault(remote_id, created)
    by_command = {r.command_id: r for r in rows if r.command_id}
    acted, late = [], 0
    for row in rows:
        if (row.status, row.failure_cause) != ("Failed", "VehicleConnectionTimeout"):
            continue
        seen = spy.first.get(row.command_id or "")
        ended = done_at.get(row.id)
        if seen is not None and ended is not None and seen <= ended - MARGIN:
            acted.append(f"{row.id} (result on the broker {ended - seen} before the time-out)")
        elif answered is not None and row.command_id in answered and seen is None:
            acted.append(f"{row.id} (the car answered; its result never reached the broker)")
        elif seen is not None and healed is not None and seen <= healed + deadline:
            acted.append(f"{row.id} (result on the broker {seen - healed} after the heal)")
        elif seen is not None:
            late += 1
    return Bar(
        stuck=sorted(accepted - {r.id for r in rows if r.phase == "done"}),
        double_done=sorted(r for r, n in done_count.items() if n > 1),
        run_twice=sorted(c for c, ats in spy.runs.items() if len(ats) > 1),
        unknown_results=sorted(set(spy.runs) - set(by_command)),
        acted_but_timed_out=acted,
        outcomes=Counter(f"{r.status}/{r.failure_cause or '-'}" for r in rows),
        late_time_outs=late,
    )


def behind(url: str, proxy: FaultProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
        mqtt_proxy = await FaultProxyWithLatency("127.0.0.1", broker.port).start()
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
        await _healthy(base, serve)
        flow = await _flow(base, demo)
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


async def _flow(base: str, demo: Path) -> Flow:
    """A callback for the demo partner, and a flow of remotes over its demo vehicles."""
    details = json.loads(demo.read_text())
    partner = details["partner"]
    auth = (partner["login"], partner["password"])
    fleet = f"{base}/connectedcar/v3/fleets/{details['fleetId']}"
    async with httpx.AsyncClient(auth=auth, params={"client_id": partner["clientId"]}) as http:
        created = await http.post(
            f"{fleet}/remote/callbacks",
            json={
                "callback": {"webhook": {"target": "https://hooks.example.com/f", "name": "f"}},
                "remoteTypes": ["Horn", "Lights", "WakeUp"],
            },
        )
    assert created.status_code == 200, created.text
    vids = [v["vid"] for v in details["vehicles"]]
    return Flow(fleet, vids, created.json()["callbackId"], auth, partner["clientId"])


async def _healthy(base: str, process: Process, timeout: float = 30.0) -> None:
    async with httpx.AsyncClient() as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}/health")).status_code == 200:
                    return
            assert process.alive(), process.tail()
            await asyncio.sleep(0.1)
    raise AssertionError(process.tail())


# -- the embedded shape: one ``keyfob serve`` (SQLite, in-memory link, cars inside) -----------


@dataclass
class Embedded:
    """``keyfob serve`` on a SQLite file that outlives the process; its cars live inside it."""

    db: Database
    serve: Process
    base: str
    flow: Flow

    async def kill_during_flow(self, *, rate: float = 15.0, total: float = 9.0) -> Bar:
        """SIGKILL ``serve`` a third of the way into the flow, start it again on the same file.

        The cars die with the process, so a command in flight at the kill is lost with its car
        (a time-out is the truth then) and a re-run cannot be seen; what is judged: nothing
        stuck, no double Done, and no time-out among the remotes posted after the restart.
        """
        flow = asyncio.create_task(self.flow.run(total, rate))
        await asyncio.sleep(total / 3)
        self.serve.kill()
        self.serve.start()
        await _healthy(self.base, self.serve)
        restarted = utcnow()
        await flow
        accepted = set(self.flow.accepted)
        await settled(self.db, accepted, timeout=4 * COMMAND_TIMEOUT_S + 20)
        bar = await judge(self.db, accepted, ResultSpy.nothing_seen())
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(remotes.c.id).where(
                        remotes.c.created_at > restarted,
                        remotes.c.failure_cause == "VehicleConnectionTimeout",
                    )
                )
            ).all()
        bar.acted_but_timed_out = [f"{r.id} (posted after the restart)" for r in rows]
        print(f"{len(accepted)} remotes; answers {dict(self.flow.answers)}; {dict(bar.outcomes)}")
        return bar


@contextlib.asynccontextmanager
async def embedded(workdir: Path, cars: int = 20) -> AsyncIterator[Embedded]:
    path = workdir / "keyfob.db"
    port = free_port()
    serve = Process(
        "serve",
        [
            "serve",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{path}",
            "--vehicles",
            str(cars),
            "--credentials-file",
            str(workdir / "demo.json"),
        ],
        base_env(),
        workdir,
    )
    serve.start()
    db = Database(f"sqlite:///{path}")
    try:
        base = f"http://127.0.0.1:{port}"
        await _healthy(base, serve)
        flow = await _flow(base, workdir / "demo.json")
        yield Embedded(db, serve, base, flow)
    except BaseException:
        print(f"--- serve log ---\n{serve.tail()}")
        raise
    finally:
        serve.stop()
        await db.dispose()
