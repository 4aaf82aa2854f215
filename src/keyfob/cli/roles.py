"""The background roles that run beside (or instead of) the API.

Each role is an async context manager taking the app context: it starts its loops as named
tasks on entry and stops them gracefully on exit. ``keyfob serve`` runs them all in one process
(the embedded default); ``keyfob worker`` / ``keyfob dispatcher`` run one role alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from keyfob.api.app import Role
from keyfob.api.context import AppContext
from keyfob.config import Settings
from keyfob.notifications.metrics import DeliveryMetrics
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions


def metrics_of(ctx: AppContext) -> DeliveryMetrics:
    found = ctx.extras.get("metrics")
    if not isinstance(found, DeliveryMetrics):
        found = ctx.extras["metrics"] = DeliveryMetrics()
    return found


@asynccontextmanager
async def delivery_role(ctx: AppContext) -> AsyncIterator[DeliveryWorker]:
    settings = ctx.settings.delivery
    metrics = metrics_of(ctx)
    sender = WebhookSender(
        ctx.target_policy,
        timeout=settings.timeout_s,
        limit=settings.max_connections,
        limit_per_host=settings.max_connections_per_host,
        metrics=metrics,
    )
    worker = DeliveryWorker(
        ctx.database,
        sender,
        clock=ctx.clock,
        options=WorkerOptions(lease_s=settings.lease_s, claim_limit=settings.batch_claim),
        metrics=metrics,
    )
    wakers = ctx.extras.setdefault("wakers", [])
    wakers.append(worker.wake)
    task = asyncio.create_task(worker.run(), name="delivery-worker")
    try:
        yield worker
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=settings.timeout_s + 5)
        except TimeoutError:
            task.cancel()
        wakers.remove(worker.wake)
        await sender.close()


def embedded_roles(settings: Settings) -> Sequence[Role]:
    from keyfob.cli.vehicle_role import vehicle_role

    roles: list[Role] = []
    if settings.run_dispatcher:
        roles.append(vehicle_role)
    if settings.run_worker:
        roles.append(delivery_role)
    return roles
