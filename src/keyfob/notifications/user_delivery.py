"""One POST to a user callback: its messages, their attributes, the headers keyfob adds.

The same messages feed the other channels: a WebSocket frame carries ``prepare``'s body, push
takes ``messages`` one by one (``notifications.push_channel``).

The user face's delivery differs from the fleet face's in what is sent, not in how: the worker
claims, posts, records and retries both alike (``notifications.worker``), and asks this module
for the request when the callback is a user's.

* Each message's attributes are the callback's combined with its remote's own
  (``callbacks.remote_attributes``), rendered with the user face's variables for that message:
  ``$Vin``, ``$CallbackID``, ``$CallbackLabel``, ``$RemoteType``, ``$RemoteStatus`` (the event's
  status) and ``$RemoteLabel``.
* One message: its Header attributes are headers, its Query attributes the query.
* Several (a backlog, ``notifications.queue``): a JSON array, in which only Body attributes are
  valued; the request carries no header or query attribute, as the contract says of batches.
* Always: ``webhook-id`` (``msg_`` and the event id, or a digest of the events' ids for an
  array), ``webhook-timestamp``, ``webhook-signature`` and ``keyfob-sequence``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from keyfob.callbacks.attributes import USER, RenderedAttributes, render_request_parts
from keyfob.callbacks.remote_attributes import effective, load_remote_attributes
from keyfob.callbacks.secrets import active_secrets
from keyfob.callbacks.user_schemas import UserCallbackSubscribe, load_user_stored
from keyfob.notifications import queue
from keyfob.notifications.message import message, messages_body, sequence_header
from keyfob.notifications.payload import encode
from keyfob.notifications.signing import sign


@dataclass(frozen=True, slots=True)
class UserRequest:
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    message_id: str


@dataclass(frozen=True, slots=True)
class UserMessage:
    """One row's ``Message``, the attributes rendered for it and its remote's label."""

    record: dict[str, Any]
    parts: RenderedAttributes
    message: dict[str, Any]
    label: str


class UserMessages:
    """Builds the requests of user callbacks; keeps each stored body parsed, per version."""

    def __init__(self) -> None:
        self._subscribes: dict[tuple[str, str], UserCallbackSubscribe] = {}

    def subscribe(self, target: queue.Target) -> UserCallbackSubscribe:
        key = (target.id, target.subscribe)
        found = self._subscribes.get(key)
        if found is None:
            if len(self._subscribes) > 10_000:
                self._subscribes.clear()
            found = self._subscribes[key] = load_user_stored(json.loads(target.subscribe))
        return found

    def messages(self, delivery: queue.Delivery) -> list[UserMessage]:
        """Each row's ``Message`` with the attributes it was rendered with, in order."""
        target = delivery.target
        subscribe = self.subscribe(target)
        made: list[UserMessage] = []
        for row in delivery.rows:
            record = orjson.loads(row.event)
            context = orjson.loads(delivery.contexts.get(row.id) or "null") or {}
            own = load_remote_attributes(
                context.get("attributes"), context.get("callbackAttributes")
            )
            label = context.get("label") or ""
            variables = {
                "Vin": record["vin"],
                "CallbackID": target.id,
                "CallbackLabel": subscribe.label or "",
                "RemoteType": record["remote_type"],
                "RemoteStatus": record["status"],
                "RemoteLabel": label,
            }
            parts = render_request_parts(
                effective(subscribe.attributes, own, subscribe.channel), variables, face=USER
            )
            made.append(UserMessage(record, parts, message(target.id, parts.body, record), label))
        return made

    def prepare(self, delivery: queue.Delivery, now: datetime) -> UserRequest:
        target = delivery.target
        subscribe = self.subscribe(target)
        made = self.messages(delivery)
        records = [item.record for item in made]
        parts = made[0].parts
        single = len(made) == 1
        # An array carries only its messages' Body attributes (spec §3.2).
        headers = dict(parts.headers) if single else {}
        query = list(parts.query) if single else []
        body = encode(messages_body([item.message for item in made]))
        ids = [str(record["event_id"]) for record in records]
        digest = ids[0] if single else hashlib.sha256("|".join(ids).encode()).hexdigest()[:32]
        message_id = f"msg_{digest}"
        headers["Content-Type"] = "application/json"
        headers.update(sequence_header(records))
        secrets = active_secrets(target.secrets, now)
        if secrets:
            headers.update(sign(secrets, message_id, int(now.timestamp()), body))
        return UserRequest(subscribe.target, query, headers, body, message_id)
