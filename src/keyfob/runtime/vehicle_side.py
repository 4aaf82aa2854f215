"""The vehicle side with a delivery worker beside it, when the dispatcher delivers inline.

With ``delivery.inline`` the dispatcher hands the notifications of the events it stores to a
delivery worker (``notifications.handover``). On ``serve``'s default that worker is the
delivery child, reached through a socket (``notifications.handover_local``). Where no such
child runs (PostgreSQL with ``delivery.inline`` set, ``run_worker_in_child = false``), the
process that runs a dispatcher runs a worker of its own, started first and stopped last, and
hands it the rows in memory; ``keyfob dispatcher`` then delivers too. ``keyfob worker``
processes take what is left: retries, the rows of a dispatcher that died, and notifications
raised elsewhere (replays, the user face, batching callbacks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from keyfob.config import Settings
from keyfob.remotes.dispatcher import Dispatcher
from keyfob.runtime.context import AppContext, inline
from keyfob.runtime.delivery_role import dispatcher_delivery_role
from keyfob.runtime.vehicle_role import vehicle_role
from keyfob.store.engine import sqlite_file


def delivers_inline(settings: Settings) -> bool:
    """Whether the vehicle side runs its own delivery worker: it delivers inline and no
    other process on its SQLite file runs one (``serve``'s delivery child), to which it
    would hand its rows instead (``notifications.handover_local``)."""
    worker_child = settings.run_worker_in_child and sqlite_file(settings.db) is not None
    return inline(settings) and settings.run_worker and not worker_child


@asynccontextmanager
async def vehicles_delivering(ctx: AppContext) -> AsyncIterator[Dispatcher]:
    """The delivery worker, then the dispatcher wired to it; stopped in reverse order."""
    async with dispatcher_delivery_role(ctx), vehicle_role(ctx) as dispatcher:
        yield dispatcher


def vehicle_side(ctx: AppContext) -> AbstractAsyncContextManager[Dispatcher]:
    """The vehicle side as ``settings`` want it: with its delivery worker or alone."""
    if delivers_inline(ctx.settings):
        return vehicles_delivering(ctx)
    return vehicle_role(ctx)
