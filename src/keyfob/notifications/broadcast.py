"""One reader of new outbox rows per process, fanning them out to every stream subscriber.

A thousand consumers streaming one callback must not mean a thousand queries per event. So each
API process has one ``Broadcaster``: while anyone subscribes, it reads the ids of the rows newer
than the last it saw for every subscribed callback at once (index only), fetches and renders
each new row once, and hands the same bytes to each subscriber of its callback.

It runs when woken (``wake``, called in this process after work is stored, and by nudges from
other processes while anyone subscribes: ``listen``) and at least every ``poll_s``, the safety
net for rows written by other processes (several API processes and dispatchers on PostgreSQL).
With no subscriber it does not listen: every nudge a process listens for wakes it and, on
PostgreSQL, costs the server a transaction, whoever it was meant for.

Ids start with their creation time, but a transaction may commit after a later one, so each
read looks ``settle_s`` back and skips the ids already seen: a row committed late still reaches
the subscribers, once.

A subscriber holds at most ``limit`` items not yet taken. One that falls further behind (a
consumer that does not read) is cut off: its items are let go and its stream ends with the last
id it sent, from which the consumer resumes by reading the outbox (``notifications.streams``).

    subscriber:  subscribe -> next() ... next() -> (cut | closed) -> unsubscribe
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from keyfob.errors import KeyfobError
from keyfob.kit.clock import Clock
from keyfob.notifications import streams
from keyfob.notifications.queue import Target
from keyfob.notifications.streams import Item, Renderer, Row, id_floor
from keyfob.store.engine import Database

log = logging.getLogger("keyfob.notifications.broadcast")

CUT = Item("", b"")
"""What ``Subscription.next`` returns once the subscriber has been cut off."""
CLOSED = Item("", b"closed")
"""What ``Subscription.next`` returns once the process stops serving streams."""
_READ_LIMIT = 20_000


@dataclass(frozen=True)
class StreamOptions:
    """``limit`` items held per subscriber; ``poll_s`` between reads when not woken; reads
    look ``settle_s`` back for late commits; an idle stream sends a keep-alive each
    ``keepalive_s``."""

    limit: int = 1000
    poll_s: float = 0.05
    settle_s: float = 2.0
    keepalive_s: float = 15.0


class Subscription:
    """One consumer's live feed of one callback's items."""

    def __init__(self, callback_id: str, start: str, limit: int) -> None:
        self.callback_id = callback_id
        self.start = start
        """Items with ids up to this one are the consumer's already (or before its time)."""
        self.sent: set[str] = set()
        """Ids the consumer got from the outbox after subscribing: the live feed skips them."""
        self.cut = False
        self.closed = False
        self._limit = limit
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()

    def offer(self, item: Item) -> bool:
        """Queue ``item`` if it is news to this consumer; False when the consumer is too slow."""
        if self.cut or item.id <= self.start or item.id in self.sent:
            return not self.cut
        if len(self._items) >= self._limit:
            self.cut = True
            self._items.clear()
            self._ready.set()
            return False
        self._items.append(item)
        self._ready.set()
        return True

    async def next(self, idle_s: float) -> Item | None:
        """The next item, ``CUT`` once cut off, or ``None`` after ``idle_s`` of nothing."""
        if not self._items and not self.cut and not self.closed:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_s):
                    await self._ready.wait()
        if self._items:
            return self._items.popleft()
        if self.cut:
            return CUT
        return CLOSED if self.closed else None

    def close(self) -> None:
        self.closed = True
        self._ready.set()


Listen = Callable[[Callable[[], None]], AbstractAsyncContextManager[object]]


class Broadcaster:
    def __init__(
        self,
        database: Database,
        *,
        clock: Clock,
        options: StreamOptions | None = None,
        wall: Callable[[], float] = time.time,
        listen: Listen | None = None,
    ) -> None:
        """``wall`` is the time ids are made with (``kit.ids``), not the injected clock;
        ``listen(wake)`` calls ``wake`` on other processes' nudges for as long as its block
        runs (``store.nudge.listening``), entered while anyone subscribes."""
        self.database = database
        self._listen = listen
        self.clock = clock
        self.options = options or StreamOptions()
        self.renderer = Renderer()
        self._wall = wall
        self._subs: dict[str, set[Subscription]] = {}
        self._seen: dict[str, None] = {}
        self._high = id_floor(wall())
        self._skip_settle = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def subscribe(self, callback_id: str, *, start: str | None = None) -> Subscription:
        """A live feed of ``callback_id`` from now (or after ``start``)."""
        now = id_floor(self._wall())
        if not self._subs:  # nothing was read while no one listened: start from now
            self._high = max(self._high, now)
        sub = Subscription(callback_id, start or now, self.options.limit)
        self._subs.setdefault(callback_id, set()).add(sub)
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._run(), name="stream-broadcaster")
        self.wake()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        found = self._subs.get(sub.callback_id)
        if found is not None:
            found.discard(sub)
            if not found:
                del self._subs[sub.callback_id]

    def wake(self) -> None:
        self._wake.set()

    def render(self, target: Target, row: Row) -> Item:
        return self.renderer.item(target, row, self.clock())

    def close_all(self) -> None:
        """End every stream (shutting down): each consumer resumes elsewhere or later."""
        self._stopping = True
        for subs in self._subs.values():
            for sub in subs:
                sub.close()

    async def stop(self) -> None:
        self.close_all()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            if not self._subs:
                self._wake.clear()
                await self._wake.wait()  # ``subscribe`` wakes it
                continue
            async with contextlib.AsyncExitStack() as listening:
                if self._listen is not None:
                    try:
                        await listening.enter_async_context(self._listen(self.wake))
                    except Exception:  # the poll still serves the streams, later
                        log.warning("streams will not hear other processes", exc_info=True)
                await self._feed()

    async def _feed(self) -> None:
        """Read and hand out, when woken and every ``poll_s``, while anyone subscribes."""
        while self._subs and not self._stopping:
            self._wake.clear()
            try:
                await self.read_once()
            except Exception:  # a failed read is retried at the next poll
                log.warning("reading new notifications for streams failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.poll_s):
                    await self._wake.wait()

    async def read_once(self) -> int:
        """Read the rows new since the last read and hand them out; how many were new."""
        settle = id_floor(self._wall() - self.options.settle_s)
        after = self._high if self._skip_settle else min(self._high, settle)
        async with self.database.read() as conn:
            ids = await streams.recent_ids(conn, callback_ids=list(self._subs), after=after)
            new = sorted(i for i, _ in ids if i not in self._seen)[:_READ_LIMIT]
            rows = await streams.rows_by_id(conn, new) if new else []
            found = await streams.targets(conn, {r.callback_id for r in rows}) if rows else {}
        if rows:
            await self.database.flush_read()
        self._skip_settle = len(ids) >= _READ_LIMIT
        rows.sort(key=lambda r: r.id)
        for row in rows:
            self._seen[row.id] = None
            self._high = max(self._high, row.id)
            self._fan_out(row, found.get(row.callback_id))
        for old in [i for i in self._seen if i <= settle]:
            del self._seen[old]
        return len(rows)

    def _fan_out(self, row: Row, target: Target | None) -> None:
        subs = self._subs.get(row.callback_id)
        if not subs or target is None:
            return
        try:
            item = self.render(target, row)
        except KeyfobError:
            log.exception("notification %s cannot be rendered for its stream", row.id)
            return
        for sub in list(subs):
            if not sub.offer(item):
                self.unsubscribe(sub)
