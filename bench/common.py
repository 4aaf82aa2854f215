"""Plumbing shared by the benchmarks: child processes, one load generator, and the statistics.

The machines are small and shared, so a figure only means something next to a baseline measured
in the same run with the same tools. Everything that could differ between the two sides of a
comparison (server options, the load generator, how percentiles are taken) lives here once.

Run as a script (``python bench/common.py load``) it is the load generator: it reads a plan as
JSON on standard input, drives HTTP POSTs at a fixed concurrency for a fixed time after a
warm-up, and prints one JSON result line. It runs as its own process so it never competes with
the server for the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import httptools

LOOPBACK = "127.0.0.1"
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
BENCH_DIR = Path(__file__).resolve().parent

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]


# -- event loops and servers ----------------------------------------------------------------


def run_async(main: Any) -> Any:
    """Run a coroutine on uvloop when it is installed (every process of a run does the same)."""
    if uvloop is not None:
        return uvloop.run(main)
    return asyncio.run(main)


def loop_name() -> str:
    return "uvloop" if uvloop is not None else "asyncio"


def uvicorn_options() -> dict[str, Any]:
    """The one set of server options both sides of a comparison use."""
    return {
        "host": LOOPBACK,
        "loop": loop_name(),
        "http": "httptools",
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "workers": 1,
    }


def serve(app: Any, port: int) -> None:
    """Serve an ASGI app in this process until SIGINT/SIGTERM (uvicorn shuts down cleanly)."""
    import uvicorn

    # uvicorn re-raises the signal after its graceful shutdown; that is the normal way out.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(uvicorn.Config(app, port=port, **uvicorn_options())).run()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, *, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until something accepts connections on ``port`` (uvicorn binds after its lifespan)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before serving")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {LOOPBACK}:{port} within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A benchmark process started by the run, stopped by it, never left behind."""

    process: subprocess.Popen[bytes]
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def server(args: Sequence[str], *, port: int, timeout: float = 60.0) -> Iterator[Child]:
    """Start ``python <args>`` listening on ``port``, wait until it serves, stop it on exit."""
    process = subprocess.Popen([sys.executable, *args])
    child = Child(process, port)
    try:
        wait_for_port(port, process=process, timeout=timeout)
        yield child
    finally:
        child.stop()


def run_json(args: Sequence[str], *, stdin: str = "", timeout: float = 300.0) -> dict[str, Any]:
    """Run ``python <args>`` to the end and return the JSON object on its last output line."""
    try:  # the child's standard error goes straight to ours
        done = subprocess.run(
            [sys.executable, *args],
            input=stdin.encode(),
            stdout=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{args[0]} did not finish within {timeout:g} s (killed)") from None
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} exited with {done.returncode}")
    lines = done.stdout.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"{args[0]} printed nothing")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}, {loop_name()}"


# -- a counting webhook receiver ------------------------------------------------------------


@dataclass
class Counts:
    """What a receiver has seen: POSTs, events in them, and when the first began and last ended."""

    requests: int = 0
    events: int = 0
    first: float = 0.0
    last: float = 0.0

    def as_json(self) -> bytes:
        seconds = self.last - self.first if self.requests else 0.0
        return json.dumps(
            {"requests": self.requests, "events": self.events, "seconds": seconds}
        ).encode()


class Hook(asyncio.Protocol):
    """HTTP/1.1 keep-alive: any POST → 200 (counted); any other request → the counts as JSON."""

    def __init__(self, counts: Counts, marker: bytes) -> None:
        self.counts = counts
        self.marker = marker
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_headers_complete(self) -> None:
        if not self.counts.first and self.parser.get_method() == b"POST":
            self.counts.first = time.perf_counter()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"POST":
            self.counts.requests += 1
            self.counts.events += b"".join(self.body).count(self.marker)
            self.counts.last = time.perf_counter()
            self.transport.write(_OK)
        else:
            stats = self.counts.as_json()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(stats)}"
            )
            self.transport.write(head.encode() + b"\r\n\r\n" + stats)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def receive(port: int, marker: bytes) -> None:
    """Serve until SIGINT/SIGTERM; an event is one occurrence of ``marker`` in a body."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    counts = Counts()
    hooks = await loop.create_server(lambda: Hook(counts, marker), LOOPBACK, port, backlog=1024)
    async with hooks:
        await stop.wait()


def receiver_stats(port: int) -> dict[str, Any]:
    url = f"http://{LOOPBACK}:{port}/stats"
    with urllib.request.urlopen(url, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


async def wait_for_events(port: int, events: int, deadline: float) -> bool:
    """Poll the receiver until it has counted ``events`` (True) or the deadline passes."""
    async with aiohttp.ClientSession() as session:
        return await _poll(session, port, events, deadline)


async def _poll(session: aiohttp.ClientSession, port: int, events: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        async with session.get(f"http://{LOOPBACK}:{port}/stats") as answer:
            if (await answer.json())["events"] >= events:
                return True
        await asyncio.sleep(0.05)
    return False


# -- the load generator ----------------------------------------------------------------------


@dataclass
class LoadPlan:
    """What to send: requests are taken in turn from ``requests`` (url, body) by every slot."""

    requests: list[tuple[str, str]]
    headers: dict[str, str]
    concurrency: int = 32
    duration_s: float = 10.0
    warmup_s: float = 2.0
    expect: int = 202


@dataclass
class _Tally:
    start: float = 0.0
    end: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    window: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)


async def _slot(session: aiohttp.ClientSession, plan: LoadPlan, tally: _Tally, offset: int) -> None:
    index = offset
    while time.perf_counter() < tally.end:
        url, body = plan.requests[index % len(plan.requests)]
        index += plan.concurrency
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=plan.headers) as answer:
                await answer.read()
                outcome = str(answer.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            outcome = type(error).__name__
        finished = time.perf_counter()
        tally.total[outcome] += 1
        if tally.start <= finished <= tally.end:  # completions in the window: the throughput
            tally.window[outcome] += 1
            tally.latencies_ms.append((finished - started) * 1000)


async def generate_load(plan: LoadPlan) -> dict[str, Any]:
    """Drive ``plan`` and summarise the measured window (the warm-up is sent, not counted)."""
    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        now = time.perf_counter()
        tally = _Tally(start=now + plan.warmup_s, end=now + plan.warmup_s + plan.duration_s)
        cpu_at_start: float | None = None

        async def note_cpu() -> None:
            nonlocal cpu_at_start
            await asyncio.sleep(plan.warmup_s)
            cpu_at_start = time.process_time()

        watcher = asyncio.create_task(note_cpu(), name="load-cpu")
        await asyncio.gather(*(_slot(session, plan, tally, n) for n in range(plan.concurrency)))
        await watcher
        cpu_used = time.process_time() - (cpu_at_start or 0.0)
    answered = sum(tally.window.values())
    good = tally.window[str(plan.expect)]
    return {
        "requests": answered,
        "rps": answered / plan.duration_s,
        "errors": answered - good,
        "p50_ms": percentile(tally.latencies_ms, 50),
        "p90_ms": percentile(tally.latencies_ms, 90),
        "p99_ms": percentile(tally.latencies_ms, 99),
        "window": dict(tally.window),
        "total": dict(tally.total),
        "generator_cpu": cpu_used / plan.duration_s,
    }


def run_load(plan: LoadPlan) -> dict[str, Any]:
    """Run the load generator in its own process and return its summary."""
    budget = plan.warmup_s + plan.duration_s + 60
    return run_json(
        [str(BENCH_DIR / "common.py"), "load"], stdin=json.dumps(asdict(plan)), timeout=budget
    )


# -- the simplest sender: one body, N times ------------------------------------------------


async def post_loop(
    url: str, body: str, headers: dict[str, str], *, requests: int, concurrency: int
) -> dict[str, Any]:
    """``requests`` POSTs of ``body``, ``concurrency`` at a time, over one keep-alive session."""
    sent = failures = 0
    started = time.process_time()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def slot() -> None:
            nonlocal sent, failures
            while sent < requests:
                sent += 1
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    failures += answer.status != 200

        await asyncio.gather(*(slot() for _ in range(concurrency)))
    return {"cpu_s": time.process_time() - started, "failures": failures}


def run_post_loop(url: str, body: str, headers: dict[str, str], **counts: int) -> dict[str, Any]:
    """``post_loop`` in its own process (keyword arguments: ``requests``, ``concurrency``)."""
    document = json.dumps({"url": url, "body": body, "headers": headers, **counts})
    return run_json([str(BENCH_DIR / "common.py"), "post"], stdin=document, timeout=600)


USAGE = "common.py load|post < plan.json, or common.py receive PORT MARKER (used by the benches)"

if __name__ == "__main__":
    match sys.argv[1:]:
        case ["load"]:
            print(json.dumps(run_async(generate_load(LoadPlan(**json.loads(sys.stdin.read()))))))
        case ["post"]:
            print(json.dumps(run_async(post_loop(**json.loads(sys.stdin.read())))))
        case ["receive", port, marker]:
            run_async(receive(int(port), marker.encode()))
        case _:
            sys.exit(USAGE)
