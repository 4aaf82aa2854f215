"""Units of work waiting for SQLite's one connection at the same moment, committed together.

Each process of the embedded default has one SQLite connection, and every write transaction
of every process takes the one write lock they share. Much of what a transaction holds that
lock for does not depend on what it carries: taking the lock, reading again the pages another
process changed since, rewriting whole pages of the log at the commit. At 300 remotes a second
the three processes made about 600 write transactions a second, and the lock was free only a
quarter of the time.

So on SQLite ``run_unit`` does not take the connection for itself: it queues its plan, and one
runner per process takes every plan queued by the time it gets to them (at most
``GROUP_LIMIT``). On the driver's thread they run in one transaction, in the order they were
queued, each after the first behind a savepoint; the transaction commits once, the log is
flushed once (``store.wal_sync``), and only then is each caller answered. A plan keeps going
while the runner waits for the lock, so what arrives meanwhile joins it; under a light load a
plan finds nobody else and runs alone, with no wait added.

Each plan still succeeds or fails on its own: one that raises (its own error, or a step that
fails) is undone (rolled back to its savepoint, or the whole transaction if it began it, before
the next plan begins another) and its caller gets the exception, while the others commit. What
fails the transaction itself (the lock not had in time, the commit, the flush, a savepoint
SQLite has already undone) reaches every caller in it, as it would have reached one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect

from keyfob.store._sqlite import sqlite_driver
from keyfob.store.engine import Database, begin_immediate
from keyfob.store.plans import NotOneTrip, Plan, run_step
from keyfob.store.wal_sync import WalFlush
from keyfob.store.writer_lock import WriterLock

GROUP_LIMIT = 64
"""Plans committed together at most: a bound on how long the first of them waits."""

Outcome = tuple[bool, Any]
"""``(True, result)`` or ``(False, the exception)`` of one plan of a group."""


def run_plans(
    sqlite: Any,
    dialect: Dialect,
    lock: WriterLock | None,
    busy_s: float,
    plans: Iterable[Plan[Any]],
    flush: WalFlush | None,
) -> list[Outcome]:
    """On the driver's thread: every plan ``plans`` gives, in one transaction, in turn.

    The transaction begins with the first step of any plan: plans that end without one (they
    found nothing to do) cost no ``BEGIN``, ``COMMIT`` or flush. With a writer lock it begins
    by taking it (``store.writer_lock``) and lets it go once the transaction has ended.
    The plan that begins the transaction needs no savepoint (nothing before it is at stake: if
    it fails, the transaction is rolled back and the next plan begins another); each plan after
    it runs behind one, whose cost (SQLite copies each page the plan changes into a journal
    of the savepoint) only a group pays.
    ``flush``: the commit does not wait for the disk; the log is flushed once the lock is free,
    before anything is answered (``store.wal_sync``), even after reads alone: what they read
    may have been committed a moment ago by a process still flushing it. Raises what fails
    the transaction.
    """
    transaction = _Transaction(sqlite, lock, busy_s)
    if flush is not None:
        sqlite.execute("PRAGMA synchronous=NORMAL")
    try:
        try:
            outcomes = [_one(sqlite, dialect, plan, transaction) for plan in plans]
            committed = transaction.commit()
        except BaseException:
            transaction.roll_back()
            raise
    finally:
        if flush is not None:
            sqlite.execute(f"PRAGMA synchronous={flush.LEVEL}")
    if committed and flush is not None:
        flush.flush()
    return outcomes


class _Transaction:
    """``run_plans``'s transaction: begun by the first step, with the writer lock around it."""

    def __init__(self, sqlite: Any, lock: WriterLock | None, busy_s: float) -> None:
        self.sqlite, self.lock, self.busy_s = sqlite, lock, busy_s
        self.begun = False

    def begin(self) -> None:
        begin_immediate(self.sqlite, self.lock, self.busy_s)
        self.begun = True

    def commit(self) -> bool:
        """Commit what is begun; whether anything was. A failing commit leaves the transaction
        to ``roll_back``."""
        if not self.begun:
            return False
        self.sqlite.commit()
        self._end()
        return True

    def roll_back(self) -> None:
        if self.begun:
            try:
                self.sqlite.rollback()
            finally:
                self._end()

    def _end(self) -> None:
        self.begun = False
        if self.lock is not None:
            self.lock.release()


_ALONE, _BEHIND_SAVEPOINT = "alone", "behind a savepoint"


def _one(sqlite: Any, dialect: Dialect, plan: Plan[Any], transaction: _Transaction) -> Outcome:
    """One plan: it begins the transaction at its first step, or joins it behind a savepoint."""
    answer: Any = None
    how: str | None = None
    while True:
        try:
            step = plan.send(answer)
        except StopIteration as done:
            if how is _BEHIND_SAVEPOINT:
                sqlite.execute("RELEASE unit")
            return True, done.value
        except Exception as error:
            return _undone(sqlite, how, transaction, error)
        if how is None:
            if transaction.begun:
                sqlite.execute("SAVEPOINT unit")
                how = _BEHIND_SAVEPOINT
            else:
                transaction.begin()
                how = _ALONE
        try:
            answer = run_step(sqlite, dialect, step)
        except Exception as error:
            plan.close()
            return _undone(sqlite, how, transaction, error)


def _undone(sqlite: Any, how: str | None, transaction: _Transaction, error: Exception) -> Outcome:
    """A plan's own failure: what it wrote is undone, and the next plan goes on."""
    if how is _ALONE:
        transaction.roll_back()
    elif how is _BEHIND_SAVEPOINT:
        if not sqlite.in_transaction:  # SQLite ended the whole transaction (an I/O error)
            raise error
        sqlite.execute("ROLLBACK TO unit")
        sqlite.execute("RELEASE unit")
    return False, error


def unwrap(outcome: Outcome) -> Any:
    """A plan's result, or its exception raised."""
    ok, value = outcome
    if ok:
        return value
    raise value


@dataclass(frozen=True)
class _Queued:
    plan: Plan[Any]
    future: asyncio.Future[Any]


class UnitGroups:
    """One process's queue of plans for its SQLite connection, and the runner that empties it.

    Plans are made by the caller, before they are queued; a caller that stops waiting before
    its plan was taken leaves it unrun.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._waiting: deque[_Queued] = deque()
        self._runner: asyncio.Task[None] | None = None

    def submit(self, plan: Plan[Any]) -> Awaitable[Any]:
        """The plan queued; the awaitable answers its result or raises its exception."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Queued(plan, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="sqlite-units")
            self._database.under_way.add(self._runner)
            self._runner.add_done_callback(self._database.under_way.discard)
        return future

    async def _run(self) -> None:
        try:
            while self._waiting:
                await self._group()
        finally:
            self._runner = None

    async def _group(self) -> None:
        database, taken = self._database, list[_Queued]()
        try:
            async with database.engine.connect() as conn:
                driver = sqlite_driver(await conn.get_raw_connection())
                if driver is None:  # no thread hand-off: each plan runs the ordinary way
                    taken.extend(self._take_all())
                    raise NotOneTrip("no SQLite driver thread")
                outcomes = await driver._execute(
                    run_plans,
                    driver._conn,
                    conn.dialect,
                    database.writer_lock,
                    database.timeouts.busy,
                    self._pull(taken),
                    database.wal_flush,
                )
        except asyncio.CancelledError:
            for queued in [*taken, *self._waiting]:
                queued.future.cancel()
            self._waiting.clear()
            raise
        except Exception as error:
            if not taken:  # the connection could not be had: nothing ran, nobody waits on
                taken.extend(self._take_all())
            for queued in taken:
                if not queued.future.done():
                    queued.future.set_exception(error)
            return
        for queued, (ok, value) in zip(taken, outcomes, strict=True):
            if not queued.future.done():
                if ok:
                    queued.future.set_result(value)
                else:
                    queued.future.set_exception(value)

    def _take_all(self) -> list[_Queued]:
        taken = list(self._waiting)
        self._waiting.clear()
        return taken

    def _pull(self, into: list[_Queued]) -> Iterator[Plan[Any]]:
        """The queued plans, taken one at a time as the transaction gets to them (on the
        driver's thread), each recorded in ``into``."""
        waiting = self._waiting
        while waiting and len(into) < GROUP_LIMIT:
            queued = waiting.popleft()
            if queued.future.cancelled():
                continue
            into.append(queued)
            yield queued.plan
