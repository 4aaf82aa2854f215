"""The vehicle side with a delivery worker beside it, when the dispatcher delivers inline.

With ``delivery.inline`` (the default on SQLite) the process that runs a dispatcher also runs
a delivery worker, started first and stopped last, and the dispatcher hands it the
notifications of the events it stores (``notifications.handover``). ``keyfob serve`` then
starts one child for the vehicle side and its deliveries instead of two, and ``keyfob
dispatcher`` delivers too; ``keyfob worker`` processes take what is left: retries, the rows of
a dispatcher that died, and notifications raised elsewhere (replays, the user face, batching
callbacks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from keyfob.config import Settings
from keyfob.remotes.dispatcher import Dispatcher
from keyfob.runtime.context import AppContext
from keyfob.runtime.delivery_role import dispatcher_delivery_role, inline
from keyfob.runtime.vehicle_role import vehicle_role


def delivers_inline(settings: Settings) -> bool:
    """Whether the vehicle side runs its own delivery worker."""
    return inline(settings) and settings.run_worker


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
