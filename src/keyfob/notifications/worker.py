"""The delivery worker: claim due notifications, POST them, record the outcome.

Cooperating loops keep the database off the hot path of the network:

* the claimer leases up to ``claim_limit`` rows at a time while fewer than ``max_in_flight``
  requests are under way; a batch is one request, so a claim may carry several side by side.
  It sleeps, until woken (a new event in this process, a finished attempt) or ``poll_s``,
  once a claim brings less than it had room for;
* each POST runs as its own named task, outside any transaction;
* the recorder writes finished attempts in groups, one short transaction per group;
* the expirer moves rows past the 72 h horizon on every ``expire_every_s``: that sweep reads
  every overdue row, so it stays out of the claim, which must cost what it takes;
* the lease keeper renews the leases of claimed rows not yet recorded (``leases``), so a POST
  waiting behind its receiver's concurrency limit is never claimed a second time.

``take`` posts rows that a dispatcher of this process leased to this worker in the transaction
that stored them (``notifications.handover``), through the same chains, records and leases as
claimed rows.

``run_once`` does one expire → claim → send → record cycle and waits for it, for tests driving
an injected clock and for the crash test's restarts.

Both faces go through the same loops. What differs is picked per callback: a fleet callback's
``RemoteEvents`` body and its own ``retryPolicy``; a user callback's ``Message`` body
(``notifications.user_delivery``) and the platform's fixed policy, every 10 s until delivered
or the 72 h horizon (``policy.B2C_POLICY``).

A user callback's channel is picked where a claimed delivery becomes an attempt (``send``):
a POST for a webhook, a frame on the callback's connection for a WebSocket
(``ws_channel``), FCM requests for push (``push_channel``). Claims, order, retries and the
delivery log are the same for all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import orjson

from keyfob.callbacks.attributes import (
    RenderedAttributes,
    render_request_parts,
    varies_per_event,
)
from keyfob.callbacks.models import Face
from keyfob.callbacks.schemas import CallbackSubscribe, load_stored
from keyfob.callbacks.secrets import active_secrets
from keyfob.callbacks.user_schemas import PUSH, WEBSOCKET
from keyfob.callbacks.user_service import forget_push_devices
from keyfob.kit.clock import Clock
from keyfob.kit.ids import random_suffix
from keyfob.notifications import ledger, queue
from keyfob.notifications.failures import log_failure
from keyfob.notifications.handover import Handover, Lessee
from keyfob.notifications.leases import LeaseKeeper
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.outbox import drop_pending
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.payload import encode, remote_events_body, stored_remote_event
from keyfob.notifications.policy import B2C_POLICY, Decision, Delivered, RetryPolicy, decide
from keyfob.notifications.push_channel import PushChannel
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.signing import sign
from keyfob.notifications.user_delivery import UserMessages
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.store.engine import Database
from keyfob.store.one_trip import run_in_one_trip
from keyfob.store.units import ready, run_unit, steps

log = logging.getLogger("keyfob.delivery")


@dataclass
class WorkerOptions:
    """How the loops pace themselves.

    ``claim_limit`` rows at most per claim (one short transaction); ``max_in_flight`` POSTs
    under way at once, which bounds how long the last of them may wait behind a slow receiver
    while its lease runs; ``max_rows_in_flight`` the notifications they carry, for memory.
    """

    lease_s: float = 30.0
    claim_limit: int = 1000
    max_in_flight: int = 400
    max_rows_in_flight: int = 10_000
    poll_s: float = 0.25
    record_every_s: float = 0.01
    expire_every_s: float = 5.0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}-{random_suffix(8)}")


@dataclass(frozen=True)
class Request:
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    message_id: str


@dataclass(frozen=True, slots=True)
class _Callback:
    """What delivery needs of a callback's stored body, parsed once per version of it."""

    subscribe: CallbackSubscribe
    policy: RetryPolicy
    parts: RenderedAttributes | None
    """The attributes rendered once and for all, when none of them depends on the event."""


_DELIVERED = Delivered()
Sent = asyncio.Future[bool]
"""Resolved once a POST's outcome is known: True when it was delivered."""


def _variables(target: queue.Target, vin: str, remote_type: str) -> dict[str, str]:
    return {
        "vin": vin,
        "remoteType": remote_type,
        "callbackID": target.id,
        "fleetID": target.fleet_id or "",
    }


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        sender: WebhookSender,
        *,
        clock: Clock,
        options: WorkerOptions | None = None,
        metrics: DeliveryMetrics | None = None,
        websocket: WebSocketChannel | None = None,
        push: PushChannel | None = None,
    ) -> None:
        self.database = database
        self.sender = sender
        self.websocket = websocket
        self.push = push
        self.clock = clock
        self.options = options or WorkerOptions()
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._results: asyncio.Queue[ledger.Result] = asyncio.Queue()
        self._posts = 0  # POSTs under way, claimed and not yet recorded
        self._rows = 0  # the notifications they carry
        self._drained = asyncio.Event()
        self._drained.set()
        self._callbacks: dict[tuple[str, str], _Callback] = {}
        self._last_sent: dict[tuple[str, str], Sent] = {}
        """Per (callback, remote): the latest POST not yet recorded, which a later one follows."""
        self._chained: dict[int, tuple[set[tuple[str, str]], Sent]] = {}
        self._outcomes: dict[tuple[str, str], bool] = {}
        """Per (callback, remote) no longer chained: whether its latest POST here was
        delivered, for a handover that read that event as leased here (``take``)."""
        self._recorded: list[queue.Delivery] = []
        """Recorded (or given back) since the last claim began: still followed until a claim
        that began after their record ends. On PostgreSQL a claim running beside the record
        may have read their rows as leased here and taken a later event of their remote."""
        self._user = UserMessages()
        self._group: asyncio.TaskGroup | None = None
        self._fed = False
        """A dispatcher hands rows to this worker (``take``): it claims only when woken for
        rows it was not handed, when it polls, and when it was full."""
        self._full = False
        self._claiming = False
        """A claim is under way: rows it leased here are not chained yet, so handovers wait
        for it (``_deferred``) to find their remotes' latest events chained."""
        self._deferred: list[Handover] = []
        self._leases = LeaseKeeper(
            database, owner=self.options.owner, lease_s=self.options.lease_s, clock=clock
        )

    # -- preparing one POST -------------------------------------------------------------

    def _callback(self, target: queue.Target) -> _Callback:
        # Keyed by the stored body's text: a PUT in the same clock tick as the previous write
        # (a frozen clock, or two processes) must still be seen.
        key = (target.id, target.subscribe)
        found = self._callbacks.get(key)
        if found is None:
            if len(self._callbacks) > 10_000:
                self._callbacks.clear()
            subscribe = load_stored(json.loads(target.subscribe))
            retry = subscribe.retry
            policy = RetryPolicy(retry.policy.value, retry.retry_number, retry.retry_delay)
            parts = None
            if not any(varies_per_event(a.value) for a in subscribe.attributes):
                parts = render_request_parts(subscribe.attributes, _variables(target, "", ""))
            found = self._callbacks[key] = _Callback(subscribe, policy, parts)
        return found

    def prepare(self, delivery: queue.Delivery) -> Request:
        target = delivery.target
        if target.face == Face.USER:
            made = self._user.prepare(delivery, self.clock())
            return Request(made.url, made.query, made.headers, made.body, made.message_id)
        callback = self._callback(target)
        subscribe = callback.subscribe
        events = [stored_remote_event(orjson.loads(row.event)) for row in delivery.rows]
        parts = callback.parts
        if parts is None:  # rendered from the first event, batch or not
            variables = _variables(target, events[0]["vin"], events[0]["remoteType"])
            parts = render_request_parts(subscribe.attributes, variables)
        body = encode(remote_events_body(target.id, parts.body, events))
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

    def decisions(self, delivery: queue.Delivery, outcome: Outcome) -> list[Decision]:
        if outcome.delivered:
            return [_DELIVERED] * len(delivery.rows)
        target = delivery.target
        policy = B2C_POLICY if target.face == Face.USER else self._callback(target).policy
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

    async def send(self, delivery: queue.Delivery) -> ledger.Result:
        started = self.clock()
        request = self.prepare(delivery)
        outcome = await self.attempt(delivery, request)
        decisions = self.decisions(delivery, outcome)
        log_failure(delivery, outcome, decisions)
        if self.metrics is not None:
            for decision in decisions:
                self.metrics.observe_decision(decision)
        return ledger.Result(delivery, request.message_id, started, outcome, decisions)

    async def attempt(self, delivery: queue.Delivery, request: Request) -> Outcome:
        """The attempt on the callback's channel: a POST, a WebSocket frame or FCM requests."""
        target = delivery.target
        subscribe = self._user.subscribe(target) if target.face == Face.USER else None
        channel = subscribe.channel if subscribe is not None else ""
        if channel == WEBSOCKET:
            if self.websocket is None:
                return _unavailable("WebSocket delivery is not running in this worker")
            secrets = active_secrets(target.secrets, self.clock())
            return await self.websocket.send(target.id, request.url, request.body.decode(), secrets)
        if channel == PUSH:
            if self.push is None:
                return _unavailable("push (FCM) is not configured on this worker")
            assert subscribe is not None
            pushed = await self.push.send(subscribe, self._user.messages(delivery))
            if pushed.unregistered:
                await self._forget(target.id, pushed.unregistered)
            return pushed.outcome
        return await self.sender.post(
            request.url, query=request.query, headers=request.headers, body=request.body
        )

    async def _forget(self, callback_id: str, tokens: list[str]) -> None:
        """Tokens FCM no longer knows leave the callback; with none left it is deleted (§3.2)."""
        now = self.clock()
        async with self.database.transaction() as conn:
            deleted = await forget_push_devices(
                conn, callback_id=callback_id, tokens=tokens, now=now
            )
            if deleted:
                await drop_pending(conn, callback_id=callback_id, now=now)
        log.info(
            "callback %s: removed %d unregistered push token(s)%s",
            callback_id,
            len(tokens),
            "; none left, callback deleted" if deleted else "",
        )

    # -- one cycle, for tests and restarts ----------------------------------------------

    async def claim(self, limit: int, *, max_deliveries: int | None = None) -> list[queue.Delivery]:
        """Lease up to ``limit`` rows, in the POSTs they make (``max_deliveries`` at most)."""
        now, options = self.clock(), self.options
        lease = timedelta(seconds=options.lease_s)
        active = None
        if not self.database.sqlite:
            # Two statements, no BEGIN or COMMIT (``queue.claim_singles``); the lease's own
            # commit then waits for the disk: about 0.1 ms here (pg_test_fsync), less than the
            # three round trips it saves (BEGIN, SET LOCAL, COMMIT).
            async with self.database.autocommit() as conn:
                active = await queue.active_callbacks(conn)
                if queue.posts_singly(active, now):
                    return await queue.claim_singles(
                        conn,
                        active,
                        owner=options.owner,
                        now=now,
                        lease=lease,
                        limit=limit,
                        max_deliveries=max_deliveries,
                    )
        return await run_in_one_trip(
            self.database,
            partial(
                queue.claim,
                owner=options.owner,
                now=now,
                lease=lease,
                limit=limit,
                batch_limit=options.claim_limit,
                max_deliveries=max_deliveries,
                active=active,  # PostgreSQL: read just now; each statement there reads afresh
            ),
            synced=False,  # a lease lost in a power cut: the rows are claimed again
            flush_read=True,  # but nothing is POSTed before the rows it carries are on disk
        )

    async def expire(self) -> int:
        """Give up on pending rows past the horizon; returns how many."""
        expired = await run_in_one_trip(
            self.database, partial(ledger.expire_overdue, now=self.clock())
        )
        if expired and self.metrics is not None:
            self.metrics.observe_expired(expired)
        return expired

    async def record(self, results: list[ledger.Result]) -> None:
        work = ledger.record_steps(owner=self.options.owner, results=results, now=self.clock())
        if work:
            prepared = [ready(self.database, step) for step in work]
            await run_unit(self.database, lambda: steps(prepared))

    async def run_once(self) -> int:
        """Expire, claim what is due (up to the claim limit), send, record; returns POSTs made."""
        await self.expire()
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

    @property
    def lessee(self) -> Lessee:
        """Whom rows leased on insert for this worker go to (``notifications.handover``)."""
        return Lessee(self.options.owner, timedelta(seconds=self.options.lease_s))

    def take(self, handover: Handover) -> list[queue.Delivery]:
        """Post rows leased to this worker by the transaction that stored them, as if claimed;
        returns what it did not take (it is stopping, or the rows are leased to another
        owner): the caller gives those back.

        A row whose remote has an earlier event leased here (``handover.follow``) follows that
        event's POST; if that POST has been recorded meanwhile, the row goes at once when it
        was delivered, and is given back to the queue when it was not (or its outcome is no
        longer known here), where it waits behind the earlier event's retry.
        """
        group = self._group
        if group is None or self._stopping.is_set() or handover.owner != self.options.owner:
            return handover.deliveries
        self._fed = True
        if self._claiming:
            self._deferred.append(handover)
        else:
            self._take(group, handover)
        return []

    def _take(self, group: asyncio.TaskGroup, handover: Handover) -> None:
        for delivery in handover.deliveries:
            self._started(delivery)
            key = (delivery.target.id, delivery.rows[0].remote_id)
            followed = key in self._last_sent or self._outcomes.get(key, False)
            if key in handover.follow and not followed:
                group.create_task(self._give_back(delivery), name="delivery-give-back")
                continue
            after, mine = self._chain(delivery)
            group.create_task(
                self._send_one(delivery, after, mine), name=f"deliver-{delivery.rows[0].id}"
            )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self._recorder(), name="delivery-recorder")
            group.create_task(self._metrics_loop(), name="delivery-metrics")
            group.create_task(self._expirer(), name="delivery-expirer")
            group.create_task(self._leases.run(), name="delivery-leases")
            try:
                await self._claimer(group)
            finally:
                self._group = None
                self._leases.stop()

    async def _claimer(self, group: asyncio.TaskGroup) -> None:
        """Claim while there is room, in POSTs and in rows (a batch is one POST, many rows)."""
        options = self.options
        while not self._stopping.is_set():
            rows = min(options.claim_limit, options.max_rows_in_flight - self._rows)
            posts = options.max_in_flight - self._posts
            deliveries: list[queue.Delivery] = []
            recorded: list[queue.Delivery] = []
            if rows > 0 and posts > 0:
                recorded, self._recorded = self._recorded, []
                self._claiming = True
                try:
                    deliveries = await self.claim(rows, max_deliveries=posts)
                except Exception:
                    log.exception("claiming notifications failed; retrying shortly")
                finally:
                    self._claiming = False
            for delivery in deliveries:
                self._started(delivery)
                after, mine = self._chain(delivery)
                group.create_task(
                    self._send_one(delivery, after, mine), name=f"deliver-{delivery.rows[0].id}"
                )
            deferred, self._deferred = self._deferred, []
            for handover in deferred:  # handed over during the claim, after what it leased
                self._take(group, handover)
            # Only now: a row given back while its predecessor was still leased here may have
            # been claimed again, and must follow the give-back's verdict (not delivered).
            for delivery in recorded:
                self._unchain(delivery)
            # Also wait when full: a loop that never awaits would starve the very sends
            # whose completion frees room. A claim that brought fewer rows and POSTs than
            # it had room for took everything that was due.
            got = sum(len(delivery.rows) for delivery in deliveries)
            self._full = rows <= 0 or posts <= 0
            if self._full or (got < rows and len(deliveries) < posts):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), options.poll_s)
                self._wake.clear()
        await self._drained.wait()
        await self._results.put(_STOP)

    def _chain(self, delivery: queue.Delivery) -> tuple[list[Sent], Sent]:
        """The POSTs this one must follow (earlier events of its remotes, still under way
        here), and the future that tells later ones whether this one was delivered."""
        keys = {(row.callback_id, row.remote_id) for row in delivery.rows}
        after = [found for key in keys if (found := self._last_sent.get(key)) is not None]
        mine: Sent = asyncio.get_running_loop().create_future()
        for key in keys:
            self._last_sent[key] = mine
        # Followed until recorded, not only until answered: between the two the rows are
        # still leased here, so a claim may take a later event, which must see the outcome.
        self._chained[id(delivery)] = (keys, mine)
        return after, mine

    def _unchain(self, delivery: queue.Delivery) -> None:
        keys, mine = self._chained.pop(id(delivery), (set(), None))
        for key in keys:
            if self._last_sent.get(key) is mine:
                del self._last_sent[key]
                if mine is not None and mine.done():
                    if len(self._outcomes) > 10_000:
                        self._outcomes.clear()
                    self._outcomes[key] = mine.result()

    async def _send_one(self, delivery: queue.Delivery, after: list[Sent], mine: Sent) -> None:
        delivered = False
        try:
            if after and not all(await asyncio.gather(*after)):
                await self._give_back(delivery)
                return
            result = await self.send(delivery)
            delivered = result.outcome.delivered
            mine.set_result(delivered)  # the POSTs chained behind this one go on first
            await self._results.put(result)
        except Exception:
            # The lease expires and another cycle takes the rows again: nothing is lost.
            log.exception("preparing or sending a notification failed")
            self._finished([delivery])
        finally:
            if not mine.done():
                mine.set_result(delivered)

    async def _give_back(self, delivery: queue.Delivery) -> None:
        """An earlier event of this remote was not delivered: this one waits for its retry."""
        try:
            ids = [row.id for row in delivery.rows]
            await run_in_one_trip(
                self.database,
                partial(ledger.release, owner=self.options.owner, ids=ids),
                synced=False,  # undone by a power cut, the lease expires instead
            )
        except Exception:
            log.exception("giving back notifications failed; their lease will expire")
        self._finished([delivery])

    def _started(self, delivery: queue.Delivery) -> None:
        self._posts += 1
        self._rows += len(delivery.rows)
        self._drained.clear()
        self._leases.hold(delivery)

    def _finished(self, deliveries: list[queue.Delivery]) -> None:
        self._posts -= len(deliveries)
        self._rows -= sum(len(delivery.rows) for delivery in deliveries)
        for delivery in deliveries:
            self._leases.release(delivery)
        self._recorded.extend(deliveries)
        if self._posts <= 0:
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
            self._finished([result.delivery for result in batch])
            if self._full or not self._fed:  # room for a claim; a fed worker is told of work
                self._wake.set()
            if stop:
                return

    async def _expirer(self) -> None:
        """The horizon sweep, on its own timer: it reads every overdue row, the claim does not."""
        while not self._stopping.is_set():
            try:
                await self.expire()
            except Exception:
                log.exception("expiring overdue notifications failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.options.expire_every_s)

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


def _unavailable(why: str) -> Outcome:
    return Outcome(
        delivered=False,
        status_code=None,
        error_class="unavailable",
        latency_ms=0,
        response_excerpt=None,
        detail=why,
    )
