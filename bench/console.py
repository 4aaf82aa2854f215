"""The console's first load with 10,000 vehicles: bytes transferred and server time per page.

One process builds a migrated database (SQLite file by default, ``--db`` for PostgreSQL) with
one partner whose fleet holds N vehicles (default 10,000), each with a full status document
and a few wake-ups this month, one callback, and a remote with its timeline and notification
(posted through the API). It signs in to ``/console`` as a browser would, then loads each page
``--rounds`` times through the app in process (no network): the time from the request entering
the ASGI app to its last body byte is the server time. A page's first load is its HTML plus the
console's style sheet and script (a first visit fetches both; later pages take them from the
browser cache), headers included.

Then a driver who owns two of the fleet's cars signs in through keyfob's own OAuth pages and
loads the driver's pages the same way.

Printed per page: first-load bytes, and the median and p90 server time, against the targets
(200 KB, 300 ms). Every page must answer 200.

    python bench/console.py                  # 10,000 vehicles, 20 rounds
    python bench/console.py --quick          # 10,000 vehicles, 5 rounds
    python bench/console.py --db postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from console_user_support import own, path_of, to_callback  # noqa: E402
from keyfob.api.app import create_app  # noqa: E402
from keyfob.auth.service import create_partner  # noqa: E402
from keyfob.config import Settings  # noqa: E402
from keyfob.kit.clock import utcnow  # noqa: E402
from keyfob.store import migrate  # noqa: E402
from keyfob.store.engine import Database  # noqa: E402
from keyfob.vehicles.capabilities import capabilities_for  # noqa: E402
from keyfob.vehicles.models import fleets, vehicle_states, vehicles, wake_ups  # noqa: E402
from keyfob.vocabulary import Motorization  # noqa: E402

TARGET_BYTES = 200 * 1024
TARGET_MS = 300.0
DRIVER = "driver@bench.test"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def status_document(index: int, at: str) -> dict[str, Any]:
    """A status as a simulated electric car reports it (the shape of ``sim.status``)."""
    return {
        "privacy": {"createdAt": at, "state": "None"},
        "ignition": {"createdAt": at, "type": "Stop"},
        "doorsState": {
            "createdAt": at,
            "lockedStates": ["Locked"],
            "opening": [
                {"identifier": d, "state": "Closed"}
                for d in ("Driver", "Passenger", "RearLeft", "RearRight", "Trunk")
            ],
        },
        "battery": {"createdAt": at, "voltage": 12.6},
        "energies": [
            {
                "createdAt": at,
                "type": "Electric",
                "level": float(index % 100),
                "autonomy": 3 * (index % 100),
                "extension": {
                    "electric": {
                        "battery": {"load": {"createdAt": at, "capacity": 50000, "residual": 1}},
                        "charging": {"plugged": False, "status": "Disconnected"},
                    }
                },
            }
        ],
        "odometer": {"createdAt": at, "mileage": 1000.0 + index},
        "kinetic": {"createdAt": at, "moving": False, "speed": 0.0},
        "lastPosition": {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [2.35 + index / 1e4, 48.85]},
            "properties": {"createdAt": at, "heading": 90, "type": "Acquire"},
        },
    }


async def populate(database: Database, count: int) -> tuple[str, str, str, list[str]]:
    """The partner (login, client id), its fleet id, and its vehicle ids in creation order."""
    now = utcnow()
    at = now.isoformat()
    async with database.transaction() as conn:
        partner = await create_partner(
            conn, login="bench", password="bench-password", name="Bench", now=now
        )
        await conn.execute(
            fleets.insert().values(
                id="bench-fleet",
                partner_id=partner.id,
                name="Bench fleet",
                created_at=now,
                updated_at=now,
            )
        )
        capabilities = capabilities_for(Motorization.ELECTRIC)
        ids = [f"{index:032x}" for index in range(count)]
        rows = [
            {
                "id": vid,
                "fleet_id": "bench-fleet",
                "vin": f"VF3BENCH{index:09d}",
                "motorization": "Electric",
                "capabilities": capabilities,
                "simulated": True,
                "created_at": now + timedelta(microseconds=index),
                "updated_at": now,
            }
            for index, vid in enumerate(ids)
        ]
        states = [
            {
                "vehicle_id": vid,
                "presence": "online" if index % 3 else "asleep",
                "presence_at": now,
                "status": status_document(index, at),
                "status_at": now,
                "wake_ups_in_month": 0,
            }
            for index, vid in enumerate(ids)
        ]
        wakes = [{"vehicle_id": vid, "at": now} for vid in ids[::2] for _ in range(3)]
        for start in range(0, count, 1000):
            await conn.execute(vehicles.insert(), rows[start : start + 1000])
            await conn.execute(vehicle_states.insert(), states[start : start + 1000])
        for start in range(0, len(wakes), 1000):
            await conn.execute(wake_ups.insert(), wakes[start : start + 1000])
    return partner.login, partner.client_id, "bench-fleet", ids


class Timed:
    """The ASGI app, timing each HTTP request from entry to its last body byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last_ms = (time.perf_counter() - start) * 1000

        await self.app(scope, receive, timed_send)


def wire_size(answer: httpx.Response) -> int:
    head = sum(len(k) + len(v) + 4 for k, v in answer.headers.raw) + 17
    return head + len(answer.content)


async def measure(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/bench.db"
        database = Database(url)
        await migrate.upgrade(database)
        settings = Settings(db=url, vehicles=0, public_url="http://bench.test")
        app = create_app(settings, database=database, announce=lambda _: None)
        timed = Timed(app)
        async with app.router.lifespan_context(app):
            started = time.perf_counter()
            login, client_id, fid, ids = await populate(database, args.vehicles)
            print(f"{args.vehicles} vehicles stored in {time.perf_counter() - started:.1f} s")
            api = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://bench.test",
                auth=(login, "bench-password"),
                params={"client_id": client_id},
            )
            base = f"/connectedcar/v3/fleets/{fid}"
            created = await api.post(
                f"{base}/remote/callbacks",
                json={
                    "callback": {"webhook": {"target": "https://hooks.example.com/k", "name": "k"}},
                    "remoteTypes": ["Doors", "Horn", "Lights"],
                },
            )
            cbid = created.json()["callbackId"]
            vid = ids[len(ids) // 2]
            posted = await api.post(
                f"{base}/vehicles/{vid}/callbacks/{cbid}/remotes",
                json={"door": {"state": "Locked"}},
            )
            rid = posted.json()["remoteActionId"]
            await api.aclose()
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=timed), base_url="http://bench.test"
            ) as browser:
                login_page = await browser.get("/console/login")
                csrf = CSRF.search(login_page.text)
                assert csrf is not None
                signed = await browser.post(
                    "/console/login",
                    data={
                        "csrf": csrf.group(1),
                        "login": login,
                        "password": "bench-password",
                        "client_id": client_id,
                    },
                )
                assert signed.status_code == 303, signed.text
                assets = 0
                for name in ("console.css", "console.js"):
                    assets += wire_size(await browser.get(f"/console/static/{name}"))
                last = -(-args.vehicles // 50)
                pages = {
                    "vehicles, page 1": f"/console/fleets/{fid}",
                    f"vehicles, page {last}": f"/console/fleets/{fid}?page={last}",
                    "VIN search": f"/console/fleets/{fid}?vin=BENCH00000{args.vehicles // 2:04d}",
                    "one vehicle": f"/console/fleets/{fid}/vehicles/{vid}",
                    "timeline": f"/console/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}"
                    f"/remotes/{rid}",
                    "callbacks": f"/console/fleets/{fid}/callbacks",
                    "overview": f"/console/fleets/{fid}/overview",
                    "delivery log": f"/console/fleets/{fid}/callbacks/{cbid}",
                    "sign-in": "/console/login",
                }
                failed = await _time_pages(browser, timed, pages, assets, args.rounds)
                # A driver who owns two of the fleet's cars, signed in through keyfob's OAuth.
                await own(app, DRIVER, ids[0], vid)
                browser.cookies.clear()
                back = await browser.get(path_of(await to_callback(browser, DRIVER)))
                assert back.status_code == 303, back.text
                driver = {
                    "driver: my vehicles": "/console/user/",
                    "driver: one vehicle": f"/console/user/vehicles/{vid}",
                    "driver: my callbacks": "/console/user/callbacks",
                }
                failed += await _time_pages(browser, timed, driver, assets, args.rounds)
        await database.dispose()
    print(f"targets: first load <= {TARGET_BYTES // 1024} KB, server time <= {TARGET_MS:.0f} ms")
    return 1 if failed else 0


async def _time_pages(
    browser: httpx.AsyncClient, timed: Timed, pages: dict[str, str], assets: int, rounds: int
) -> int:
    """Print each page's first-load size and server times; how many missed a target."""
    failed = 0
    print(f"{'page':<22} {'first load':>11} {'median':>9} {'p90':>9}")
    for name, path in pages.items():
        times, size = [], 0
        for _ in range(rounds):
            # The sign-in page is seen before signing in: no session cookie.
            if path == "/console/login":
                browser.cookies.clear()
            answer = await browser.get(path)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
            times.append(timed.last_ms)
            size = wire_size(answer) + assets
        times.sort()
        median = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        ok = size <= TARGET_BYTES and p90 <= TARGET_MS
        failed += not ok
        print(
            f"{name:<22} {size / 1024:>8.1f} KB {median:>6.1f} ms {p90:>6.1f} ms"
            f"{'' if ok else '  over target'}"
        )
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    parser.add_argument("--db", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 5
    sys.exit(asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
