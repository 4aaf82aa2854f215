"""What both faces' command-control extensions do once the caller's resource is found.

The fleet face (``routes_control``) and the user face (``routes_user_control``) differ only in
how the caller is authenticated and which fleet, vehicle, callback or remote is theirs; that
lookup (a 404 otherwise) stays at each route. Sending a test, reading a wake-up budget and
cancelling a remote are the same on both, so they are written once here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.api import views_control
from keyfob.api.http import HalResponse
from keyfob.notifications import probe, queue
from keyfob.notifications.push_channel import PushConfig
from keyfob.remotes.control.cancel import cancel_plan
from keyfob.runtime.context import AppContext
from keyfob.store.units import run_unit
from keyfob.vehicles.budget import WakeBudget, read_budget, wake_limits

T = TypeVar("T")


async def send_test(
    ctx: AppContext, target: queue.Target, remote_type: str, push: PushConfig | None = None
) -> probe.Probe:
    """A test notification to ``target``, sent as the delivery worker would send it."""
    return await probe.send_test(
        ctx.database,
        ctx.target_policy,
        timeout_s=ctx.settings.delivery.timeout_s,
        target=target,
        remote_type=remote_type,
        now=ctx.clock(),
        push=push,
    )


async def budget_of(conn: AsyncConnection, ctx: AppContext, vehicle_id: str) -> WakeBudget:
    """The vehicle's wake-up budgets (decision 19) as the dispatcher will count them."""
    return await read_budget(
        conn, vehicle_id, limits=wake_limits(ctx.settings.vehicle), now=ctx.clock()
    )


def budget_answer(request: Request, vehicle_href: str, vin: str, budget: WakeBudget) -> HalResponse:
    """The budget, with the caller's own request budget (the ``X-RateLimit-*`` headers)."""
    body = views_control.vehicle_budget(
        f"{vehicle_href}/budget",
        vehicle_href,
        vin,
        budget,
        getattr(request.state, "rate_headers", None),
    )
    return HalResponse(body)


async def cancel(
    ctx: AppContext, remote_id: str, read: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Cancel a remote the route has found to be the caller's, then ``read`` it back."""
    await run_unit(ctx.database, lambda: cancel_plan(remote_id, now=ctx.clock()))
    ctx.wake()
    async with ctx.database.read() as conn:
        return await read(conn)
