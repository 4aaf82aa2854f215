"""The delivery worker: claim due notifications, POST them, record the outcome.

Three cooperating loops keep the database off the hot path of the network:

* the claimer leases up to ``claim_limit`` rows at a time while fewer than ``max_in_flight``
  requests are under way, and sleeps until woken (a new event in this process) or ``poll_s``;
* each POST runs as its own named task, outside any transaction;
* the recorder writes finished attempts in groups, one short transaction per group.

``run_once`` does one claim → send → record cycle and waits for it, for tests driving an
injected clock and for the crash test's restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from keyfob.callbacks.attributes import render_request_parts
from keyfob.callbacks.schemas import CallbackSubscribe, load_stored
from keyfob.callbacks.secrets import active_secrets
from keyfob.db import Database
from keyfob.kit.clock import Clock, as_utc
from keyfob.kit.ids import new_id
from keyfob.notifications import queue
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.payload import EventRecord, build_remote_events, encode
from keyfob.notifications.policy import Decision, RetryPolicy, decide
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.signing import sign

log = logging.getLogger("keyfob.delivery")


@dataclass
class WorkerOptions:
    lease_s: float = 30.0
    claim_limit: int = 200
    max_in_flight: int = 400
    poll_s: float = 0.25
    record_every_s: float = 0.01
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}-{new_id()[:8]}")


@dataclass(frozen=True)
class Request:
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    message_id: str


def _event(stored: dict[str, Any]) -> EventRecord:
    return EventRecord(
        event_id=stored["event_id"],
        remote_id=stored["remote_id"],
        seq=stored["seq"],
        vin=stored["vin"],
        event_date=as_utc(datetime.fromisoformat(stored["event_date"].replace("Z", "+00:00"))),
        remote_type=stored["remote_type"],
        event_type=stored["event_type"],
        status=stored["status"],
        failure_cause=stored.get("failure_cause"),
        feedback_detail=stored.get("feedback_detail"),
    )


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        sender: WebhookSender,
        *,
        clock: Clock,
        options: WorkerOptions | None = None,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.database = database
        self.sender = sender
        self.clock = clock
        self.options = options or WorkerOptions()
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._results: asyncio.Queue[queue.Result] = asyncio.Queue()
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._subscriptions: dict[tuple[str, str], CallbackSubscribe] = {}

    # -- preparing one POST -------------------------------------------------------------

    def _subscription(self, target: queue.Target) -> CallbackSubscribe:
        # Keyed by the stored body itself: a PUT in the same clock tick as the previous write
        # (a frozen clock, or two processes) must still be seen.
        key = (target.id, json.dumps(target.subscribe, sort_keys=True))
        found = self._subscriptions.get(key)
        if found is None:
            if len(self._subscriptions) > 10_000:
                self._subscriptions.clear()
            found = self._subscriptions[key] = load_stored(target.subscribe)
        return found

    def prepare(self, delivery: queue.Delivery) -> Request:
        target = delivery.target
        subscribe = self._subscription(target)
        events = [_event(row.event) for row in delivery.rows]
        first = events[0]
        variables = {
            "vin": first.vin,
            "remoteType": first.remote_type,
            "callbackID": target.id,
            "fleetID": target.fleet_id,
        }
        parts = render_request_parts(subscribe.attributes, variables)
        body = encode(build_remote_events(target.id, parts.body, events))
        ids = [row.id for row in delivery.rows]
        message_id = (
            ids[0] if len(ids) == 1 else hashlib.sha256("|".join(ids).encode()).hexdigest()[:32]
        )
        now = self.clock()
        headers = dict(parts.headers)
        headers["Content-Type"] = "application/json"
        secrets = active_secrets(target.secrets, now)
        if secrets:
            headers.update(sign(secrets, f"msg_{message_id}", int(now.timestamp()), body))
        return Request(subscribe.target, parts.query, headers, body, f"msg_{message_id}")

    def decisions(self, delivery: queue.Delivery, outcome: Any) -> list[Decision]:
        retry = self._subscription(delivery.target).retry
        policy = RetryPolicy(retry.policy.value, retry.retry_number, retry.retry_delay)
        now = self.clock()
        return [
            decide(
                policy,
                attempts_made=row.attempts + 1,
                outcome=outcome,
                raised_at=row.raised_at,
                now=now,
            )
            for row in delivery.rows
        ]

    async def send(self, delivery: queue.Delivery) -> queue.Result:
        started = self.clock()
        request = self.prepare(delivery)
        outcome = await self.sender.post(
            request.url, query=request.query, headers=request.headers, body=request.body
        )
        decisions = self.decisions(delivery, outcome)
        if self.metrics is not None:
            for decision in decisions:
                self.metrics.observe_decision(decision)
        return queue.Result(delivery, request.message_id, started, outcome, decisions)

    # -- one cycle, for tests and restarts ----------------------------------------------

    async def claim(self, limit: int) -> list[queue.Delivery]:
        now = self.clock()
        async with self.database.transaction() as conn:
            expired = await queue.expire_overdue(conn, now=now)
            deliveries = await queue.claim(
                conn,
                owner=self.options.owner,
                now=now,
                lease=timedelta(seconds=self.options.lease_s),
                limit=limit,
            )
        if expired and self.metrics is not None:
            # Rows that reached the horizon unsent (held, or due too late) are give-ups too.
            self.metrics.deliveries.labels(outcome="expired").inc(expired)
        return deliveries

    async def record(self, results: list[queue.Result]) -> None:
        async with self.database.transaction() as conn:
            await queue.record(conn, owner=self.options.owner, results=results, now=self.clock())

    async def run_once(self) -> int:
        """Claim everything due (up to the claim limit), send it, record it; returns POSTs made."""
        deliveries = await self.claim(self.options.claim_limit)
        results = await asyncio.gather(*(self.send(d) for d in deliveries))
        await self.record(list(results))
        return len(deliveries)

    # -- the long-running loops ---------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._recorder(), name="delivery-recorder")
            group.create_task(self._metrics_loop(), name="delivery-metrics")
            await self._claimer(group)

    async def _claimer(self, group: asyncio.TaskGroup) -> None:
        while not self._stopping.is_set():
            room = self.options.max_in_flight - self._in_flight
            deliveries: list[queue.Delivery] = []
            if room > 0:
                try:
                    deliveries = await self.claim(min(room, self.options.claim_limit))
                except Exception:
                    log.exception("claiming notifications failed; retrying shortly")
            for delivery in deliveries:
                self._in_flight += 1
                self._drained.clear()
                group.create_task(self._send_one(delivery), name=f"deliver-{delivery.rows[0].id}")
            # Also wait when full: a loop that never awaits would starve the very sends
            # whose completion frees room.
            if room <= 0 or len(deliveries) < min(room, self.options.claim_limit):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_s)
                self._wake.clear()
        await self._drained.wait()
        await self._results.put(_STOP)

    async def _send_one(self, delivery: queue.Delivery) -> None:
        try:
            await self._results.put(await self.send(delivery))
        except Exception:
            # The lease expires and another cycle takes the rows again: nothing is lost.
            log.exception("preparing or sending a notification failed")
            self._finished(1)

    def _finished(self, count: int) -> None:
        self._in_flight -= count
        if self._in_flight <= 0:
            self._drained.set()

    async def _recorder(self) -> None:
        while True:
            first = await self._results.get()
            if first is _STOP:
                return
            batch = [first]
            await asyncio.sleep(self.options.record_every_s)
            stop = False
            while not self._results.empty() and len(batch) < 1000:
                item = self._results.get_nowait()
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                await self.record(batch)
            except Exception:
                log.exception(
                    "recording %d delivery results failed; leases will expire", len(batch)
                )
            self._finished(len(batch))
            self._wake.set()
            if stop:
                return

    async def _metrics_loop(self) -> None:
        while not self._stopping.is_set() and self.metrics is not None:
            try:
                async with self.database.read() as conn:
                    depth, age = await queue.queue_stats(conn, now=self.clock())
                self.metrics.set_queue(depth, age)
            except Exception:
                log.exception("reading queue statistics failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 2.0)


_STOP: Any = object()
