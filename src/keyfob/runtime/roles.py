"""The background roles that run beside (or instead of) the API.

Each role is an async context manager taking the app context: it starts its loops as named
tasks on entry and stops them gracefully on exit. ``keyfob serve`` runs them all in one process
(the embedded default); ``keyfob worker`` / ``keyfob dispatcher`` run one role alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from keyfob.config import Settings
from keyfob.runtime.campaign_role import campaign_role
from keyfob.runtime.context import AppContext
from keyfob.runtime.delivery_role import delivery_role
from keyfob.runtime.settle import settled_heap
from keyfob.runtime.upkeep_role import table_upkeep
from keyfob.runtime.vehicle_side import delivers_inline, vehicle_side
from keyfob.runtime.worker_child import (
    delivery_child_role,
    shares_database,
    vehicle_child_role,
)

Role = Callable[[AppContext], AbstractAsyncContextManager[object]]
"""Starts its loops as named tasks on entry, stops them gracefully on exit."""


@asynccontextmanager
async def hosting(ctx: AppContext, roles: Sequence[Role]) -> AsyncIterator[None]:
    """Every role started in order, stopped in reverse order, around the block."""
    async with AsyncExitStack() as stack:
        for role in roles:
            await stack.enter_async_context(role(ctx))
        yield


def embedded_roles(settings: Settings) -> Sequence[Role]:
    roles: list[Role] = [table_upkeep, campaign_role]  # campaigns post through its acceptor
    inline = settings.run_dispatcher and delivers_inline(settings)
    # The worker first: it is stopped last, after the dispatcher that may hand it rows.
    if settings.run_worker and not inline:
        child = settings.run_worker_in_child and shares_database(settings)
        roles.append(delivery_child_role if child else delivery_role)
    if settings.run_dispatcher:
        child = settings.run_vehicles_in_child and shares_database(settings)
        roles.append(vehicle_child_role if child else vehicle_side)
    roles.append(settled_heap)
    return roles
