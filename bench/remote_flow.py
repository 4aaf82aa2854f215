"""Benchmark (b): remotes to awake cars, API → dispatcher → Mosquitto → simulator → Done.

One machine, one process per part, as an operator would run them:

* a private Mosquitto (``set_tcp_nodelay true``, ``max_connections -1``);
* the server: ``create_app`` with the vehicle role (API + dispatcher over MQTT, like
  ``keyfob serve --mqtt``) under uvicorn, one worker; the delivery worker is off (its cost is
  benchmark ``delivery.py``'s), so notifications wait in the outbox;
* the simulator: ``run_standalone`` with N awake cars, each on its own connection, answering at
  once (speed 0);
* a load generator posting remotes with aiohttp: first as fast as the server answers
  (``--concurrency`` requests in flight), then at a fixed rate (``--rate``, default 300/s).

Latency is accept-to-Done, both ends stamped by the server: a remote's ``created_at`` and the
time of its Done event, read back from the database once every remote has finished. Sustained
throughput counts Done events per second over the measured window, and the target is judged
on those that succeeded (a remote refused because another of its kind is still in progress is
Done too, and cheap). Beside each phase, in the same run and through the same broker,
``mqtt_rtt.py`` measures a raw QoS 1 request/answer loop at the same concurrency or rate: what
the broker alone costs here.

    .venv/bin/python bench/remote_flow.py                 # SQLite, 1,000 cars, 10 s phases
    .venv/bin/python bench/remote_flow.py --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from common import (  # noqa: E402
    BENCH_DIR,
    LoadPlan,
    cpu_seconds,
    free_port,
    machine,
    percentile,
    run_async,
    run_json,
    run_load,
    serve,
    server,
)
from flow_parts import PacedPlan, paced, provision, scratch_database  # noqa: E402
from sqlalchemy import and_, select  # noqa: E402

from keyfob.kit.clock import utcnow  # noqa: E402
from keyfob.remotes.models import remote_events, remotes  # noqa: E402
from keyfob.store.engine import Database  # noqa: E402
from keyfob.vehicles.models import vehicle_states  # noqa: E402
from mosquitto import Mosquitto  # noqa: E402

REMOTES = "/connectedcar/v3/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes"
BODIES: tuple[dict[str, Any], ...] = (
    {"horn": {"state": "Activated"}},
    {"lights": {"on": True}},
    {"wakeUp": {}},
)


# -- the child processes ---------------------------------------------------------------------


def server_main(setup: dict[str, Any], port: int) -> None:
    from keyfob.api.app import create_app
    from keyfob.config import Settings
    from keyfob.runtime.vehicle_role import vehicle_role

    roles = [] if setup.get("split") else [vehicle_role]
    settings = Settings(
        db=setup["db"],
        mqtt=setup["mqtt"],
        vehicles=0,
        run_simulator=False,
        run_worker=False,
        sim_speed=0,
        rate_limit={"day": 1_000_000_000, "burst": 1_000_000},
    )
    serve(create_app(settings, roles=roles, announce=lambda _: None), port)


def sim_main(setup: dict[str, Any]) -> None:
    from keyfob.sim.config import SimConfig
    from keyfob.sim.fleet import VehicleSpec
    from keyfob.sim.mqtt_fleet import run_standalone

    specs = [VehicleSpec(vin) for _, vin in setup["vehicles"]]
    awake = SimConfig(speed=0, max_commands=10**9, awake_window=3600, awake_cap=3600)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_standalone(setup["mqtt"], specs, 1, 0, stop, config=awake)

    run_async(main())


# -- the run -----------------------------------------------------------------------------------


def _plan_requests(setup: dict[str, Any], root: str, callback_id: str) -> list[tuple[str, str]]:
    """Remote i goes to car i mod N, with body (i div N) mod 3: a car sees each action type
    once every 3N remotes, so no remote meets another of its type still in progress."""
    cars = setup["vehicles"]
    out = []
    for index in range(len(cars) * len(BODIES)):
        vid, _ = cars[index % len(cars)]
        url = root + REMOTES.format(fid=setup["fleet_id"], vid=vid, cbid=callback_id)
        out.append((url, json.dumps(BODIES[(index // len(cars)) % len(BODIES)])))
    return out


def _headers(setup: dict[str, Any]) -> dict[str, str]:
    token = base64.b64encode(f"{setup['login']}:{setup['password']}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def _callback(root: str, setup: dict[str, Any]) -> str:
    body = {
        "callback": {"webhook": {"target": "https://hooks.example.com/bench", "name": "bench"}},
        "remoteTypes": ["Horn", "Lights", "WakeUp"],
    }
    request = urllib.request.Request(
        f"{root}/connectedcar/v3/fleets/{setup['fleet_id']}/remote/callbacks"
        f"?client_id={setup['client_id']}",
        data=json.dumps(body).encode(),
        headers=_headers(setup),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        callback_id: str = json.loads(answer.read())["callbackId"]
        return callback_id


async def _all_online(url: str, count: int, timeout: float = 120.0) -> None:
    database = Database(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            async with database.read() as conn:
                rows = await conn.execute(
                    select(vehicle_states.c.vehicle_id).where(vehicle_states.c.presence == "online")
                )
                if len(rows.all()) >= count:
                    return
            await asyncio.sleep(0.5)
    finally:
        await database.dispose()
    raise RuntimeError(f"not all {count} cars came online within {timeout} s")


FINISHED = select(
    remotes.c.created_at,
    remotes.c.phase,
    remotes.c.status,
    remotes.c.failure_cause,
    remote_events.c.created_at.label("done_at"),
).select_from(
    remotes.outerjoin(
        remote_events,
        and_(remote_events.c.remote_id == remotes.c.id, remote_events.c.type == "Done"),
    )
)


async def _finished(url: str, since: datetime, timeout: float) -> list[Any]:
    """Every remote created since ``since`` with its Done time, once none is still active."""
    database = Database(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with database.read() as conn:
                rows = (await conn.execute(FINISHED.where(remotes.c.created_at >= since))).all()
            if all(r.phase == "done" for r in rows) or time.monotonic() > deadline:
                return list(rows)
            await asyncio.sleep(0.5)
    finally:
        await database.dispose()


def summarize(rows: list[Any], warmup_s: float) -> dict[str, Any]:
    """Rates and accept-to-Done percentiles over the window after the warm-up."""
    if not rows:
        return {"remotes": 0}
    first = min(r.created_at for r in rows)
    last = max(r.created_at for r in rows)
    start = first.timestamp() + warmup_s
    end = last.timestamp()
    span = max(end - start, 1e-9)
    kept = [r for r in rows if start <= r.created_at.timestamp() <= end]
    done = [r for r in rows if r.done_at is not None]
    latencies = [(r.done_at - r.created_at).total_seconds() * 1000 for r in kept if r.done_at]
    outcomes = Counter(f"{r.status}/{r.failure_cause or '-'}" for r in rows)
    return {
        "remotes": len(rows),
        "unfinished": len(rows) - len(done),
        "accepted_per_s": len(kept) / span,
        "done_per_s": sum(start <= r.done_at.timestamp() <= end for r in done) / span,
        # A remote refused as SameActionInProgress is Done too, and cheap: only successes
        # count as throughput, or a backlog that makes remotes collide would look fast.
        "succeeded_per_s": sum(
            start <= r.done_at.timestamp() <= end and r.status == "Success" for r in done
        )
        / span,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "outcomes": dict(outcomes),
    }


class Run:
    """The processes of one run, and the measurements taken against them."""

    def __init__(self, options: argparse.Namespace, stack: ExitStack, work: Path) -> None:
        self.options = options
        self.broker = Mosquitto(work)
        self.broker.start()
        stack.callback(self.broker.stop)
        self.url = self.broker.url()
        self.db_url = stack.enter_context(scratch_database(options.db, work))
        self.setup = {"db": self.db_url, "mqtt": self.url, "split": options.split}
        self.setup |= run_async(provision(self.db_url, options.vehicles))
        (work / "setup.json").write_text(json.dumps(self.setup))
        self.sim = subprocess.Popen([sys.executable, __file__, "--role", "sim", str(work)])
        stack.callback(lambda: _stop(self.sim))
        port = free_port()
        args = [__file__, "--role", "server", str(work), "--port", str(port)]
        self.server = stack.enter_context(server(args, port=port))
        self.dispatchers: list[subprocess.Popen[bytes]] = []
        # The scaled-out shape: ``keyfob dispatcher`` processes of their own.
        for _ in range(options.dispatchers if options.split else 0):
            command = [sys.executable, "-m", "keyfob.cli.main", "dispatcher"]
            command += ["--db", self.db_url, "--mqtt", self.url]
            dispatcher = subprocess.Popen(command)
            self.dispatchers.append(dispatcher)
            stack.callback(_stop, dispatcher)
        self.echo = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "mqtt_rtt.py"), "echo", self.url],
            stdout=subprocess.PIPE,
        )
        stack.callback(lambda: _stop(self.echo))
        assert self.echo.stdout is not None
        if self.echo.stdout.readline().strip() != b"ready":
            raise RuntimeError("the MQTT echo did not start")
        root = f"http://127.0.0.1:{port}"
        self.requests = _plan_requests(self.setup, root, _callback(root, self.setup))
        self.query = f"?client_id={self.setup['client_id']}"
        run_async(_all_online(self.db_url, options.vehicles))

    def cpu(self) -> dict[str, float]:
        pids = {"server": self.server.pid, "simulator": self.sim.pid}
        for index, dispatcher in enumerate(self.dispatchers):
            pids[f"dispatcher {index + 1}" if len(self.dispatchers) > 1 else "dispatcher"] = (
                dispatcher.pid
            )
        if self.broker.process is not None:
            pids["mosquitto"] = self.broker.process.pid
        return {name: cpu_seconds(pid) for name, pid in pids.items()}

    def flow(self, rate: float | None) -> dict[str, Any]:
        options = self.options
        requests = [(url + self.query, body) for url, body in self.requests]
        since = utcnow()
        cpu, clock = self.cpu(), time.monotonic()
        if rate is None:
            plan = LoadPlan(
                requests,
                _headers(self.setup),
                options.concurrency,
                options.duration,
                options.warmup,
            )
            http = run_load(plan)
        else:
            paced_plan = PacedPlan(
                requests, _headers(self.setup), rate, options.duration + options.warmup
            )
            http = run_json([__file__, "--role", "paced"], stdin=paced_plan.dumps())
        rows = run_async(_finished(self.db_url, since, timeout=120))
        spent = time.monotonic() - clock
        shares = {k: (v - cpu[k]) / spent for k, v in self.cpu().items()}
        return {"http": http, "flow": summarize(rows, options.warmup), "cpu": shares}

    def raw(self, rate: float | None) -> dict[str, Any]:
        options = self.options
        args = [str(BENCH_DIR / "mqtt_rtt.py"), "ask", self.url]
        args += [str(options.concurrency), str(options.duration)]
        if rate is not None:
            args = [*args[:3], "0", str(options.duration), "--rate", str(rate)]
        return run_json(args, timeout=options.duration + 120)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def report(results: dict[str, Any], options: argparse.Namespace) -> None:
    engine = "PostgreSQL" if options.db else "SQLite"
    print(
        f"\nremote flow on {machine()}; {options.vehicles} awake cars; {engine}; "
        "delivery worker off"
    )
    header = f"{'phase':<22}{'side':<30}{'per s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
    print(header)
    for phase, label in (
        ("max", f"max, {options.concurrency} in flight"),
        ("paced", f"fixed {options.rate:g}/s"),
    ):
        flow = results[phase]["flow"]["flow"]
        raw = results[phase]["raw"]
        http = results[phase]["flow"]["http"]
        print(
            f"{label:<22}{'keyfob accept→Done':<30}{flow['done_per_s']:>9.0f}"
            f"{flow['p50_ms']:>9.1f}{flow['p90_ms']:>9.1f}{flow['p99_ms']:>9.1f}"
        )
        print(
            f"{'':<22}{'keyfob POST (HTTP, client)':<30}{flow['accepted_per_s']:>9.0f}"
            f"{http['p50_ms']:>9.1f}{http['p90_ms']:>9.1f}{http['p99_ms']:>9.1f}"
        )
        print(
            f"{'':<22}{'raw MQTT QoS 1 round trip':<30}{raw['rate']:>9.0f}"
            f"{raw['p50_ms']:>9.1f}{raw['p90_ms']:>9.1f}{raw['p99_ms']:>9.1f}"
        )
        cpu = ", ".join(f"{k} {v:.0%}" for k, v in results[phase]["flow"]["cpu"].items())
        print(f"{'':<22}{'keyfob Done with Success':<30}{flow['succeeded_per_s']:>9.0f}")
        print(f"{'':<22}outcomes {flow['outcomes']}; CPU {cpu}")
    paced_flow = results["paced"]["flow"]["flow"]
    print(
        f"targets: ≥ 1,000 remotes/s sustained (Done with Success): "
        f"{'met' if results['max']['flow']['flow']['succeeded_per_s'] >= 1000 else 'not met'}; "
        f"p99 ≤ 100 ms at {options.rate:g}/s: "
        f"{'met' if paced_flow['p99_ms'] <= 100 else 'not met'}"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("server", "sim", "paced"))
    parser.add_argument("workdir", nargs="?")
    parser.add_argument("--port", type=int)
    parser.add_argument("--db", help="a PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--split",
        action="store_true",
        help="API and dispatcher in separate processes (keyfob dispatcher); needs --db postgresql",
    )
    parser.add_argument(
        "--dispatchers", type=int, default=1, help="with --split: how many dispatcher processes"
    )
    options = parser.parse_args(argv)
    if options.split and not options.db:
        parser.error("--split needs --db postgresql://...: SQLite has one writer process")
    if options.role == "server":
        server_main(json.loads(Path(options.workdir, "setup.json").read_text()), options.port)
    elif options.role == "sim":
        sim_main(json.loads(Path(options.workdir, "setup.json").read_text()))
    elif options.role == "paced":
        print(json.dumps(run_async(paced(PacedPlan.loads(sys.stdin.read())))))
    else:
        with tempfile.TemporaryDirectory(prefix="keyfob-flow-") as work, ExitStack() as stack:
            run = Run(options, stack, Path(work))
            results = {
                "max": {"raw": run.raw(None), "flow": run.flow(None)},
                "paced": {"raw": run.raw(options.rate), "flow": run.flow(options.rate)},
            }
        report(results, options)
        if options.json:
            options.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
