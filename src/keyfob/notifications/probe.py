"""A test notification: one request built and posted exactly as a real delivery would be.

A partner wants to know that a webhook target answers, verifies signatures and reads the body
before any car is involved. The probe makes the request through the worker's own preparation
(attributes rendered, body shaped for the callback's face, signed with its active secrets) and
attempt on the callback's channel (the same SSRF-safe ``WebhookSender``; for a user callback's
WebSocket or push channel, a connection or FCM requests made for this one message), so what
passes here passes for real. It is marked three
ways, so no receiver mistakes it for a command's progress:

* the header ``Keyfob-Test: true``;
* a ``webhook-id`` of ``msg_test_<hex>`` (the fleet face's ``eventId`` is ``test_<hex>`` too);
* a ``remoteActionId`` of 32 zeros and a VIN of 17 zeros (no remote or car has those).

Nothing is stored: it is not a notification of any remote, so it has no retry and no place in
the delivery log. The receiver's answer comes back as the ``Outcome`` a real attempt records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.models import callbacks
from keyfob.callbacks.targets import TargetPolicy
from keyfob.kit.ids import new_id
from keyfob.notifications import queue
from keyfob.notifications.outcome import Outcome
from keyfob.notifications.payload import EventRecord
from keyfob.notifications.push_channel import PushChannel, PushConfig
from keyfob.notifications.sender import WebhookSender
from keyfob.notifications.worker import DeliveryWorker
from keyfob.notifications.ws_channel import WebSocketChannel
from keyfob.store.engine import Database
from keyfob.vocabulary import EventType, PendingStatus

TEST_HEADER = "Keyfob-Test"
TEST_REMOTE_ID = "0" * 32
TEST_VIN = "0" * 17

_TARGET = select(
    callbacks.c.id,
    callbacks.c.fleet_id,
    cast(callbacks.c.subscribe, Text),
    callbacks.c.secrets,
    callbacks.c.updated_at,
    callbacks.c.face,
)


@dataclass(frozen=True)
class Probe:
    """What the test request was, and what the receiver made of it."""

    message_id: str
    sent_at: datetime
    target: str
    outcome: Outcome


async def target_of(conn: AsyncConnection, callback_id: str) -> queue.Target:
    """The callback as delivery reads it; the caller has checked it is the caller's."""
    row = (await conn.execute(_TARGET.where(callbacks.c.id == callback_id))).one()
    return queue.Target(*row)


def _test_event(remote_type: str, now: datetime) -> tuple[str, dict[str, Any]]:
    marker = f"test_{new_id()}"
    record = EventRecord(
        event_id=marker,
        remote_id=TEST_REMOTE_ID,
        seq=0,
        vin=TEST_VIN,
        event_date=now,
        remote_type=remote_type,
        event_type=EventType.PENDING.value,
        status=PendingStatus.ACCEPTED.value,
    )
    return marker, record.as_json()


async def send_test(
    database: Database,
    policy: TargetPolicy,
    *,
    timeout_s: float,
    target: queue.Target,
    remote_type: str,
    now: datetime,
    push: PushConfig | None = None,
) -> Probe:
    """Build the test request as the worker builds a real one, send it, return the outcome.

    The senders are the worker's classes with the operator's policy and time-out, made for this
    one request and closed after it (a test is rare; it must not hold connections open).
    ``push`` is the FCM configuration, when the operator set one."""
    marker, record = _test_event(remote_type, now)
    row = queue.Claimed(marker, target.id, TEST_REMOTE_ID, 0, json.dumps(record), 0, now)
    sender = WebhookSender(policy, timeout=timeout_s, limit=1, limit_per_host=1)
    websocket = WebSocketChannel(policy, timeout=timeout_s)
    pusher = PushChannel(push) if push is not None else None
    try:
        preparer = DeliveryWorker(
            database, sender, clock=lambda: now, websocket=websocket, push=pusher
        )
        delivery = queue.Delivery(target, [row])
        request = preparer.prepare(delivery)
        request = replace(request, headers={**request.headers, TEST_HEADER: "true"})
        outcome = await preparer.attempt(delivery, request)
    finally:
        await sender.close()
        await websocket.close()
        if pusher is not None:
            await pusher.close()
    return Probe(request.message_id, now, request.url, outcome)
