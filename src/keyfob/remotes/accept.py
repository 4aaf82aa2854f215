"""Accepting remotes with group commit: many POSTs, one transaction.

Every accepted remote must be stored with its first event and that event's notification
before the 202 leaves. Doing that in one transaction per request makes the database round
trips, not the work, the limit. The ``Acceptor`` queues requests; one writer task takes all
that are waiting, checks them against a handful of bulk look-ups, writes every accepted one
with a few multi-row inserts and commits once, then answers each request on its own: a 202,
or the same error, in the same order of checks, as if it had been alone. Each face has its
own look-ups and order of checks (``remotes.accept_fleet``, ``remotes.accept_user``); both
share the same queue, batches and commits: one accept path for both faces.

Each request's remote id is chosen when it is queued, before the first attempt, so a retry
stores it under the same id and can tell what an attempt committed. When a unit fails, the
acceptor first looks up which of its ids are stored: a connection that dropped during COMMIT
may have committed it all, and those requests are answered with their id (stored once). The
rest are tried again: as one batch when the database was unreachable, request by request
otherwise (e.g. another process stored the same Idempotency-Key first), so one request never
fails another. If the look-up itself fails, nobody can tell what committed: the requests are
answered with the error (503 while the database is unreachable) and nothing is written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock
from keyfob.kit.ids import new_ordered_id
from keyfob.notifications.models import notifications
from keyfob.remotes import accept_fleet, accept_user
from keyfob.remotes.accept_budget import with_budgets
from keyfob.remotes.accept_fleet import AcceptRequest, check_callback
from keyfob.remotes.accept_user import UserAcceptRequest
from keyfob.remotes.metrics import RemoteMetrics
from keyfob.remotes.models import (
    idempotency_keys,
    remote_events,
    remotes,
    user_idempotency_keys,
)
from keyfob.remotes.staging import Batch as _Batch
from keyfob.remotes.staging import Known as _Known
from keyfob.remotes.staging import Posted, first_status, request_hash
from keyfob.store.engine import Database
from keyfob.store.nudge import REMOTES_DUE, Nudger
from keyfob.store.outage import unreachable
from keyfob.store.units import Execute, Insert, Plan, Submit, run_unit, sqlite_turn
from keyfob.vehicles.budget import WakeLimits

__all__ = [
    "AcceptRequest",
    "Acceptor",
    "Posted",
    "Request",
    "UserAcceptRequest",
    "accept_plan",
    "check_callback",
    "first_status",
    "request_hash",
]

log = logging.getLogger("keyfob.accept")


Request = AcceptRequest | UserAcceptRequest
"""A POST remote of either face; one batch may mix them."""


def accept_plan(
    requests: Sequence[Request],
    *,
    now: datetime,
    ttl: timedelta,
    known: _Known,
    ids: Sequence[str] | None = None,
    wake_limits: WakeLimits | None = None,
) -> Plan[list[Posted | KeyfobError]]:
    """Judge and store a batch as one unit of work; one answer per request, in order.

    ``ids``, one per request, are the ids their remotes get if accepted (new ones if omitted).
    """
    fleet = [r for r in requests if isinstance(r, AcceptRequest)]
    users = [r for r in requests if isinstance(r, UserAcceptRequest)]
    found = (yield from accept_fleet.lookups(fleet, known)) if fleet else accept_fleet.NONE
    found_users = (yield from accept_user.lookups(users, known)) if users else accept_user.NONE
    batch = _Batch(now=now, ttl=ttl)
    answers: list[Posted | KeyfobError] = []
    for index, request in enumerate(requests):
        batch.chosen_id = None if ids is None else ids[index]
        try:
            if isinstance(request, UserAcceptRequest):
                answers.append(accept_user.judge(request, found_users, batch))
            else:
                answers.append(accept_fleet.judge(request, found, batch))
        except KeyfobError as refusal:
            answers.append(refusal)
    if wake_limits is not None:  # one statement per batch (remotes.accept_budget)
        answers = yield from with_budgets(requests, answers, now=now, limits=wake_limits)
    for partner_id, key in batch.expired_keys:
        yield Execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.partner_id == partner_id, idempotency_keys.c.key == key
            )
        )
    for client_id, user_id, key in batch.expired_user_keys:
        yield Execute(
            delete(user_idempotency_keys).where(
                user_idempotency_keys.c.client_id == client_id,
                user_idempotency_keys.c.user_id == user_id,
                user_idempotency_keys.c.key == key,
            )
        )
    yield Insert(
        [
            (remotes, batch.remotes),
            (remote_events, batch.events),
            (notifications, batch.notifications),
            (idempotency_keys, batch.keys),
            (user_idempotency_keys, batch.user_keys),
        ]
    )
    return answers


_Waiting = tuple[Request, "asyncio.Future[Posted]", str]
"""A queued request, the future its caller awaits, and the id chosen for its remote."""
_Answers = list[Posted | KeyfobError]


class _Share:
    """The requests one queued unit took: those waiting when the driver's thread started it."""

    def __init__(self) -> None:
        self.taken: list[_Waiting] = []


_Unit = tuple[_Share, "asyncio.Future[_Answers]"]


class Acceptor:
    """Queues accept requests and stores them in group-committed batches.

    On SQLite the writer holds the one connection for a turn and keeps up to ``depth`` units
    queued on it: while one commits, the next is already waiting in the driver's thread, and
    it takes every request that arrived meanwhile when it starts (so batches grow with the
    load instead of being cut at hand-over time). That second unit is queued only once
    ``queue_at`` requests wait: under a light load it would cost a commit for one or two
    requests and delay the dispatcher's next unit. A turn ends after ``turn_units`` units,
    so the dispatcher and the API's other requests get the connection in between. Elsewhere
    (PostgreSQL, whose pool serves many connections) up to ``depth`` batches are stored at once,
    each on its own connection: while one commits, the next is being written. After a batch
    commits, the dispatchers are nudged without waiting (one ``NOTIFY`` under way at a time).
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock,
        idempotency_ttl: timedelta = timedelta(hours=24),
        max_batch: int = 256,
        depth: int = 2,
        turn_units: int = 16,
        queue_at: int = 8,
        wake_limits: WakeLimits | None = None,
        metrics: RemoteMetrics | None = None,
    ) -> None:
        self.database = database
        self.metrics = metrics
        self.clock = clock
        self.ttl = idempotency_ttl
        self.max_batch = max_batch
        self.depth = depth
        self.turn_units = turn_units
        self.queue_at = queue_at
        self.wake_limits = wake_limits
        # A deque: the driver's thread takes from the left while the loop appends.
        self._waiting: deque[_Waiting] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._known = _Known()
        self._nudger = Nudger(database, REMOTES_DUE)
        self._storing: set[asyncio.Task[None]] = set()

    async def accept(self, request: Request) -> Posted:
        """Stored and committed when this returns; a refusal raises its ``KeyfobError``."""
        if self._task is None or self._task.done():
            raise KeyfobError(ErrorCode.UNAVAILABLE, "the server is starting or stopping")
        future: asyncio.Future[Posted] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future, new_ordered_id()))
        self._ready.set()
        posted = await future
        if self.metrics is not None and not posted.replayed:
            self.metrics.accept(posted.type)
        return posted

    @property
    def running(self) -> bool:
        """Whether the writer task runs (between ``start`` and ``stop``)."""
        return self._task is not None and not self._task.done() and not self._stopping

    def start(self) -> None:
        """Start (or restart, after ``stop``) the writer task in the running loop."""
        self._stopping = False
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="remote-acceptor")

    async def stop(self) -> None:
        self._stopping = True
        self._ready.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._nudger.close()

    def _take(self, into: list[_Waiting]) -> list[_Waiting]:
        waiting = self._waiting
        while waiting and len(into) < self.max_batch:
            into.append(waiting.popleft())
        return into

    async def _run(self) -> None:
        try:
            await self._serve()
        finally:
            if self._storing:
                await asyncio.gather(*self._storing, return_exceptions=True)

    async def _serve(self) -> None:
        while True:
            if not self._waiting:
                if self._stopping:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            if not self.database.sqlite:
                await self._store_beside()
                continue
            units: list[_Unit] = []
            try:
                async with sqlite_turn(self.database) as submit:
                    if submit is None:
                        await self._store(self._take([]))
                    else:
                        await self._turn(submit, units)
            except Exception as exc:  # a bug, or the connection could not be had: answer anyway
                if unreachable(exc):
                    self.database.outage.failed(exc)
                else:
                    log.exception("the writer's turn failed")
                if not units:
                    await self._store(self._take([]))
            await self._after_turn(units)

    async def _store_beside(self) -> None:
        """PostgreSQL: what waits now, stored in a batch of its own beside up to ``depth - 1``
        earlier batches still being stored. As on SQLite, a batch starts beside another only
        once ``queue_at`` requests wait: under a light load it would cost a commit for one or
        two requests, where waiting lets the next batch take them all."""
        while self._storing and (
            len(self._storing) >= self.depth or len(self._waiting) < self.queue_at
        ):
            self._ready.clear()
            arrival = asyncio.ensure_future(self._ready.wait())
            await asyncio.wait({*self._storing, arrival}, return_when=asyncio.FIRST_COMPLETED)
            arrival.cancel()
        task = asyncio.create_task(self._store(self._take([])), name="remote-acceptor-batch")
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def _turn(self, submit: Submit[_Answers], units: list[_Unit]) -> None:
        """Units queued back to back on the held connection, each answered as it ends."""
        in_flight: deque[_Unit] = deque()
        while True:
            room = len(in_flight) < self.depth and len(units) < self.turn_units
            # A unit queued behind a running one pays off only with enough requests to share
            # its commit: under a light load it would only add a commit, and latency.
            enough = len(self._waiting) >= (self.queue_at if in_flight else 1)
            if room and enough:
                share = _Share()
                unit = (share, submit(self._share_plan(share)))
                units.append(unit)
                in_flight.append(unit)
                continue
            if not in_flight:
                return
            share, future = in_flight[0]
            if room:  # the oldest unit's end, or a new request to queue a unit for
                self._ready.clear()
                arrival = asyncio.ensure_future(self._ready.wait())
                await asyncio.wait((future, arrival), return_when=asyncio.FIRST_COMPLETED)
                arrival.cancel()
                if not future.done():
                    continue
            else:
                await asyncio.wait((future,))
            in_flight.popleft()
            if future.exception() is None:
                self.database.outage.reached()
                for (_, waiting, _), answer in zip(share.taken, future.result(), strict=True):
                    _settle(waiting, answer)

    async def _after_turn(self, units: list[_Unit]) -> None:
        """Once the connection is free again: requests whose unit failed are recovered (what
        committed answered, the rest stored again); any the turn could not answer, it answers
        now (every unit has ended)."""
        for share, future in units:
            if future.cancelled() or future.exception() is not None:
                error = future.exception() if not future.cancelled() else None
                left = [item for item in share.taken if not item[1].done()]
                if left:
                    await self._recover(left, error or RuntimeError("the unit was cancelled"))
                continue
            for (_, waiting, _), answer in zip(share.taken, future.result(), strict=True):
                _settle(waiting, answer)

    def _share_plan(self, share: _Share) -> Plan[_Answers]:
        """Runs on the driver's thread: take what is waiting now, judge and store it."""
        taken = self._take(share.taken)
        if not taken:
            return []
        answers = yield from accept_plan(
            [request for request, _, _ in taken],
            now=self.clock(),
            ttl=self.ttl,
            known=self._known,
            ids=[remote_id for _, _, remote_id in taken],
            wake_limits=self.wake_limits,
        )
        return answers

    async def _store(self, batch: list[_Waiting], *, last: bool = False) -> None:
        requests, now = [request for request, _, _ in batch], self.clock()
        ids = [remote_id for _, _, remote_id in batch]
        try:
            answers = await run_unit(
                self.database,
                lambda: accept_plan(
                    requests,
                    now=now,
                    ttl=self.ttl,
                    known=self._known,
                    ids=ids,
                    wake_limits=self.wake_limits,
                ),
            )
        except Exception as exc:
            await self._recover(batch, exc, last=last)
            return
        self.database.outage.reached()
        for (_, future, _), answer in zip(batch, answers, strict=True):
            _settle(future, answer)
        self._nudge([a for a in answers if isinstance(a, Posted) and not a.replayed])

    async def _recover(
        self, batch: list[_Waiting], error: BaseException, *, last: bool = False
    ) -> None:
        """A unit failed (maybe after its COMMIT went through): answer what is stored, retry
        the rest under the same ids, at most once more."""
        try:
            rest = await self._answer_stored(batch)
        except Exception:  # which of them committed cannot be told: write nothing again
            self._fail(batch, error)
            return
        if not rest:
            return
        if last:
            self._fail(rest, error)
        elif unreachable(error) or len(rest) == 1:
            await self._store(rest, last=True)
        else:
            for one in rest:
                await self._store([one], last=True)

    async def _answer_stored(self, batch: list[_Waiting]) -> list[_Waiting]:
        """Answer the requests whose remote is stored; the others, still to answer."""
        async with self.database.read() as conn:
            rows = await conn.execute(
                select(remotes.c.id, remotes.c.type).where(
                    remotes.c.id.in_([remote_id for _, _, remote_id in batch])
                )
            )
            stored = {row.id: row.type for row in rows}
        found = [
            Posted(remote_id, stored[remote_id], replayed=False)
            for _, _, remote_id in batch
            if remote_id in stored
        ]
        for _, future, remote_id in batch:
            if remote_id in stored:
                _settle(future, Posted(remote_id, stored[remote_id], replayed=False))
        self._nudge(found)
        return [item for item in batch if not item[1].done()]

    def _fail(self, batch: list[_Waiting], error: BaseException) -> None:
        if unreachable(error):
            self.database.outage.failed(error)
        else:
            log.error("storing %d remotes failed", len(batch), exc_info=error)
        for _, future, _ in batch:
            _settle(future, error)

    def _nudge(self, stored: list[Posted]) -> None:
        """Dispatchers in other processes: new remotes are due (``keyfob.store.nudge``; a
        failed nudge is logged there, and they poll)."""
        if self.database.sqlite or not stored:
            return
        self._nudger.request()


def _settle(future: asyncio.Future[Posted], outcome: Posted | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
