"""Webhook deliveries per second from one process, beside a raw aiohttp POST loop.

The issue asks for single-event deliveries per second (target 5,000) and events per second in
batches of 100 (target 20,000). A number like that depends on the machine more than on keyfob,
so each round of keyfob's delivery worker is paired with a round of the simplest possible
sender (an aiohttp POST loop at the same concurrency, posting bodies of the same size) against
the same kind of receiver, and the ratio is what carries over from one machine to another.

Every round has its own processes: a receiver (a minimal HTTP server that answers 200 and
counts requests and events, so both sides are timed by the same clock in the same place) and
a sender. keyfob's sender builds a migrated database with one callback pointing at the
receiver, pre-fills N pending notifications (one remote and one event each), then runs
``DeliveryWorker.run()`` until the receiver has counted every event; every notification row
must end ``delivered``. The rate is events over the time from the first request reaching the
receiver to the last one answered; pre-filling is not timed.

    python bench/delivery.py            # full: 3 rounds per side and case
    python bench/delivery.py --quick    # 1 small round per side and case: under a minute
    python bench/delivery.py --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from common import (
    BENCH_DIR,
    LOOPBACK,
    free_port,
    machine,
    median,
    ratio,
    receiver_stats,
    run_async,
    run_json,
    run_post_loop,
    server,
    wait_for_events,
)
from sqlalchemy import func, select, text

from keyfob.auth.service import create_partner
from keyfob.callbacks.schemas import parse_callback_body
from keyfob.callbacks.service import Callback, create_callback
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.clock import utcnow
from keyfob.kit.ids import new_id
from keyfob.notifications.outbox import notification_row
from keyfob.notifications.payload import EventRecord, build_remote_events, encode
from keyfob.notifications.sender import USER_AGENT, WebhookSender
from keyfob.notifications.signing import sign
from keyfob.notifications.worker import DeliveryWorker
from keyfob.remotes.accept import first_status
from keyfob.remotes.events import RemoteRef, event_values
from keyfob.remotes.schemas import parse_remote_body
from keyfob.runtime.tables import notifications, remote_events, remotes
from keyfob.store import migrate
from keyfob.store.engine import Database
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import Vehicle, create_fleet, create_vehicle
from keyfob.vocabulary import EventType, Motorization

MARKER = b'"remoteActionId"'
"""One per event in a ``RemoteEvents`` body: what the receiver counts."""
CASES = {"single": 1, "batch": 100}
TARGETS = {"single": ("deliveries/s", 5_000), "batch": ("events/s", 20_000)}
SIDES = ("raw", "keyfob")
PRIVATE_OK = TargetPolicy(allow_private=True)


# -- the raw loop's request -----------------------------------------------------------------


def sample_body(events: int) -> tuple[str, dict[str, str]]:
    """A body shaped and sized like keyfob's, and headers like the ones it sends."""
    now = utcnow()
    records = [
        EventRecord(new_id(), new_id(), 1, "VF3ABCDEF12345678", now, "Horn", "Pending", "Accepted")
        for _ in range(events)
    ]
    body = encode(build_remote_events(new_id(), [], records))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    headers.update(sign(["whsec_" + "A" * 44], f"msg_{new_id()}", int(now.timestamp()), body))
    return body.decode(), headers


# -- keyfob's delivery worker (its own process) ---------------------------------------------


@asynccontextmanager
async def bench_database(url: str | None) -> AsyncIterator[Database]:
    """A freshly migrated database: a SQLite file, or a new database on the PostgreSQL server."""
    with tempfile.TemporaryDirectory(prefix="keyfob-bench-delivery-") as tmp:
        name = f"keyfob_bench_{os.getpid()}"
        target = f"sqlite:///{tmp}/delivery.db"
        admin = None
        if url is not None:
            admin = await asyncpg.connect(url)
            await admin.execute(f'CREATE DATABASE "{name}"')
            target = f"{url.rsplit('/', 1)[0]}/{name}"
        database = Database(target)
        try:
            await migrate.upgrade(database)
            yield database
        finally:
            await database.dispose()
            if admin is not None:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


async def stage(
    database: Database, hook: str, batch: dict[str, int] | None
) -> tuple[Vehicle, Callback]:
    """One partner, fleet and vehicle, and one Running callback that posts to ``hook``."""
    body: dict[str, Any] = {
        "callback": {"webhook": {"target": hook, "name": "bench"}},
        "remoteTypes": ["Horn"],
    }
    if batch is not None:
        body["batchNotify"] = batch
    parsed = parse_callback_body(body, target_policy=PRIVATE_OK)
    now = utcnow()
    async with database.transaction() as conn:
        partner = await create_partner(conn, login="bench", password="bench-pw", name="b", now=now)
        fleet = await create_fleet(conn, partner_id=partner.id, name="bench", now=now)
        vehicle = await create_vehicle(
            conn,
            fleet_id=fleet.id,
            vin="VF3BENCH000000001",
            motorization=Motorization.ELECTRIC.value,
            capabilities=capabilities_for(Motorization.ELECTRIC),
            now=now,
        )
        callback, _secret = await create_callback(conn, fleet_id=fleet.id, parsed=parsed, now=now)
    return vehicle, callback


def _remote_row(remote_id: str, vehicle: Vehicle, callback: Callback, now: Any) -> dict[str, Any]:
    body = parse_remote_body({"horn": {"state": "Activated"}})
    return {
        "id": remote_id,
        "fleet_id": vehicle.fleet_id,
        "vehicle_id": vehicle.id,
        "callback_id": callback.id,
        "type": body.type.value,
        "label": None,
        "body": body.to_stored(),
        "status": first_status(body.type).value,
        "last_seq": 1,
        "phase": "queued",
        "due_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def prefill(database: Database, vehicle: Vehicle, callback: Callback, events: int) -> float:
    """``events`` accepted Horn remotes, each with its first event and its pending notification.

    The rows are the ones ``remotes.service`` writes for a POST, inserted in bulk (not timed).
    """
    started = time.perf_counter()
    for offset in range(0, events, 5_000):
        now = utcnow()
        rows: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for _ in range(min(5_000, events - offset)):
            remote = _remote_row(new_id(), vehicle, callback, now)
            ref = RemoteRef(remote["id"], callback.id, vehicle.vin, remote["type"], 0)
            event, outbox = event_values(
                ref, 1, EventType.PENDING, remote["status"], now, None, None
            )
            rows[0].append(remote)
            rows[1].append(event)
            rows[2].append(notification_row(callback.id, outbox, now))
        async with database.transaction() as conn:
            for table, values in zip((remotes, remote_events, notifications), rows, strict=True):
                await conn.execute(table.insert(), values)
    return time.perf_counter() - started


async def states(database: Database) -> dict[str, int]:
    async with database.read() as conn:
        query = select(notifications.c.state, func.count()).group_by(notifications.c.state)
        return {state: count for state, count in (await conn.execute(query)).all()}


async def keyfob_round(
    port: int, *, events: int, per_request: int, concurrency: int, db: str | None, timeout: float
) -> dict[str, Any]:
    """Pre-fill, then run the delivery worker until the receiver has every event (or time-out)."""
    async with bench_database(db) as database:
        batch = {"size": per_request, "timeWindow": 5} if per_request > 1 else None
        vehicle, callback = await stage(database, f"http://{LOOPBACK}:{port}/hook", batch)
        filled = await prefill(database, vehicle, callback, events)
        if not database.sqlite:
            # Steady-state planner statistics; a freshly bulk-loaded table has none yet.
            async with database.transaction() as conn:
                await conn.execute(text("ANALYZE"))
        sender = WebhookSender(PRIVATE_OK, limit=concurrency, limit_per_host=concurrency)
        worker = DeliveryWorker(database, sender, clock=utcnow)
        started = time.process_time()
        running = asyncio.create_task(worker.run(), name="bench-delivery-worker")
        complete = await wait_for_events(port, events, time.monotonic() + timeout)
        worker.stop()
        try:
            await asyncio.wait_for(running, 30)
        except TimeoutError:
            print("the delivery worker did not stop within 30 s of stop()", file=sys.stderr)
            raise
        cpu = time.process_time() - started
        await sender.close()
        found = await states(database)
    return {"cpu_s": cpu, "complete": complete, "states": found, "prefill_s": filled}


# -- the run --------------------------------------------------------------------------------


@dataclass
class Options:
    rounds: int
    events: dict[str, int]
    concurrency: int
    db: str | None
    timeout: float
    raw_requests: int  # at least this many POSTs in a raw round, so it lasts long enough to time

    def expected(self, case: str, side: str) -> int:
        events = self.events[case]
        return events if side == "keyfob" else max(events, self.raw_requests * CASES[case])


def _send(case: str, side: str, port: int, options: Options) -> dict[str, Any]:
    """One sender process: the raw loop, or keyfob's worker; returns what it reports."""
    events = options.expected(case, side)
    if side == "raw":
        body, headers = sample_body(CASES[case])
        url = f"http://{LOOPBACK}:{port}/hook"
        requests = events // CASES[case]
        return run_post_loop(url, body, headers, requests=requests, concurrency=options.concurrency)
    args = [__file__, "--role", side, "--port", str(port), "--case", case]
    args += ["--events", str(events), "--concurrency", str(options.concurrency)]
    args += ["--timeout", str(options.timeout)] + (["--db", options.db] if options.db else [])
    return run_json(args, timeout=options.timeout + 120)


def run_round(case: str, side: str, options: Options) -> dict[str, Any]:
    events = options.expected(case, side)
    port = free_port()
    receiver_args = [str(BENCH_DIR / "common.py"), "receive", str(port), MARKER.decode()]
    with server(receiver_args, port=port) as receiver:
        cpu_before = receiver.cpu()
        found = _send(case, side, port, options)
        counted = receiver_stats(port)
        found["receiver_cpu"] = receiver.cpu() - cpu_before
    found.update(counted)
    found["events_per_s"] = ratio(counted["events"], counted["seconds"])
    found["requests_per_s"] = ratio(counted["requests"], counted["seconds"])
    found["receiver_busy"] = ratio(found["receiver_cpu"], counted["seconds"])
    found["sender_busy"] = ratio(found["cpu_s"], counted["seconds"])
    found["complete"] = counted["events"] == events
    if side == "keyfob" and not found["complete"]:
        # Bounded rounds: a sender too slow to finish is reported at the rate it reached.
        print(f"  {case}/keyfob stopped after {options.timeout:g} s: {counted['events']}/{events}")
    elif counted["events"] != events:
        raise SystemExit(f"{case}/{side}: the receiver counted {counted['events']} of {events}")
    elif side == "keyfob" and found["states"] != {"delivered": events}:
        raise SystemExit(f"{case}/keyfob: notification states {found['states']}")
    return found


def report(case: str, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    label, target = TARGETS[case]
    summary: dict[str, Any] = {}
    for side in SIDES:
        rows = results[side]
        summary[side] = {
            key: median([r[key] for r in rows])
            for key in ("requests_per_s", "events_per_s", "sender_busy", "receiver_busy")
        }
    raw, ours = summary["raw"], summary["keyfob"]
    measured = ours["requests_per_s"] if case == "single" else ours["events_per_s"]
    summary["ratio"] = ratio(ours["events_per_s"], raw["events_per_s"])
    summary["per_round"] = [
        ratio(k["events_per_s"], r["events_per_s"])
        for r, k in zip(results["raw"], results["keyfob"], strict=True)
    ]
    print(
        f"\n{case} ({CASES[case]} event(s) per request), medians of {len(results['raw'])} round(s):"
    )
    for side in SIDES:
        row = summary[side]
        print(
            f"  {side:<7} {row['requests_per_s']:>9.0f} requests/s {row['events_per_s']:>9.0f} "
            f"events/s   sender cpu {100 * row['sender_busy']:>4.0f}%  receiver cpu "
            f"{100 * row['receiver_busy']:>4.0f}%"
        )
    verdict = "met" if measured >= target else "NOT met"
    rounds = ", ".join(f"{p:.3f}" for p in summary["per_round"])
    print(f"  ratio keyfob/raw: {summary['ratio']:.3f} (per round: {rounds})")
    print(f"  target {label} >= {target:,}: {measured:,.0f}, {verdict}")
    return summary


def child(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    found = run_async(
        keyfob_round(
            args.port,
            events=args.events,
            per_request=CASES[args.case],
            concurrency=args.concurrency,
            db=args.db,
            timeout=args.timeout,
        )
    )
    print(json.dumps(found))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small round per side and case")
    parser.add_argument("--rounds", type=int, help="rounds per side and case [3, quick 1]")
    parser.add_argument(
        "--single-events", type=int, help="keyfob backlog, single [5000, quick 1000]"
    )
    parser.add_argument(
        "--batch-events", type=int, help="keyfob backlog, batch [10000, quick 2000]"
    )
    parser.add_argument("--raw-requests", type=int, help="raw POSTs at least [5000, quick 2000]")
    parser.add_argument("--concurrency", type=int, default=20, help="requests in flight [20]")
    parser.add_argument("--db", help="PostgreSQL URL of a server to use (default: SQLite file)")
    parser.add_argument("--timeout", type=float, help="cap on a keyfob round, s [60, quick 15]")
    parser.add_argument("--json", help="also write the summary to this file")
    parser.add_argument("--role", choices=("keyfob",), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=tuple(CASES), default="single", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        child(args)
        return
    options = Options(
        rounds=args.rounds or (1 if args.quick else 3),
        events={
            "single": args.single_events or (1_000 if args.quick else 5_000),
            "batch": args.batch_events or (2_000 if args.quick else 10_000),
        },
        raw_requests=args.raw_requests or (2_000 if args.quick else 5_000),
        concurrency=args.concurrency,
        db=args.db,
        timeout=args.timeout or (15.0 if args.quick else 60.0),
    )
    print(f"machine: {machine()}; concurrency {options.concurrency}; db {options.db or 'SQLite'}")
    summary: dict[str, Any] = {}
    for case in CASES:
        results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
        for number in range(1, options.rounds + 1):
            for side in SIDES:
                found = run_round(case, side, options)
                results[side].append(found)
                print(
                    f"round {number} {case:<6} {side:<6} {found['requests_per_s']:8.0f} requests/s"
                    f" {found['events_per_s']:8.0f} events/s",
                    flush=True,
                )
        summary[case] = report(case, results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
