"""The delivery worker as a role: claims due notifications and delivers them on each
callback's channel (webhook POSTs, WebSocket frames, FCM push when configured)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from keyfob.config import PushSettings
from keyfob.notifications.handover_local import new_token, owner_of, receiving
from keyfob.notifications.push_channel import PushChannel, PushConfig, load_push_config
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.runtime.context import AppContext, inline, running_check
from keyfob.store.nudge import EVENTS_STORED, REMOTES_DUE, listening


def push_config(fcm: PushSettings) -> PushConfig | None:
    """FCM as the operator configured it (the key file is read here), or ``None``."""
    if fcm.service_account_file is None:
        return None
    return load_push_config(
        fcm.service_account_file,
        fcm_url=fcm.fcm_url,
        project_id=fcm.project_id,
        token_url=fcm.token_url,
        timeout=fcm.timeout_s,
    )


def delivery_role(ctx: AppContext) -> AbstractAsyncContextManager[DeliveryWorker]:
    """A worker of its own: woken by whatever is stored here or in other processes. With
    ``delivery.inline`` remotes accepted elsewhere do not wake it: a dispatcher takes their
    notifications (``notifications.handover``), and it claims what is left."""
    if inline(ctx.settings):
        return _delivery(
            ctx, (EVENTS_STORED,), beside_dispatcher=False, handover_file=ctx.database.file
        )
    return _delivery(ctx, (EVENTS_STORED, REMOTES_DUE), beside_dispatcher=False)


def dispatcher_delivery_role(ctx: AppContext) -> AbstractAsyncContextManager[DeliveryWorker]:
    """The worker a dispatcher hands its notifications to (``ctx.deliverer``). Nothing stored
    elsewhere wakes it, so it does not race other workers for their rows: its dispatcher
    wakes it for what it did not take, and it polls."""
    return _delivery(ctx, (), beside_dispatcher=True)


@asynccontextmanager
async def _delivery(
    ctx: AppContext,
    wake_on: tuple[str, ...],
    *,
    beside_dispatcher: bool,
    handover_file: str | None = None,
) -> AsyncIterator[DeliveryWorker]:
    """``handover_file``: the SQLite file on which dispatchers in other processes hand their
    notifications to this worker (``notifications.handover_local``)."""
    settings = ctx.settings.delivery
    options = WorkerOptions(
        lease_s=settings.lease_s,
        claim_limit=settings.batch_claim,
        poll_s=settings.poll_s,
        record_every_s=settings.record_every_s,
    )
    token = new_token() if handover_file is not None else ""
    if token:
        options.owner = owner_of(token)  # the dispatchers lease to it under this name
    metrics = ctx.metrics
    sender = WebhookSender(
        ctx.target_policy,
        timeout=settings.timeout_s,
        limit=settings.max_connections,
        limit_per_host=settings.max_connections_per_host,
        metrics=metrics,
    )
    websocket = WebSocketChannel(
        ctx.target_policy,
        timeout=settings.timeout_s,
        ping_interval=settings.websocket_ping_s,
        idle_s=settings.websocket_idle_s,
        metrics=metrics,
    )
    config = push_config(ctx.settings.push)
    push = None if config is None else PushChannel(config, metrics=metrics)
    worker = DeliveryWorker(
        ctx.database,
        sender,
        clock=ctx.clock,
        options=options,
        metrics=metrics,
        websocket=websocket,
        push=push,
    )
    if beside_dispatcher:
        ctx.deliverer = worker
    else:
        ctx.delivery_wakers.append(worker.wake)
    task = asyncio.create_task(worker.run(), name="delivery-worker")
    ctx.checks["delivery"] = running_check(task, "the delivery worker")
    try:
        # Events stored by dispatchers and remotes accepted in other processes (PostgreSQL).
        async with contextlib.AsyncExitStack() as stack:
            if wake_on:
                await stack.enter_async_context(listening(ctx.database, worker.wake, *wake_on))
            if handover_file is not None:
                await stack.enter_async_context(receiving(handover_file, token, worker.take))
            yield worker
    finally:
        ctx.checks.pop("delivery", None)
        if ctx.deliverer is worker:
            ctx.deliverer = None
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=settings.timeout_s + 5)
        except TimeoutError:
            task.cancel()
        if worker.wake in ctx.delivery_wakers:
            ctx.delivery_wakers.remove(worker.wake)
        await sender.close()
        await websocket.close()
        if push is not None:
            await push.close()
