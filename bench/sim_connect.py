"""Benchmark (a): N simulated vehicles connected to Mosquitto from one simulator process.

Starts a private Mosquitto (``max_connections -1``, ``set_tcp_nodelay true``), raises the open
file limit to the hard limit, then runs two child processes one after the other so each
reports its own peak memory:

* ``baseline``: N bare gmqtt clients doing the same MQTT work as a simulated vehicle
  (MQTT 5 persistent session, last will, subscription to its command topic, one retained
  presence message) with no simulator logic: the cost of the connections themselves;
* ``fleet``: N ``SimVehicle`` on a ``Fleet`` with gmqtt links, as ``keyfob sim`` runs them
  (each also publishes its status document on connecting).

The parent listens on the broker and checks that all N vehicles announced themselves online.

    .venv/bin/python bench/sim_connect.py                # 10,000 vehicles
    .venv/bin/python bench/sim_connect.py --vehicles 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import gmqtt  # noqa: E402
from gmqtt.mqtt.constants import MQTTv50  # noqa: E402

from keyfob.kit.clock import utcnow  # noqa: E402
from keyfob.link.mqtt import MqttTransport  # noqa: E402
from keyfob.link.protocol import Presence, PresenceState, decode, encode  # noqa: E402
from keyfob.link.topics import Channel, parse_vehicle_topic, vehicle_topic  # noqa: E402
from keyfob.link.transport import AbortableTransport, Will, parse_broker_url  # noqa: E402
from keyfob.sim.config import SimConfig  # noqa: E402
from keyfob.sim.fleet import Fleet, VehicleSpec  # noqa: E402
from keyfob.sim.mqtt_fleet import GmqttLink  # noqa: E402
from mosquitto import Mosquitto  # noqa: E402

TARGET_MIB = 300


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vins(count: int) -> list[str]:
    return [f"VF3BENCH{n:09d}" for n in range(count)]


async def baseline(url: str, count: int, concurrency: int) -> dict[str, Any]:
    """Bare gmqtt clients doing a simulated vehicle's MQTT work, nothing else."""
    address = parse_broker_url(url)
    gate = asyncio.Semaphore(concurrency)
    clients: list[Any] = []
    latencies: list[float] = []

    async def one(vin: str) -> None:
        presence = vehicle_topic(vin, Channel.PRESENCE)
        will = gmqtt.Message(presence, encode(Presence(PresenceState.OFFLINE, utcnow())), 1, True)
        client = gmqtt.Client(
            vin, clean_session=False, will_message=will, session_expiry_interval=86_400
        )
        async with gate:
            started = time.perf_counter()
            await client.connect(address.host, address.port, keepalive=60, version=MQTTv50)
            latencies.append(time.perf_counter() - started)
        client.subscribe(vehicle_topic(vin, Channel.CMD), qos=1)
        client.publish(presence, encode(Presence(PresenceState.ONLINE, utcnow())), 1, True)
        clients.append(client)

    started = time.perf_counter()
    await asyncio.gather(*(one(vin) for vin in vins(count)))
    total = time.perf_counter() - started
    await asyncio.sleep(2)  # let the subscriptions and presences settle
    report = summary("baseline", count, total, latencies, len(clients))
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    return report


class TimedLink(GmqttLink):
    __slots__ = ()
    latencies: list[float] = []

    async def start(self) -> None:
        started = time.perf_counter()
        await super().start()
        TimedLink.latencies.append(time.perf_counter() - started)


async def fleet(url: str, count: int, concurrency: int) -> dict[str, Any]:
    """The simulator as ``keyfob sim`` runs it, vehicles kept awake for the measurement."""
    address = parse_broker_url(url)

    def link(spec: VehicleSpec, will: Will) -> AbortableTransport:
        return TimedLink(address, client_id=spec.vin, will=will)

    config = SimConfig(speed=0, awake_window=3600, awake_cap=3600)
    simulated = Fleet(link, seed=1, config=config, concurrency=concurrency)
    started = time.perf_counter()
    await simulated.add_many(VehicleSpec(vin) for vin in vins(count))
    total = time.perf_counter() - started
    await asyncio.sleep(2)  # every vehicle announces itself and reports its status
    connected = sum(1 for vin in simulated.vins if (simulated.link(vin) or _Down).connected)
    report = summary("fleet", count, total, TimedLink.latencies, connected)
    report["counters"] = simulated.counters
    await simulated.stop()
    return report


class _Down:
    connected = False


def summary(
    role: str, count: int, total: float, latencies: list[float], connected: int
) -> dict[str, Any]:
    return {
        "role": role,
        "vehicles": count,
        "connected": connected,
        "connect_total_s": round(total, 2),
        "connect_median_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "connect_p99_ms": round(sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000, 2)
        if latencies
        else None,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def child(role: str, url: str, count: int, concurrency: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--role",
        role,
        "--url",
        url,
        "--vehicles",
        str(count),
        "--concurrency",
        str(concurrency),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if finished.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{finished.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return report


async def count_online(url: str, expected: int, timeout: float) -> int:
    """How many distinct vehicles said online within ``timeout`` (as the platform sees it)."""
    online: set[str] = set()
    done = asyncio.Event()

    async def on_presence(topic: str, payload: bytes) -> None:
        if decode(Presence, payload).state is PresenceState.ONLINE:
            online.add(parse_vehicle_topic(topic)[0])
            if len(online) >= expected:
                done.set()

    watcher = MqttTransport(url, client_id="bench-watcher", clean_session=True)
    watcher.set_handler(on_presence)
    await watcher.subscribe("keyfob/v1/vehicles/+/presence")
    await watcher.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    await watcher.stop()
    return len(online)


def measure(role: str, url: str, count: int, concurrency: int) -> dict[str, Any]:
    async def run() -> tuple[dict[str, Any], int]:
        counting = asyncio.create_task(count_online(url, count, timeout=300))
        await asyncio.sleep(0.5)
        report = await asyncio.to_thread(child, role, url, count, concurrency)
        return report, await counting

    report, seen = asyncio.run(run())
    report["online_seen_by_platform"] = seen
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--role", choices=["baseline", "fleet"])
    parser.add_argument("--url")
    args = parser.parse_args()
    hard = raise_fd_limit()
    if args.role == "baseline":
        print(json.dumps(asyncio.run(baseline(args.url, args.vehicles, args.concurrency))))
        return
    if args.role == "fleet":
        print(json.dumps(asyncio.run(fleet(args.url, args.vehicles, args.concurrency))))
        return
    if hard < args.vehicles + 200:
        sys.exit(f"the open file limit ({hard}) is too low for {args.vehicles} vehicles")
    with tempfile.TemporaryDirectory() as directory:
        broker = Mosquitto(Path(directory), extra=["max_queued_messages 1000"])
        broker.start()
        try:
            reports = [
                measure(role, broker.url(), args.vehicles, args.concurrency)
                for role in ("baseline", "fleet")
            ]
        finally:
            broker.stop()
    print_table(reports)


def print_table(reports: list[dict[str, Any]]) -> None:
    keys = [
        "vehicles",
        "connected",
        "online_seen_by_platform",
        "connect_total_s",
        "connect_median_ms",
        "connect_p99_ms",
        "peak_rss_mib",
    ]
    print(f"{'':26}" + "".join(f"{r['role']:>14}" for r in reports))
    for key in keys:
        print(f"{key:26}" + "".join(f"{r.get(key)!s:>14}" for r in reports))
    base, sim = reports
    overhead = sim["peak_rss_mib"] - base["peak_rss_mib"]
    per_vehicle = overhead * 1024 / max(1, sim["vehicles"])
    print(f"\nsimulator overhead over bare connections: {overhead:.1f} MiB", end=" ")
    print(f"({per_vehicle:.1f} KiB per vehicle)")
    verdict = "within" if sim["peak_rss_mib"] <= TARGET_MIB else "OVER"
    print(f"fleet peak RSS {sim['peak_rss_mib']} MiB: {verdict} the {TARGET_MIB} MiB target")
    if sim.get("counters"):
        print(f"fleet counters: {sim['counters']}")


if __name__ == "__main__":
    main()
