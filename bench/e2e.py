"""The whole path as users run it: remotes completed with every notification delivered.

Three kinds of process, as a user would have them:

* keyfob, started by its own commands: the **embedded** shape is one ``keyfob serve`` on SQLite
  with the in-memory vehicle link and its simulated fleet (whatever processes ``serve`` starts
  itself count as keyfob's); the **scaled** shape is ``keyfob serve`` (API only), ``keyfob
  dispatcher``, ``keyfob worker`` and ``keyfob sim`` on PostgreSQL and a private Mosquitto;
* a webhook receiver (``e2e_parts.py receive``) answering 200 at once and recording each event's
  arrival;
* a load generator (``e2e_parts.py load``) posting horn remotes round-robin over the cars.

A remote counts when its Done notification has reached the receiver. The phases of one run:

1. **raw**: the load generator POSTing straight to the receiver, 64 in flight: what HTTP alone
   does on this machine in this minute, the baseline of the ratio;
2. **saturation**: as many remotes as keyfob completes (a closed loop that keeps at most
   ``--window`` remotes accepted and not yet Done): completed remotes/s;
3. **300/s** and **600/s** offered (open loop): POST sent → Done received p50/p99, and the
   backlog (remotes whose Done had not arrived) when sending stops.

At the end: every accepted remote's Done has arrived (nothing lost), each remote's events
arrived in order, how many events each remote produced; the keyfob processes' peak memory (RSS
of all of them together) and CPU, and each phase's CPU per remote by process (below saturation
each unit of work carries fewer remotes: which process pays for that). The scaled shape also
prints what its services cost per remote: the PostgreSQL backends serving its database (when the
server runs on this machine) and its Mosquitto; ``keyfob serve`` migrates that database with the
code under test, so a variant may run older code. Both shapes print what the bench itself costs
per remote (its load generators and its receiver), so that the whole machine is accounted for:
on two cores, what they take, keyfob cannot have. ``--sync NORMAL,FULL`` runs the embedded shape
once per SQLite ``synchronous`` mode, alternating, to print what durability costs; ``--variant
NAME:ENV=VALUE,...`` adds any other setup to alternate with.

    .venv/bin/python bench/e2e.py                          # embedded, 3 alternating runs
    .venv/bin/python bench/e2e.py --shape scaled --db postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/e2e.py --sync FULL,NORMAL --runs 2
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from common import (  # noqa: E402
    BENCH_DIR,
    LOOPBACK,
    free_port,
    machine,
    median,
    percentile,
    run_json,
    wait_for_port,
)
from e2e_parts import PAGE  # noqa: E402

KEYFOB = str(Path(sys.executable).parent / "keyfob")
REMOTES = "/connectedcar/v3/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes?client_id={cid}"
HORN = json.dumps({"horn": {"state": "Activated"}})
STAGES = ("Pending/Accepted", "Pending/WakingUpVehicle", "Pending/CheckingVehicle")


# -- processes ------------------------------------------------------------------------------


class Procs:
    """Every process a run started; all stopped (SIGINT, then SIGKILL) when it ends."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.keyfob: list[subprocess.Popen[bytes]] = []
        self.others: list[subprocess.Popen[bytes]] = []
        self.database: str | None = None  # the scaled shape's PostgreSQL database
        self.broker: int | None = None  # and its Mosquitto's pid

    def start(self, name: str, args: list[str], env: dict[str, str], *, mine: bool) -> Any:
        log = (self.work / f"{name}.log").open("wb")
        process = subprocess.Popen(
            args, env={**os.environ, **env}, cwd=self.work, stdout=log, stderr=subprocess.STDOUT
        )
        (self.keyfob if mine else self.others).append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.keyfob + self.others):
            if process.poll() is None:
                process.send_signal(2)
        for process in self.keyfob + self.others:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def tree(self) -> list[int]:
        """keyfob's processes and every process they started."""
        pids = [p.pid for p in self.keyfob if p.poll() is None]
        found = list(pids)
        while pids:
            pid = pids.pop()
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    children = (task / "children").read_text().split()
                    found += [int(c) for c in children]
                    pids += [int(c) for c in children]
        return found

    def services(self) -> list[int]:
        """The scaled shape's services: the PostgreSQL backends serving its database (when
        the server runs on this machine) and its broker. Backends that close during a phase
        take their CPU with them; keyfob's pools keep theirs open."""
        found = [self.broker] if self.broker is not None else []
        if self.database is None:
            return found
        marker = f" {self.database} ".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                    if title.startswith(b"postgres:") and marker in title:
                        found.append(int(entry.name))
        return found


def _name(pid: int) -> str:
    """A short name for one of keyfob's processes: its command after the interpreter."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    words = [a.decode() for a in args[1:] if a]
    if "--role" in words[:-1]:  # a child of ``serve``: its role says more than its module
        return f"{pid} {words[words.index('--role') + 1]} child"
    return f"{pid} " + " ".join(Path(w).name if "/" in w else w for w in words[:2])


def _short(name: str) -> str:
    """``_name`` without its pid, for a line that lists the processes."""
    return name.partition(" ")[2] or name


class PhaseCpu:
    """CPU per remote of each of keyfob's processes (and, scaled, the database) over a phase.

    Below saturation each unit of work carries fewer remotes, and which process pays for it
    tells where the fixed costs are; over the whole run, saturation hides them. Processes of
    one role (several dispatchers, say) are added up under its name."""

    SERVICES = "database and broker"

    def __init__(self, procs: Procs) -> None:
        self._procs = procs
        self._each = {pid: cpu_s([pid]) for pid in procs.tree()}
        self._services = procs.services()
        self._services_s = cpu_s(self._services)

    def per_remote(self, remotes: int) -> dict[str, float]:
        n = max(1, remotes)
        found: dict[str, float] = {}
        for pid in self._procs.tree():
            name = _short(_name(pid))
            ms = 1000 * (cpu_s([pid]) - self._each.get(pid, 0.0)) / n
            found[name] = found.get(name, 0.0) + ms
        if self._services:
            found[self.SERVICES] = 1000 * (cpu_s(self._procs.services()) - self._services_s) / n
        return found

    @classmethod
    def keyfob_total(cls, per_remote: dict[str, float]) -> float:
        """keyfob's processes together, the services left out."""
        return sum(ms for name, ms in per_remote.items() if name != cls.SERVICES)


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _children_cpu_s() -> float:
    """User and system CPU of this process's children that have ended and been waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def cpu_s(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# -- the shapes -----------------------------------------------------------------------------


def _common_env(vehicles: int) -> dict[str, str]:
    return {
        "KEYFOB_VEHICLES": str(vehicles),
        "KEYFOB_SIM_SPEED": "0",
        "KEYFOB_RATE_LIMIT__DAY": "1000000000",
        "KEYFOB_RATE_LIMIT__BURST": "1000000",
        "KEYFOB_VEHICLE__WAKE_UP_QUOTA_PER_MONTH": "1000000",
        "KEYFOB_VEHICLE__SHORT_WINDOW_WAKE_UPS": "1000000",
        "KEYFOB_DELIVERY__ALLOW_PRIVATE_WEBHOOKS": "true",
        "KEYFOB_CREDENTIALS_FILE": "keyfob-demo.json",
    }


def start_embedded(
    procs: Procs, args: argparse.Namespace, extra: dict[str, str], port: int
) -> None:
    env = _common_env(args.vehicles)
    env["KEYFOB_DB"] = f"sqlite:///{procs.work / 'keyfob.db'}"
    env.update(extra)
    serve = procs.start("serve", [KEYFOB, "serve", "--port", str(port)], env, mine=True)
    wait_for_port(port, process=serve, timeout=180)


@contextlib.contextmanager
def start_scaled(
    procs: Procs, args: argparse.Namespace, extra: dict[str, str], port: int
) -> Iterator[None]:
    from flow_parts import scratch_database

    from mosquitto import Mosquitto

    broker = Mosquitto(procs.work)
    broker.start()
    try:
        # serve migrates the database with the code under test, as a deployment's would: a
        # variant running older code then meets the schema it knows.
        with scratch_database(args.db, procs.work, migrate=False) as url:
            env = {**_common_env(args.vehicles), "KEYFOB_DB": url, "KEYFOB_MQTT": broker.url()}
            procs.database = url.rsplit("/", 1)[1]
            procs.broker = broker.process.pid if broker.process is not None else None
            env.update(extra)
            api_only = {
                **env,
                "KEYFOB_RUN_DISPATCHER": "false",
                "KEYFOB_RUN_WORKER": "false",
                "KEYFOB_RUN_SIMULATOR": "false",
            }
            serve = procs.start(
                "serve", [KEYFOB, "serve", "--port", str(port)], api_only, mine=True
            )
            wait_for_port(port, process=serve, timeout=180)
            for n in range(args.dispatchers):
                procs.start(f"dispatcher{n}", [KEYFOB, "dispatcher"], env, mine=True)
            for n in range(args.workers):
                procs.start(f"worker{n}", [KEYFOB, "worker"], env, mine=True)
            sim = [KEYFOB, "sim", "--db", url, "--mqtt", broker.url(), "--speed", "0"]
            procs.start("sim", sim, env, mine=True)
            yield
    finally:
        procs.stop()
        broker.stop()


# -- talking to keyfob ----------------------------------------------------------------------


def _post(url: str, body: Any, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        body: bytes = answer.read()
        return body


class Tenant:
    """The demo partner ``serve`` wrote, its callback to the receiver, and the remote URLs."""

    def __init__(self, work: Path, port: int, receiver: int) -> None:
        demo = json.loads((work / "keyfob-demo.json").read_text())
        partner = demo["partner"]
        token = base64.b64encode(f"{partner['login']}:{partner['password']}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        root = f"http://{LOOPBACK}:{port}/connectedcar/v3/fleets/{demo['fleetId']}"
        callback = {
            "callback": {
                "webhook": {"name": "e2e", "target": f"http://{LOOPBACK}:{receiver}/hook"}
            },
            "remoteTypes": ["Horn"],
        }
        made = _post(
            f"{root}/remote/callbacks?client_id={partner['clientId']}", callback, self.headers
        )
        self.requests = [
            [
                f"{root.split('/connectedcar')[0]}"
                + REMOTES.format(
                    fid=demo["fleetId"],
                    vid=v["vid"],
                    cbid=made["callbackId"],
                    cid=partner["clientId"],
                ),
                HORN,
            ]
            for v in demo["vehicles"]
        ]


# -- one run of one shape -------------------------------------------------------------------


def load(plan: dict[str, Any], budget: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        run_json(
            [str(BENCH_DIR / "e2e_parts.py"), "load", out.name],
            stdin=json.dumps(plan),
            timeout=budget,
        )
        found: dict[str, Any] = json.loads(Path(out.name).read_text())
        return found


def dump(receiver: int, start: int = 0) -> list[list[Any]]:
    """The receiver's events from the ``start``-th on, page after page."""
    events: list[list[Any]] = []
    while True:
        url = f"http://{LOOPBACK}:{receiver}/dump?from={start + len(events)}"
        page = json.loads(_get(url))["events"]
        events += page
        if len(page) < PAGE:
            return events


def wait_done(receiver: int, accepted: list[list[Any]], seen: set[str], timeout: float) -> float:
    """Until every accepted remote's Done has arrived (or ``timeout``): the seconds it took."""
    started = time.monotonic()
    cursor = [0]
    while True:
        for rid, _seq, kind, _at, _lag in dump(receiver, cursor[0]):
            cursor[0] += 1
            if kind.startswith("Done/"):
                seen.add(rid)
        if all(rid in seen for rid, _ in accepted) or time.monotonic() - started > timeout:
            return time.monotonic() - started
        time.sleep(0.2)


def stage_times(
    events: list[list[Any]], sent_at: dict[str, float], pct: float = 50
) -> tuple[dict[str, float], dict[str, float]]:
    """Each stage's ``pct`` percentile after the POST, and from raised to received, for these
    remotes."""
    stages: dict[str, list[float]] = {}
    lags: dict[str, list[float]] = {}
    for rid, _seq, kind, at, lag in events:
        if rid in sent_at:
            stage = kind if kind.startswith("Pending/") else "Done"
            stages.setdefault(stage, []).append((at - sent_at[rid]) * 1000)
            lags.setdefault(stage, []).append(lag)
    return (
        {k: percentile(v, pct) for k, v in stages.items()},
        {k: percentile(v, pct) for k, v in lags.items()},
    )


def phase_paced(
    receiver: int, tenant: Tenant, rate: int, seconds: float, drain: float
) -> dict[str, Any]:
    plan = {
        "mode": "paced",
        "requests": tenant.requests,
        "headers": tenant.headers,
        "rate": rate,
        "duration": seconds,
    }
    sent = load(plan, seconds + 120)
    stopped = time.monotonic()
    events = dump(receiver)
    done_at = {rid: at for rid, _s, kind, at, _lag in events if kind.startswith("Done/")}
    backlog = sum(1 for rid, _ in sent["accepted"] if done_at.get(rid, stopped + 1) > stopped)
    wait_done(receiver, sent["accepted"], set(done_at), drain)
    events = dump(receiver)
    done_at = {rid: at for rid, _s, kind, at, _lag in events if kind.startswith("Done/")}
    latencies = [(done_at.get(rid, float("inf")) - at) * 1000 for rid, at in sent["accepted"]]
    stages, lags = stage_times(events, dict(sent["accepted"]))
    stages99, lags99 = stage_times(events, dict(sent["accepted"]), 99)
    return {
        "offered": rate,
        "accepted": len(sent["accepted"]),
        "answers": sent["answers"],
        "sending_s": sent["sending_s"],
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "backlog": backlog,
        "stage_p50_ms": stages,
        "delivery_lag_p50_ms": lags,
        "stage_p99_ms": stages99,
        "delivery_lag_p99_ms": lags99,
        "answer_p50_ms": sent["answer_p50_ms"],
        "answer_p99_ms": sent["answer_p99_ms"],
        "accepted_list": sent["accepted"],
    }


def phase_saturation(receiver: int, tenant: Tenant, args: argparse.Namespace) -> dict[str, Any]:
    before = int(_get(f"http://{LOOPBACK}:{receiver}/count"))
    plan = {
        "mode": "closed",
        "requests": tenant.requests,
        "headers": tenant.headers,
        "window": args.window,
        "concurrency": 64,
        "duration": args.warmup + args.seconds,
        "count_url": f"http://{LOOPBACK}:{receiver}/count",
        "done_before": before,
    }
    sent = load(plan, args.warmup + args.seconds + 120)
    started = min(at for _, at in sent["accepted"])
    window = (started + args.warmup, started + args.warmup + args.seconds)
    events = dump(receiver)
    done = sum(
        1
        for _r, _s, kind, at, _lag in events
        if kind.startswith("Done/") and window[0] <= at < window[1]
    )
    stages, lags = stage_times(events, dict(sent["accepted"]))
    return {
        "completed_per_s": done / args.seconds,
        "stage_p50_ms": stages,
        "delivery_lag_p50_ms": lags,
        "answer_p50_ms": sent["answer_p50_ms"],
        "accepted_list": sent["accepted"],
        "answers": sent["answers"],
    }


def check(receiver: int, accepted: list[list[Any]]) -> dict[str, Any]:
    """Nothing lost, order kept, and what each remote produced."""
    by_remote: dict[str, list[tuple[int, str]]] = {}
    for rid, seq, kind, _at, _lag in dump(receiver):
        by_remote.setdefault(rid, []).append((seq, kind))
    lost = [
        rid
        for rid, _ in accepted
        if not any(k.startswith("Done/") for _, k in by_remote.get(rid, ()))
    ]
    disordered = [
        rid for rid, seen in by_remote.items() if [s for s, _ in seen] != sorted(s for s, _ in seen)
    ]
    duplicated = [rid for rid, seen in by_remote.items() if len({s for s, _ in seen}) != len(seen)]
    outcomes = Counter(k for seen in by_remote.values() for _, k in seen if k.startswith("Done/"))
    per_remote = Counter(len(seen) for seen in by_remote.values())
    return {
        "lost": len(lost),
        "out_of_order": len(disordered),
        "duplicated": len(duplicated),
        "outcomes": dict(outcomes),
        "events_per_remote": dict(per_remote),
    }


def one_run(args: argparse.Namespace, shape: str, variant: Variant) -> dict[str, Any]:
    sync, extra = variant
    with tempfile.TemporaryDirectory(prefix="keyfob-e2e-") as scratch:
        work = Path(scratch)
        procs = Procs(work)
        receiver_port, api_port = free_port(), free_port()
        receiver = procs.start(
            "receiver",
            [sys.executable, str(BENCH_DIR / "e2e_parts.py"), "receive", str(receiver_port)],
            {},
            mine=False,
        )
        time.sleep(0.5)
        raw = load(
            {
                "mode": "raw",
                "url": f"http://{LOOPBACK}:{receiver_port}/raw",
                "concurrency": 64,
                "duration": args.seconds,
            },
            args.seconds + 60,
        )
        shaped = (
            start_scaled(procs, args, extra, api_port)
            if shape == "scaled"
            else contextlib.nullcontext()
        )
        try:
            with shaped:
                if shape == "embedded":
                    start_embedded(procs, args, extra, api_port)
                tenant = Tenant(work, api_port, receiver_port)
                warm = phase_paced(receiver_port, tenant, 100, 3, 60)  # cars online, code warm
                cpu0 = cpu_s(procs.tree())
                each0 = {pid: cpu_s([pid]) for pid in procs.tree()}
                services0 = {pid: cpu_s([pid]) for pid in procs.services()}
                receiver0, load0 = cpu_s([receiver.pid]), _children_cpu_s()
                peak = [0.0]
                result: dict[str, Any] = {
                    "shape": shape,
                    "sync": sync,
                    "raw_rps": raw["rps"],
                }
                accepted = list(warm["accepted_list"])
                phase_cpu = PhaseCpu(procs)
                sat = phase_saturation(receiver_port, tenant, args)
                peak[0] = max(peak[0], rss_mib(procs.tree()))
                wait_done(receiver_port, sat["accepted_list"], set(), 60)
                sat["cpu_by_process"] = phase_cpu.per_remote(len(sat["accepted_list"]))
                accepted += sat["accepted_list"]
                result["completed_per_s"] = sat["completed_per_s"]
                result["at_saturation"] = {
                    k: sat[k]
                    for k in (
                        "stage_p50_ms",
                        "delivery_lag_p50_ms",
                        "answer_p50_ms",
                        "cpu_by_process",
                    )
                }
                result["ratio"] = sat["completed_per_s"] / raw["rps"]
                for rate in args.rates:
                    phase_cpu = PhaseCpu(procs)
                    paced = phase_paced(receiver_port, tenant, rate, args.seconds, 60)
                    # Below saturation each step carries fewer remotes: what it costs then.
                    paced["cpu_by_process"] = phase_cpu.per_remote(paced["accepted"])
                    paced["cpu_ms_per_remote"] = PhaseCpu.keyfob_total(paced["cpu_by_process"])
                    peak[0] = max(peak[0], rss_mib(procs.tree()))
                    accepted += paced.pop("accepted_list")
                    result[f"at_{rate}"] = paced
                result["cpu_s"] = cpu_s(procs.tree()) - cpu0
                result["cpu_s_by_process"] = {
                    _name(pid): round(cpu_s([pid]) - each0.get(pid, 0.0), 2) for pid in procs.tree()
                }
                counted = len(accepted) - len(warm["accepted_list"])
                result["cpu_ms_per_remote"] = 1000 * result["cpu_s"] / counted
                if shape == "scaled":
                    # What keyfob costs the services it needs: on two cores, their CPU is
                    # taken from keyfob's processes as much as anyone's.
                    services = {
                        pid: cpu_s([pid]) - services0.get(pid, 0.0) for pid in procs.services()
                    }
                    broker_s = services.pop(procs.broker, 0.0) if procs.broker else 0.0
                    result["db_cpu_ms_per_remote"] = 1000 * sum(services.values()) / counted
                    result["broker_cpu_ms_per_remote"] = 1000 * broker_s / counted
                # The bench's own share of the machine: the receiver, and the load generators
                # of the phases (children that have ended, so counted by the kernel for us).
                receiver_s = cpu_s([receiver.pid]) - receiver0
                result["receiver_cpu_ms_per_remote"] = 1000 * receiver_s / counted
                result["load_cpu_ms_per_remote"] = 1000 * (_children_cpu_s() - load0) / counted
                result["peak_rss_mib"] = peak[0]
                result["processes"] = len(procs.tree())
                result["check"] = check(receiver_port, accepted)
                result["accepted"] = len(accepted)
        finally:
            procs.stop()
            if args.logs:
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                for log in work.glob("*.log"):
                    shutil.copy(log, Path(args.logs) / f"{shape}-{sync}-{log.name}")
        return result


def _stages(after_post: dict[str, float], lags: dict[str, float]) -> str:
    return ", ".join(
        f"{stage.removeprefix('Pending/')} {ms:.0f} ({lags.get(stage, float('nan')):.0f})"
        for stage, ms in after_post.items()
    )


def report(results: list[dict[str, Any]]) -> None:
    print(f"\n{machine()}")
    head = (
        "shape     sync    raw/s    done/s   ratio  "
        + "  ".join(f"p50/p99@{r} (backlog)" for r in ARGS.rates)
        + "  CPU ms/remote  RSS MiB  lost order dup"
    )
    print(head)
    for r in results:
        rates = f"{r['raw_rps']:>7.0f}  {r['completed_per_s']:>7.0f}  {r['ratio']:.4f}"
        cells = [f"{r['shape']:<9} {r['sync']:<7} {rates}"]
        for rate in ARGS.rates:
            p = r[f"at_{rate}"]
            cells.append(f"{p['p50_ms']:>7.1f}/{p['p99_ms']:<8.1f}({p['backlog']})")
        c = r["check"]
        cells.append(f"{r['cpu_ms_per_remote']:>6.2f}")
        cells.append(
            f"{r['peak_rss_mib']:>7.0f}  {c['lost']:>4} {c['out_of_order']:>5} {c['duplicated']:>3}"
        )
        print("  ".join(cells))
    print("\neach stage: p50 (or p99) after the POST (same from raised to received); the answer")
    phases = [("saturation", "at_saturation"), (f"{ARGS.rates[0]}/s", f"at_{ARGS.rates[0]}")]
    for r in results:
        for label, key in phases:
            p = r[key]
            for pct, suffix in (("p50", ""), ("p99", " p99")):
                if f"stage_{pct}_ms" not in p:
                    continue
                stages = _stages(p[f"stage_{pct}_ms"], p.get(f"delivery_lag_{pct}_ms", {}))
                answer = p[f"answer_{pct}_ms"]
                line = f"  {r['shape']} {r['sync']} {label}{suffix}: {stages}; answer {answer:.0f}"
                if pct == "p50" and "cpu_ms_per_remote" in p:
                    line += f"; keyfob's CPU {p['cpu_ms_per_remote']:.2f} ms/remote"
                print(line)
    print("\nCPU per remote by process (ms), in each phase")
    for r in results:
        for label, key in [("saturation", "at_saturation")] + [
            (f"{rate}/s", f"at_{rate}") for rate in ARGS.rates
        ]:
            by_process = r[key].get("cpu_by_process", {})
            listed = ", ".join(f"{name} {ms:.2f}" for name, ms in by_process.items())
            print(f"  {r['shape']} {r['sync']} {label}: {listed}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["shape"], r["sync"]), []).append(r)
    print("\nmedians")
    for (shape, sync), runs in groups.items():
        ratio = median([r["ratio"] for r in runs])
        done = median([r["completed_per_s"] for r in runs])
        line = f"  {shape} {sync}: ratio {ratio:.4f}, done/s {done:.0f}"
        for rate in ARGS.rates:
            line += f", p99@{rate} {median([r[f'at_{rate}']['p99_ms'] for r in runs]):.1f} ms"
        line += f", CPU {median([r['cpu_ms_per_remote'] for r in runs]):.2f} ms/remote"
        for rate in ARGS.rates:
            line += (
                f" ({median([r[f'at_{rate}']['cpu_ms_per_remote'] for r in runs]):.2f} at {rate}/s)"
            )
        if "db_cpu_ms_per_remote" in runs[0]:
            database = median([r["db_cpu_ms_per_remote"] for r in runs])
            broker = median([r["broker_cpu_ms_per_remote"] for r in runs])
            line += f" (and PostgreSQL {database:.2f}, Mosquitto {broker:.2f})"
        load = median([r["load_cpu_ms_per_remote"] for r in runs])
        received = median([r["receiver_cpu_ms_per_remote"] for r in runs])
        line += f"; the bench's load generator {load:.2f} and receiver {received:.2f}"
        print(line)
    for r in results:
        print(json.dumps(r), file=sys.stderr)


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=["embedded", "scaled"], default="embedded")
    parser.add_argument(
        "--db", default=os.environ.get("KEYFOB_TEST_PG"), help="PostgreSQL server (scaled)"
    )
    parser.add_argument(
        "--sync", default="", help="comma-separated SQLite synchronous modes to alternate"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:ENV=VALUE,...: another setup to alternate with (repeatable)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=400)
    parser.add_argument(
        "--rates", type=lambda s: [int(x) for x in s.split(",")], default=[300, 600]
    )
    parser.add_argument("--dispatchers", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--logs", help="copy every process's log into this folder")
    ARGS = parser.parse_args()
    variants: list[Variant] = [
        (mode, {"KEYFOB_DB_SQLITE_SYNCHRONOUS": mode}) for mode in ARGS.sync.split(",") if mode
    ]
    for text in ARGS.variant:
        name, _, pairs = text.partition(":")
        variants.append((name, dict(p.split("=", 1) for p in pairs.split(",") if p)))
    variants = variants or [("default", {})]
    results = []
    for run in range(ARGS.runs):
        for variant in variants:
            print(
                f"run {run + 1}/{ARGS.runs} {ARGS.shape} {variant[0]}", file=sys.stderr, flush=True
            )
            results.append(one_run(ARGS, ARGS.shape, variant))
    report(results)


ARGS: argparse.Namespace
Variant = tuple[str, dict[str, str]]
"""A name and the environment it adds to keyfob's processes."""

if __name__ == "__main__":
    main()
