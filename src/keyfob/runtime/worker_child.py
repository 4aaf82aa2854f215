"""``keyfob serve``'s delivery worker in a child process: the second core, supervised.

One Python process runs on one core at a time. Under load the delivery worker (building,
signing and POSTing every notification, claiming and recording them) is about a third of what
``serve`` does, so ``serve`` runs it as a child process of its own; the database is shared
(SQLite in WAL mode lets the child read while the parent writes, and each write is one short
transaction; PostgreSQL is shared anyway). It is the same role ``keyfob worker`` runs.

The parent talks to the child over its standard streams only:

* **stdin**, parent → child: the first line is the settings as JSON; each byte after it is a
  nudge (work was stored: claim now rather than at the next poll); end of file means stop. A
  parent that dies, however it dies, closes it: the child never outlives ``serve``.
* **stdout**, child → parent: one JSON line when the worker has started, then, twice a second
  while anything happened, what its delivery metrics observed, which the parent adds to the
  ``/metrics`` it serves. The child logs on stderr, which it shares with the parent.

The child ignores SIGINT: Ctrl-C in a terminal reaches the whole process group, and it is the
parent that decides when the worker stops (after the API, so that nothing is left half-sent).
A child that exits on its own is logged and started again, after a delay that grows while it
keeps failing. ``run_worker_in_child = false`` keeps the worker inside ``serve``.

The same supervision runs the vehicle side (the dispatcher, its link and the simulated cars)
in a child of its own when ``run_vehicles_in_child`` is set: ``--role vehicles``. The parent
nudges it as it nudges the worker (remotes accepted), and its remote counts are relayed like
the worker's. With ``delivery.inline`` (the default on SQLite) its dispatcher hands what
it stores to the delivery child over a socket (``notifications.handover_local``); without,
what it stores reaches the delivery child through the database's nudges (``store.nudge``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson

from keyfob.config import Settings
from keyfob.kit import logs, loops
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.policy import Abandon, Decision, Expire
from keyfob.remotes.metrics import RemoteMetrics
from keyfob.runtime.context import AppContext, build_context
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.settle import settled_heap
from keyfob.runtime.vehicle_side import vehicle_side
from keyfob.store.engine import is_sqlite, sqlite_file

log = logging.getLogger("keyfob.runtime.worker")

READY_TIMEOUT_S = 60.0
RELAY_EVERY_S = 0.5
RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
VEHICLES_GRACE_S = 15.0
STABLE_AFTER_S = 60.0
"""A child that ran this long before exiting is restarted after the first, shortest delay."""


def shares_database(settings: Settings) -> bool:
    """Whether another process can open the database ``settings`` name (not SQLite in memory)."""
    return not is_sqlite(settings.db) or sqlite_file(settings.db) is not None


# -- the parent's side -----------------------------------------------------------------------


LABELS = {"delivery": "the delivery worker", "vehicles": "the vehicle side"}
"""What a child can run, as the log names it: the delivery worker, or the vehicle side
(``runtime.vehicle_role``)."""
ROLES = tuple(LABELS)


class WorkerChild:
    """Starts the child, relays nudges to it and metrics from it, restarts it, stops it."""

    def __init__(
        self,
        settings: Settings,
        metrics: DeliveryMetrics,
        *,
        role: str = "delivery",
        remote_metrics: RemoteMetrics | None = None,
    ) -> None:
        assert role in ROLES
        self.settings = settings
        self.metrics = metrics
        self.role = role
        self.label = LABELS[role]
        self.remote_metrics = remote_metrics
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._nudge_due = False
        self._supervisor: asyncio.Task[None] | None = None

    def _command(self) -> list[str]:
        root = logging.getLogger()
        json_logs = any(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers)
        form = "json" if json_logs else "text"
        level = logging.getLevelName(root.getEffectiveLevel()).lower()
        return [
            *(sys.executable, "-m", __name__, "--role", self.role),
            *("--log-level", level, "--log-format", form),
        ]

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self._command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(self.settings.model_dump_json().encode() + b"\n")
        try:
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line.startswith(b'{"ready"'):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            code = await process.wait()
            raise RuntimeError(f"{self.label} process did not start (exit code {code})")
        return process

    async def start(self) -> None:
        self.process = await self._spawn()
        log.info("%s started in process %d", self.label, self.process.pid)
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.role}-child")

    def not_running(self) -> str | None:
        """For ``/ready``: why the child does not run now (exited, being started again)."""
        process = self.process
        if process is None or process.returncode is not None:
            return f"{self.label} process is not running"
        return None

    def nudge(self) -> None:
        """Work was stored: one byte to the child, at most one per turn of the event loop."""
        if not self._nudge_due:
            self._nudge_due = True
            asyncio.get_running_loop().call_soon(self._send_nudge)

    def _send_nudge(self) -> None:
        self._nudge_due = False
        process = self.process
        if process is not None and process.stdin is not None and not process.stdin.is_closing():
            process.stdin.write(b".")

    async def _supervise(self) -> None:
        failures = 0
        while True:
            process = self.process
            assert process is not None
            assert process.stdout is not None
            started = time.monotonic()
            async for line in process.stdout:
                self._relay(line)
            code = await process.wait()
            if self._stopping:
                return
            failures = 0 if time.monotonic() - started > STABLE_AFTER_S else failures + 1
            delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)]
            log.error(
                "%s (process %d) exited with code %s; starting it again in %g s",
                self.label,
                process.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            try:
                self.process = await self._spawn()
            except (RuntimeError, OSError) as problem:
                log.error("%s", problem)
                continue
            log.info("%s started again in process %d", self.label, self.process.pid)

    def _relay(self, line: bytes) -> None:
        try:
            seen = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        apply_observed(self.metrics, seen)
        if self.remote_metrics is not None and "remotes" in seen:
            self.remote_metrics.add(seen["remotes"])

    async def stop(self, grace_s: float) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.stdin is not None:
            process.stdin.close()  # end of file: the child finishes what is under way and exits
        if self._supervisor is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._supervisor), grace_s)
            except TimeoutError:
                log.warning("%s did not stop within %g s; killing it", self.label, grace_s)
                if process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                await self._supervisor


@asynccontextmanager
async def _supervised(
    child: WorkerChild,
    wakers: list[Callable[[], None]],
    checks: dict[str, Callable[[], str | None]],
    check: str,
    grace_s: float,
) -> AsyncIterator[WorkerChild]:
    """The child started, nudged by ``wakers`` and checked by ``/ready``, stopped at the end."""
    await child.start()
    wakers.append(child.nudge)
    checks[check] = child.not_running
    try:
        yield child
    finally:
        checks.pop(check, None)
        wakers.remove(child.nudge)
        await child.stop(grace_s)


def delivery_child_role(ctx: AppContext) -> AbstractAsyncContextManager[WorkerChild]:
    child = WorkerChild(ctx.settings, ctx.metrics)
    grace_s = ctx.settings.delivery.timeout_s + 10
    return _supervised(child, ctx.delivery_wakers, ctx.checks, "delivery", grace_s)


def vehicle_child_role(ctx: AppContext) -> AbstractAsyncContextManager[WorkerChild]:
    """The dispatcher and the simulated fleet in a child, nudged like the delivery child. What
    it stores reaches the delivery worker through the database's nudges (``store.nudge``)."""
    child = WorkerChild(
        ctx.settings, ctx.metrics, role="vehicles", remote_metrics=ctx.remote_metrics
    )
    return _supervised(child, ctx.wakers, ctx.checks, "dispatcher", VEHICLES_GRACE_S)


# -- metrics across the pipe -----------------------------------------------------------------


class RelayedMetrics(DeliveryMetrics):
    """The child's metrics: counted here as usual, and kept for the parent until relayed."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[tuple[bool, float]] = []
        self.give_ups: dict[str, int] = {}
        self.queue: tuple[int, float] | None = None

    def observe_attempt(self, outcome: Outcome) -> None:
        super().observe_attempt(outcome)
        self.attempts.append((outcome.delivered, outcome.latency_ms / 1000))

    def observe_decision(self, decision: Decision) -> None:
        super().observe_decision(decision)
        if isinstance(decision, Abandon | Expire):
            key = "abandoned" if isinstance(decision, Abandon) else "expired"
            self.give_ups[key] = self.give_ups.get(key, 0) + 1

    def observe_expired(self, count: int) -> None:
        super().observe_expired(count)
        self.give_ups["expired"] = self.give_ups.get("expired", 0) + count

    def set_queue(self, depth: int, oldest_due_age_seconds: float) -> None:
        super().set_queue(depth, oldest_due_age_seconds)
        self.queue = (depth, oldest_due_age_seconds)

    def take(self) -> dict[str, Any] | None:
        """What was observed since the last call, or None when nothing was."""
        if not (self.attempts or self.give_ups or self.queue):
            return None
        seen = {"attempts": self.attempts, "give_ups": self.give_ups, "queue": self.queue}
        self.attempts, self.give_ups, self.queue = [], {}, None
        return seen


def apply_observed(metrics: DeliveryMetrics, seen: dict[str, Any]) -> None:
    """Count in ``metrics`` what a child observed (``RelayedMetrics.take``)."""
    attempts = seen.get("attempts") or ()
    delivered = sum(1 for ok, _ in attempts if ok)
    for outcome, count in (("delivered", delivered), ("failed", len(attempts) - delivered)):
        if count:
            metrics.deliveries.labels(outcome=outcome).inc(count)
    for _, seconds in attempts:
        metrics.attempt_latency.observe(seconds)
    for outcome, count in (seen.get("give_ups") or {}).items():
        if outcome in ("abandoned", "expired"):
            metrics.deliveries.labels(outcome=outcome).inc(count)
    if seen.get("queue"):
        depth, age = seen["queue"]
        metrics.set_queue(depth, age)


# -- the child's side ------------------------------------------------------------------------


async def _child(settings: Settings, role: str) -> None:
    ctx = build_context(settings)
    relayed = RelayedMetrics()
    ctx.metrics = relayed
    ctx.remote_metrics = RemoteMetrics()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)

    async def nudges() -> None:
        while chunk := await reader.read(4096):
            del chunk
            ctx.wake()
        stop.set()  # end of file: the parent wants us gone, or is gone

    def relay() -> None:
        seen = relayed.take()
        remotes = ctx.remote_metrics.take()
        if remotes is not None:
            seen = {**(seen or {}), "remotes": remotes}
        if seen is not None:
            sys.stdout.buffer.write(orjson.dumps(seen) + b"\n")
            sys.stdout.buffer.flush()

    async def relaying() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RELAY_EVERY_S)
            relay()

    hosted = delivery_role(ctx) if role == "delivery" else vehicle_side(ctx)
    try:
        async with hosted, settled_heap(ctx):
            sys.stdout.write('{"ready": true}\n')
            sys.stdout.flush()
            tasks = [
                asyncio.create_task(nudges(), name="nudges"),
                asyncio.create_task(relaying(), name="metrics-relay"),
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        relay()
    finally:
        await ctx.database.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="keyfob-child")
    parser.add_argument("--role", choices=ROLES, default="delivery")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    line = sys.stdin.buffer.readline()
    if not line:
        return
    settings = Settings.model_validate_json(line)
    loops.run(_child(settings, args.role))


if __name__ == "__main__":
    main()
