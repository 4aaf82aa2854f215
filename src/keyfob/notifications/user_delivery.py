"""One POST to a user callback: its messages, their attributes, the headers keyfob adds.

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

from keyfob.callbacks.attributes import USER, render_request_parts
from keyfob.callbacks.remote_attributes import effective, load_remote_attributes
from keyfob.callbacks.secrets import active_secrets
from keyfob.callbacks.user_schemas import UserCallbackSubscribe, load_user_stored
from keyfob.notifications import queue
from keyfob.notifications.message import encode, message, messages_body, sequence_header
from keyfob.notifications.signing import sign


@dataclass(frozen=True, slots=True)
class UserRequest:
    url: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    message_id: str


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

    def prepare(self, delivery: queue.Delivery, now: datetime) -> UserRequest:
        target = delivery.target
        subscribe = self.subscribe(target)
        records: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        parts = None
        for row in delivery.rows:
            record = json.loads(row.event)
            context = json.loads(delivery.contexts.get(row.id) or "null") or {}
            own = load_remote_attributes(
                context.get("attributes"), context.get("callbackAttributes")
            )
            variables = {
                "Vin": record["vin"],
                "CallbackID": target.id,
                "CallbackLabel": subscribe.label or "",
                "RemoteType": record["remote_type"],
                "RemoteStatus": record["status"],
                "RemoteLabel": context.get("label") or "",
            }
            parts = render_request_parts(effective(subscribe.attributes, own), variables, face=USER)
            records.append(record)
            messages.append(message(target.id, parts.body, record))
        single = len(messages) == 1 and parts is not None
        # An array carries only its messages' Body attributes (spec §3.2).
        headers = dict(parts.headers) if single and parts is not None else {}
        query = list(parts.query) if single and parts is not None else []
        body = encode(messages_body(messages))
        ids = [str(record["event_id"]) for record in records]
        digest = ids[0] if single else hashlib.sha256("|".join(ids).encode()).hexdigest()[:32]
        message_id = f"msg_{digest}"
        headers["Content-Type"] = "application/json"
        headers.update(sequence_header(records))
        secrets = active_secrets(target.secrets, now)
        if secrets:
            headers.update(sign(secrets, message_id, int(now.timestamp()), body))
        return UserRequest(subscribe.target, query, headers, body, message_id)
