"""The delivery worker as a role: claims due notifications and delivers them on each
callback's channel (webhook POSTs, WebSocket frames, FCM push when configured)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from keyfob.config import PushSettings
from keyfob.notifications.push_channel import PushChannel, PushConfig, load_push_config
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker, WorkerOptions
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.runtime.context import AppContext, running_check
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


@asynccontextmanager
async def delivery_role(ctx: AppContext) -> AsyncIterator[DeliveryWorker]:
    settings = ctx.settings.delivery
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
        options=WorkerOptions(
            lease_s=settings.lease_s,
            claim_limit=settings.batch_claim,
            poll_s=settings.poll_s,
            record_every_s=settings.record_every_s,
        ),
        metrics=metrics,
        websocket=websocket,
        push=push,
    )
    ctx.delivery_wakers.append(worker.wake)
    task = asyncio.create_task(worker.run(), name="delivery-worker")
    ctx.checks["delivery"] = running_check(task, "the delivery worker")
    try:
        # Events stored by dispatchers and remotes accepted in other processes (PostgreSQL).
        async with listening(ctx.database, worker.wake, EVENTS_STORED, REMOTES_DUE):
            yield worker
    finally:
        ctx.checks.pop("delivery", None)
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=settings.timeout_s + 5)
        except TimeoutError:
            task.cancel()
        ctx.delivery_wakers.remove(worker.wake)
        await sender.close()
        await websocket.close()
        if push is not None:
            await push.close()
