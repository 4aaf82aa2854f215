"""One unit of work written two ways, timed in same-minute alternating rounds.

``keyfob.store.units`` has units of work written as generators of steps (``Fetch``, ``Insert``,
``Execute``), which ``run_unit`` runs in one hand-off to aiosqlite's thread on SQLite, converting
values itself on SQLAlchemy's and aiosqlite's private internals (``store/_sqlite.py``), and step
by step through SQLAlchemy elsewhere. The simpler alternative is plain synchronous SQLAlchemy
code. The rule: keep the simpler one unless the other is more than 5 % faster. So one process
times the same unit, on the same database, written as:

* ``steps``: the acceptor's own plan, ``remotes.accept.accept_plan``, run by
  ``store.units.run_unit`` (what ``Acceptor._store`` does);
* ``run_sync``: the same statements as plain synchronous SQLAlchemy Core (``accept_sync``
  below: each ``yield`` of a step becomes ``conn.execute``), run by ``AsyncConnection.run_sync``
  inside ``Database.transaction()``: public APIs only;
* ``thread`` (SQLite only): ``accept_sync`` again, on aiosqlite's own thread, through a
  synchronous SQLAlchemy engine over the driver's ``sqlite3`` connection (``BEGIN IMMEDIATE``
  to ``COMMIT``, as ``run_unit`` does): one hand-off per unit, SQLAlchemy's public API, but
  still aiosqlite's private ``_execute`` and ``_conn`` to get there.

The judging between the statements (``_judge`` and the rows it stages) is the acceptor's own in
every variant, so only the way the unit reaches the database differs. A unit is one batch of
POSTed remotes over 8 cars: a look-up of the callbacks and of the Idempotency-Keys (fleets and
cars are remembered after the first batch, as in production), then multi-row inserts of the
remotes, their first events, their notifications and the keys; one request in 16 is refused
(remote type not in the callback), one in 4 carries a fresh Idempotency-Key. Units run one
after another, each awaited; two loads:

* ``idle``: nothing else runs on the event loop;
* ``busy``: ``--busy-tasks`` tasks each spin ``--busy-us`` µs of Python and yield, over and
  over, as an API process's requests would: every hand-off back to the loop waits for its
  turn (about ``tasks * us``).

Printed per case: units/s, median latency of a unit, CPU per unit (idle only: in ``busy`` the
spinners use every cycle left), the spinners' turns/s (busy only: what the unit left to the
rest of the loop), hand-offs to aiosqlite's thread per unit, and each variant's ratio to
``steps`` (per round and of the medians).

    python bench/unit_of_work.py                  # SQLite: 10 rounds, 1 s per variant and round
    python bench/unit_of_work.py --db postgresql://postgres@127.0.0.1:5432/test
    python bench/unit_of_work.py --quick          # 2 rounds of 0.5 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
from common import machine, median, percentile, ratio, run_async
from flow_parts import scratch_database
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select, tuple_
from sqlalchemy.pool import StaticPool

from keyfob.auth.service import create_partner
from keyfob.callbacks.schemas import parse_callback_body
from keyfob.callbacks.service import callback_from_row, create_callback
from keyfob.callbacks.targets import TargetPolicy
from keyfob.errors import KeyfobError
from keyfob.kit.clock import utcnow
from keyfob.remotes.accept import AcceptRequest, Posted, accept_plan
from keyfob.remotes.accept_fleet import CALLBACKS as _CALLBACKS
from keyfob.remotes.accept_fleet import FLEET_OWNERS as _FLEET_OWNERS
from keyfob.remotes.accept_fleet import VEHICLES as _VEHICLES
from keyfob.remotes.accept_fleet import Lookups as _Lookups
from keyfob.remotes.accept_fleet import judge as _judge
from keyfob.remotes.staging import Batch as _Batch
from keyfob.remotes.staging import Known as _Known
from keyfob.runtime.tables import idempotency_keys, notifications, remote_events, remotes
from keyfob.store.engine import Database
from keyfob.store.units import run_unit
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_fleet, create_vehicle, vehicle_from_row
from keyfob.vocabulary import Motorization

TTL = timedelta(hours=24)
CARS = 8
BODIES = (
    {"horn": {"state": "Activated"}},
    {"door": {"state": "Locked"}},
    {"lights": {"on": True}},
    {"door": {"state": "Unlocked"}},
)
REFUSED = {"immobilization": {"activate": True}}  # not in the callback's remoteTypes
Answers = list[Posted | KeyfobError]


# -- the unit written as plain synchronous SQLAlchemy ----------------------------------------


def _lookups_sync(conn: Connection, batch: list[AcceptRequest], known: _Known) -> _Lookups:
    """``remotes.accept_fleet.lookups`` with ``conn.execute`` where it yields ``Fetch``."""
    owners = {
        r.fleet_id: known.fleet_owner[r.fleet_id] for r in batch if r.fleet_id in known.fleet_owner
    }
    found = {
        r.vehicle_id: known.vehicles[r.vehicle_id] for r in batch if r.vehicle_id in known.vehicles
    }
    unknown_fleets = {r.fleet_id for r in batch} - owners.keys()
    unknown_vehicles = {r.vehicle_id for r in batch} - found.keys()
    if unknown_fleets:
        fleet_rows = conn.execute(_FLEET_OWNERS, {"ids": sorted(unknown_fleets)})
        owners.update({f.id: f.partner_id for f in fleet_rows})
    if unknown_vehicles:
        vehicle_rows = conn.execute(_VEHICLES, {"ids": sorted(unknown_vehicles)})
        found.update({v.id: vehicle_from_row(v) for v in vehicle_rows})
    known.remember(owners, found)
    callback_rows = conn.execute(_CALLBACKS, {"ids": sorted({r.callback_id for r in batch})})
    pairs = {(r.partner_id, r.idempotency_key) for r in batch if r.idempotency_key is not None}
    keys: dict[tuple[str, str], Any] = {}
    if pairs:
        key_rows = conn.execute(
            select(idempotency_keys, remotes.c.type)
            .join(remotes, remotes.c.id == idempotency_keys.c.remote_id)
            .where(tuple_(idempotency_keys.c.partner_id, idempotency_keys.c.key).in_(pairs)),
        )
        keys = {(k.partner_id, k.key): k for k in key_rows}
    return _Lookups(
        fleet_owner=owners,
        vehicles=found,
        callbacks={c.id: callback_from_row(c) for c in callback_rows},
        keys=keys,
    )


def accept_sync(
    conn: Connection, requests: list[AcceptRequest], now: datetime, known: _Known
) -> Answers:
    """``remotes.accept.accept_plan`` as plain synchronous code, same statements, same order."""
    found = _lookups_sync(conn, requests, known)
    batch = _Batch(now=now, ttl=TTL)
    answers: Answers = []
    for request in requests:
        try:
            answers.append(_judge(request, found, batch))
        except KeyfobError as refusal:
            answers.append(refusal)
    for partner_id, key in batch.expired_keys:
        conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.partner_id == partner_id, idempotency_keys.c.key == key
            )
        )
    for table, rows in (
        (remotes, batch.remotes),
        (remote_events, batch.events),
        (notifications, batch.notifications),
        (idempotency_keys, batch.keys),
    ):
        if rows:
            conn.execute(table.insert(), rows)
    return answers


# -- the variants ----------------------------------------------------------------------------


Variant = Callable[[list[AcceptRequest]], Awaitable[Answers]]


def steps_variant(database: Database) -> Variant:
    known = _Known()

    async def unit(requests: list[AcceptRequest]) -> Answers:
        now = utcnow()
        return await run_unit(
            database, lambda: accept_plan(requests, now=now, ttl=TTL, known=known)
        )

    return unit


def run_sync_variant(database: Database) -> Variant:
    known = _Known()

    async def unit(requests: list[AcceptRequest]) -> Answers:
        now = utcnow()
        async with database.transaction() as conn:
            answers: Answers = await conn.run_sync(accept_sync, requests, now, known)
            return answers

    return unit


def _dumps(value: Any) -> str:  # what keyfob.store.engine gives both of its engines
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def thread_variant(database: Database) -> Variant:
    """``accept_sync`` on aiosqlite's thread, through a synchronous engine over its connection.

    The engine is made on first use, once the pool's one connection exists; ``StaticPool``
    keeps handing out that same ``sqlite3`` connection, and the engine is never disposed (the
    database's own engine closes the connection).
    """
    known = _Known()
    made: list[Engine] = []

    def engine_over(sqlite: Any) -> Engine:
        if not made:
            engine = create_engine(
                "sqlite://",
                creator=lambda: sqlite,
                poolclass=StaticPool,
                pool_reset_on_return=None,
                json_serializer=_dumps,
                json_deserializer=orjson.loads,
            )
            # SQLAlchemy's documented recipe for SQLite: the transaction begins explicitly.
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
            made.append(engine)
        return made[0]

    def on_thread(engine: Engine, requests: list[AcceptRequest], now: datetime) -> Answers:
        with engine.begin() as conn:
            return accept_sync(conn, requests, now, known)

    async def unit(requests: list[AcceptRequest]) -> Answers:
        now = utcnow()
        async with database.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert isinstance(driver, aiosqlite.Connection)
            engine = engine_over(driver._conn)
            answers: Answers = await driver._execute(on_thread, engine, requests, now)
            return answers

    return unit


VARIANTS: dict[str, Callable[[Database], Variant]] = {
    "steps": steps_variant,
    "run_sync": run_sync_variant,
    "thread": thread_variant,
}


# -- the tenant and the requests -------------------------------------------------------------


@dataclass
class Tenant:
    partner_id: str
    fleet_id: str
    callback_id: str
    vehicle_ids: list[str]
    sent: int = 0

    def batch(self, size: int) -> list[AcceptRequest]:
        requests = []
        for _ in range(size):
            n = self.sent
            self.sent += 1
            requests.append(
                AcceptRequest(
                    partner_id=self.partner_id,
                    fleet_id=self.fleet_id,
                    vehicle_id=self.vehicle_ids[n % len(self.vehicle_ids)],
                    callback_id=self.callback_id,
                    data=REFUSED if n % 16 == 15 else BODIES[(n // CARS) % len(BODIES)],
                    idempotency_key=f"bench-{uuid.uuid4().hex}" if n % 4 == 0 else None,
                )
            )
        return requests


async def provision(database: Database) -> Tenant:
    now = utcnow()
    parsed = parse_callback_body(
        {
            "callback": {"webhook": {"target": "http://127.0.0.1:9/hook", "name": "bench"}},
            "remoteTypes": ["Horn", "Doors", "Lights"],
        },
        target_policy=TargetPolicy(allow_private=True),
    )
    async with database.transaction() as conn:
        partner = await create_partner(conn, login="bench", password="bench-pw", name="b", now=now)
        fleet = await create_fleet(conn, partner_id=partner.id, name="bench", now=now)
        cars = [
            await create_vehicle(
                conn,
                fleet_id=fleet.id,
                vin=f"VF3UNIT{index:010d}",
                motorization=Motorization.THERMIC.value,
                capabilities=capabilities_for(Motorization.THERMIC),
                now=now,
            )
            for index in range(CARS)
        ]
        callback, _secret = await create_callback(conn, fleet_id=fleet.id, parsed=parsed, now=now)
    return Tenant(partner.id, fleet.id, callback.id, [car.id for car in cars])


def outcome(answers: Answers) -> list[str]:
    """What a caller would see, without the fresh ids: the type accepted, or the error code."""
    return [a.type if isinstance(a, Posted) else str(a.code) for a in answers]


async def stored_remotes(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(remotes))).scalar_one())


@contextmanager
def counting_hand_offs() -> Iterator[list[int]]:
    """A one-item list counting calls aiosqlite runs on its thread while the block runs."""
    count = [0]
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]


# -- the load on the event loop --------------------------------------------------------------


@dataclass
class Spinners:
    """Tasks that each spin ``spin_s`` of Python, then yield to the loop, until stopped."""

    tasks: int
    spin_s: float
    turns: int = 0
    running: list[asyncio.Task[None]] = field(default_factory=list)

    async def _spin(self) -> None:
        while True:
            end = time.perf_counter() + self.spin_s
            while time.perf_counter() < end:
                pass
            self.turns += 1
            await asyncio.sleep(0)

    def start(self) -> None:
        self.running = [asyncio.create_task(self._spin()) for _ in range(self.tasks)]

    async def stop(self) -> None:
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        self.running = []


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Options:
    rounds: int
    duration: float
    batches: list[int]
    loads: list[str]
    busy_tasks: int
    busy_us: float


async def one_round(
    database: Database, tenant: Tenant, unit: Variant, size: int, load: str, options: Options
) -> dict[str, Any]:
    """Units back to back for ``options.duration`` s after one warm-up unit, the load already
    on; every stored remote is counted against the answers."""
    spinners = Spinners(options.busy_tasks if load == "busy" else 0, options.busy_us / 1e6)
    before = await stored_remotes(database)
    accepted = units = 0
    latencies: list[float] = []
    spinners.start()
    try:
        answers = await unit(tenant.batch(size))
        accepted += sum(isinstance(a, Posted) for a in answers)
        turns_before, cpu_before = spinners.turns, time.process_time()
        started = time.perf_counter()
        while time.perf_counter() - started < options.duration:
            requests = tenant.batch(size)
            begun = time.perf_counter()
            answers = await unit(requests)
            latencies.append(time.perf_counter() - begun)
            accepted += sum(isinstance(a, Posted) for a in answers)
            units += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        turns = spinners.turns - turns_before
    finally:
        await spinners.stop()
    stored = await stored_remotes(database) - before
    if stored != accepted:
        raise SystemExit(f"{accepted} remotes accepted but {stored} stored")
    return {
        "units_per_s": units / elapsed,
        "requests_per_s": units * size / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "cpu_ms_per_unit": cpu / units * 1000,
        "spinner_turns_per_s": turns / elapsed,
        "units": units,
    }


async def check_variants(
    database: Database, tenant: Tenant, variants: dict[str, Variant], size: int
) -> dict[str, float]:
    """Every variant answers the same batch alike (types accepted, codes refused), and how many
    hand-offs to aiosqlite's thread a steady-state unit takes."""
    seen: dict[str, list[str]] = {}
    hand_offs: dict[str, float] = {}
    for name, unit in variants.items():
        await unit(tenant.batch(size))  # fleets and cars now known, as in the steady state
        tenant.sent -= size
        with counting_hand_offs() as count:
            seen[name] = outcome(await unit(tenant.batch(size)))
        hand_offs[name] = count[0] if database.sqlite else math.nan
        tenant.sent -= size
    first = next(iter(seen.values()))
    if any(found != first for found in seen.values()):
        raise SystemExit(f"the variants answer differently: {seen}")
    if all(answer.isdigit() for answer in first):
        raise SystemExit(f"nothing was accepted: {first}")
    return hand_offs


def report(case: str, names: list[str], rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"case": case}
    for name in names:
        summary[name] = {key: median([r[key] for r in rows[name]]) for key in rows[name][0]}
    print(f"\n{case}: medians of {len(rows['steps'])} rounds")
    busy = case.endswith("busy")
    for name in names:
        row = summary[name]
        extra = (
            f"spinners {row['spinner_turns_per_s']:>7.0f} turns/s"
            if busy
            else f"cpu {row['cpu_ms_per_unit']:>6.2f} ms/unit"
        )
        trips = "" if math.isnan(row["hand_offs"]) else f"  hand-offs {row['hand_offs']:g}/unit"
        print(
            f"  {name:<8} {row['units_per_s']:>8.1f} units/s {row['requests_per_s']:>8.0f} "
            f"requests/s  p50 {row['p50_ms']:>6.2f} ms  {extra}{trips}"
        )
    for name in names[1:]:
        per_round = [
            ratio(mine["units_per_s"], base["units_per_s"])
            for mine, base in zip(rows[name], rows["steps"], strict=True)
        ]
        of_medians = ratio(summary[name]["units_per_s"], summary["steps"]["units_per_s"])
        summary[name]["ratio_to_steps"] = of_medians
        summary[name]["ratio_per_round"] = per_round
        rounds = ", ".join(f"{r:.2f}" for r in per_round)
        verdict = (
            "steps more than 5 % faster"
            if of_medians < 1 / 1.05
            else "within 5 % of steps, or faster"
        )
        cpu = ratio(summary[name]["cpu_ms_per_unit"], summary["steps"]["cpu_ms_per_unit"])
        summary[name]["cpu_ratio_to_steps"] = cpu
        print(
            f"  {name}/steps units/s: {of_medians:.3f} (median per round "
            f"{median(per_round):.3f}; rounds {rounds}): {verdict}"
            + ("" if busy else f"; CPU per unit {cpu:.2f}x")
        )
    return summary


async def run(url: str, options: Options) -> dict[str, Any]:
    database = Database(url)
    try:
        tenant = await provision(database)
        names = [n for n in VARIANTS if database.sqlite or n != "thread"]
        variants = {name: VARIANTS[name](database) for name in names}
        summaries: dict[str, Any] = {}
        for size in options.batches:
            hand_offs = await check_variants(database, tenant, variants, size)
            for load in options.loads:
                case = f"batch {size}, {load}"
                rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
                for number in range(1, options.rounds + 1):
                    for name in names:
                        found = await one_round(
                            database, tenant, variants[name], size, load, options
                        )
                        found["hand_offs"] = hand_offs[name]
                        rows[name].append(found)
                        print(
                            f"round {number} {case:<16} {name:<8} {found['units_per_s']:8.1f} "
                            f"units/s  p50 {found['p50_ms']:6.2f} ms",
                            flush=True,
                        )
                summaries[case] = report(case, names, rows)
        return summaries
    finally:
        await database.dispose()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 0.5 s")
    parser.add_argument("--rounds", type=int, help="rounds per variant and case [10, quick 2]")
    parser.add_argument("--duration", type=float, help="s per variant and round [1, quick 0.5]")
    parser.add_argument("--batch", default="1,32", help="requests per unit, comma-separated")
    parser.add_argument("--load", default="idle,busy", help="idle, busy or both")
    parser.add_argument("--busy-tasks", type=int, default=16, help="spinning tasks [16]")
    parser.add_argument("--busy-us", type=float, default=100, help="µs each spins per turn")
    parser.add_argument("--db", help="PostgreSQL URL of a server to use (default: SQLite file)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    options = Options(
        rounds=args.rounds or (2 if args.quick else 10),
        duration=args.duration or (0.5 if args.quick else 1.0),
        batches=[int(size) for size in args.batch.split(",")],
        loads=[load for load in args.load.split(",") if load in ("idle", "busy")],
        busy_tasks=args.busy_tasks,
        busy_us=args.busy_us,
    )
    print(
        f"machine: {machine()}; db {args.db or 'SQLite'}; busy = {options.busy_tasks} tasks x "
        f"{options.busy_us:g} us; {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="keyfob-bench-unit-") as work,
        scratch_database(args.db, Path(work)) as url,
    ):
        summaries = run_async(run(url, options))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summaries, out, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
