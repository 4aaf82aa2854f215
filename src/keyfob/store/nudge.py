"""Cross-process nudges on PostgreSQL: NOTIFY when work becomes due, LISTEN where it is done.

Inside one process the API wakes its dispatcher directly. A dispatcher in another process
(``keyfob dispatcher``, several of them against PostgreSQL) would only notice a new remote at
its next poll (0.2 s), which caps what it can do at full load and adds up to 0.2 s to every
remote. So the acceptor sends ``NOTIFY keyfob_remotes_due`` after each batch it commits, and
every dispatcher listens on its own connection. A nudge carries nothing: the database stays
the queue and the poll stays the safety net (a lost connection, a missed nudge).

Remote events go the same way to delivery workers (``EVENTS_STORED``, sent by a dispatcher
after each batch it stores, through a coalescing ``Nudger``); a worker also listens for
accepted remotes, whose Accepted event it delivers.

A process listens on all its channels over one connection. PostgreSQL wakes every listening
session of the database at each NOTIFY, whatever channel it listens on, and each woken session
runs a transaction to read the queue: at 300 remotes a second, five sessions (two channels each
for the API and the worker, one for the dispatcher) made two-thirds of the server's
transactions. So a session per process, and only in a process that has someone to wake.

SQLite has no such channel: its processes (``serve`` and the children it starts) share one
host, so the same nudges go as datagrams between them (``store.nudge_local``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.store.engine import Database
from keyfob.store.nudge_local import listening_locally

REMOTES_DUE = "keyfob_remotes_due"
EVENTS_STORED = "keyfob_events_stored"
"""A dispatcher stored remote events: delivery workers elsewhere claim their notifications."""
EVENTS_TAKEN = "keyfob_events_taken"
"""A dispatcher stored remote events whose notifications its own worker took
(``notifications.handover``): event streams follow them, no worker has anything to claim."""
CHECK_S = 1.0
log = logging.getLogger("keyfob.store.nudge")


async def nudge(database: Database, channel: str = REMOTES_DUE) -> None:
    """Wake the processes listening on ``channel``."""
    if database.sqlite:
        if database.local_nudges is not None:
            database.local_nudges.send(channel)
        return
    async with database.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None  # asyncpg's connection, checked out of the pool
        await driver.execute(_NOTIFY[channel])


_NOTIFY = {
    channel: f"SET LOCAL synchronous_commit TO OFF; NOTIFY {channel}"
    for channel in (REMOTES_DUE, EVENTS_STORED, EVENTS_TAKEN)
}
"""One round trip, outside any transaction of the pool's: the two statements run as one
implicit transaction, whose commit does not wait for the disk (a nudge lost in a crash costs a
poll). ``BEGIN``, ``pg_notify`` and a synced ``COMMIT`` cost the busiest processes three round
trips and a flush of the log per batch."""


class Nudger:
    """``nudge`` soon after each ``request``, coalesced: one NOTIFY under way, one waiting.

    For a caller on its busiest path (the dispatcher, after each batch it stores): a request
    costs a flag, and however many come while a NOTIFY is under way, one more follows it. On
    SQLite a nudge is a datagram sent at once, without waiting.

    On PostgreSQL the Nudger keeps the pool's connection it first nudged on until ``close``
    (one connection of the process's pool, for as long as it sends nudges). A nudge through a
    fresh checkout cost about 200 µs of the process's CPU (the pool's checkout and return, the
    async adapter's wrapping), against 50 µs on a connection at hand; the acceptor and the
    dispatcher send one for every few remotes. A connection that fails a nudge is thrown away
    and the next nudge checks out another.
    """

    def __init__(self, database: Database, channel: str) -> None:
        self._database = database
        self._channel = channel
        self._wanted = False
        self._task: asyncio.Task[None] | None = None
        self._held: AsyncConnection | None = None
        self._driver: Any = None

    def request(self) -> None:
        if self._database.sqlite:
            if self._database.local_nudges is not None:
                self._database.local_nudges.send(self._channel)
            return
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"nudge-{self._channel}")

    async def _run(self) -> None:
        while self._wanted:
            self._wanted = False
            try:
                await self._send()
            except Exception:  # the listeners' poll is the safety net
                log.warning("could not nudge %s", self._channel, exc_info=True)
                await self._let_go(broken=True)
                return

    async def _send(self) -> None:
        if self._driver is None:
            self._held = await self._database.engine.connect()
            self._driver = (await self._held.get_raw_connection()).driver_connection
        await self._driver.execute(_NOTIFY[self._channel])

    async def _let_go(self, *, broken: bool) -> None:
        held, self._held, self._driver = self._held, None, None
        if held is None:
            return
        with contextlib.suppress(Exception):
            if broken:  # not back into the pool: the next checkout would get it
                await held.invalidate()
            await held.close()

    async def close(self) -> None:
        """Wait for the nudge under way, and give the connection back (``request`` may be
        called again afterwards: it checks out another)."""
        self._wanted = False
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self._let_go(broken=False)


@contextlib.asynccontextmanager
async def listening(
    database: Database,
    on_nudge: Callable[[], None],
    *channels: str,
    retry_s: float = 2.0,
) -> AsyncIterator[None]:
    """Call ``on_nudge`` on every nudge on any of ``channels`` (``REMOTES_DUE`` when none is
    named) for as long as the block runs.

    The listening connection, one for all the channels, is held apart from the pool's other
    work and opened again if it is lost. On SQLite on a file it is a datagram socket per channel
    (``store.nudge_local``); on SQLite in memory there is no other process to hear from.
    """
    names = tuple(dict.fromkeys(channels)) or (REMOTES_DUE,)
    if database.sqlite:
        async with contextlib.AsyncExitStack() as stack:
            if database.file is not None:
                for channel in names:
                    await stack.enter_async_context(
                        listening_locally(database.file, on_nudge, channel)
                    )
            yield
        return
    task = asyncio.create_task(_listen(database, on_nudge, names, retry_s), name="nudges")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _listen(
    database: Database, on_nudge: Callable[[], None], channels: tuple[str, ...], retry_s: float
) -> None:
    def heard(*_: Any) -> None:
        on_nudge()

    while True:
        try:
            async with database.engine.connect() as conn:
                try:
                    await _hold(await conn.get_raw_connection(), channels, heard, on_nudge)
                except Exception:
                    # Not back into the pool: the next checkout would get the dead one.
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                    raise
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("listening for %s failed; trying again", channels, exc_info=True)
        await asyncio.sleep(retry_s)


async def _hold(
    raw: Any, channels: tuple[str, ...], heard: Callable[..., None], on_nudge: Callable[[], None]
) -> None:
    """Listen on asyncpg's connection until it is lost.

    A connection the server ends (a restart, ``pg_terminate_backend``) does not always say so
    while it only listens, so it is asked something every second.
    """
    driver = raw.driver_connection
    lost = asyncio.Event()
    driver.add_termination_listener(lambda *_: lost.set())
    for channel in channels:
        await driver.add_listener(channel, heard)
    try:
        on_nudge()  # whatever became due while nobody listened
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), CHECK_S)
            if not lost.is_set():
                await driver.fetchval("SELECT 1")  # raises once the connection is gone
    finally:
        for channel in channels:
            with contextlib.suppress(Exception):
                await driver.remove_listener(channel, heard)
