"""The body of POST/PUT ``/user/callbacks`` (B2C ``CallbackSubscribe``, §3.2).

The user face has no ``retryPolicy`` nor ``batchNotify``: its delivery policy is the platform's
(decision 30). What it has is ``type`` (which features may use the callback; absent means both)
and a ``callback`` holding exactly one channel. Only ``webhook`` is offered today: a body naming
``websocket`` or ``pushnotif`` is refused with a 400 that says so, rather than stored and never
delivered. Parsing is as strict as on the fleet face (``callbacks.parsing``); the webhook target
passes the same SSRF policy (``callbacks.targets``), and attribute values use the user face's
variables (decision 8: ``$Vin``, ``$CallbackID``, ``$CallbackLabel``, ``$RemoteType``,
``$RemoteStatus``, ``$RemoteLabel``, any case).

``to_stored()`` is echoed as ``subscribe`` in GET: ``type`` only when it was given (a client that
compares its own body with the echo finds what it sent), attributes always as a list.

    parse_user_callback_body(json, target_policy) ─► UserCallbackSubscribe ─► .to_stored()
    load_user_stored(stored)                      ─┘
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, Strict

from keyfob.callbacks.attributes import USER, AttributeSpec
from keyfob.callbacks.parsing import (
    Attributes,
    Input,
    attribute_specs,
    not_blank,
    present,
    stored_attributes,
    validate,
)
from keyfob.callbacks.targets import TargetPolicy, check_target
from keyfob.errors import ErrorCode, KeyfobError


class CallbackType(StrEnum):
    """Which features may notify through a user callback (``SubscribeType``)."""

    MONITOR = "Monitor"
    REMOTE = "Remote"


ALL_TYPES = (CallbackType.MONITOR, CallbackType.REMOTE)
CHANNELS = ("webhook", "websocket", "pushnotif")
NOT_OFFERED = {
    "websocket": "WebSocket delivery",
    "pushnotif": "push notification (FCM) delivery",
}


@dataclass(frozen=True, slots=True)
class UserCallbackSubscribe:
    """A checked user callback body."""

    target: str
    webhook_name: str
    attributes: list[AttributeSpec]
    types: tuple[CallbackType, ...] | None
    """As given; ``None`` when the body has no ``type`` (both features may use it)."""
    label: str | None

    @property
    def effective_types(self) -> tuple[CallbackType, ...]:
        return self.types or ALL_TYPES

    def to_stored(self) -> dict[str, Any]:
        """The official ``CallbackSubscribe`` shape."""
        body: dict[str, Any] = {} if self.label is None else {"label": self.label}
        if self.types is not None:
            body["type"] = [kind.value for kind in self.types]
        body["callback"] = {
            "webhook": {
                "target": self.target,
                "name": self.webhook_name,
                "attributes": stored_attributes(self.attributes),
            }
        }
        return body


class _WebhookIn(Input):
    target: str
    name: Annotated[str, Field(min_length=1, max_length=256)]
    attributes: Attributes | None = None
    batch: Any = None  # decision 5, as on the fleet face: doc examples carry it; dropped


class _CallbackIn(Input):
    webhook: _WebhookIn


class _BodyIn(Input):
    label: Annotated[str, Field(max_length=200)] | None = None
    type: list[Annotated[CallbackType, Strict(False)]] | None = None
    callback: _CallbackIn


def parse_user_callback_body(data: object, *, target_policy: TargetPolicy) -> UserCallbackSubscribe:
    """Check a POST/PUT user callback body; every refusal is a ``KeyfobError`` naming the field."""
    return _parse(data, target_policy)


def load_user_stored(data: Mapping[str, Any]) -> UserCallbackSubscribe:
    """Rebuild a user callback from ``to_stored()`` output without re-judging its target."""
    return _parse(dict(data), None)


def _parse(data: object, target_policy: TargetPolicy | None) -> UserCallbackSubscribe:
    _check_channel(data)
    body = validate(_BodyIn, data)
    webhook = body.callback.webhook
    target = webhook.target
    if target_policy is not None:
        target = check_target(target, target_policy, field="callback.webhook.target")
    return UserCallbackSubscribe(
        target=target,
        webhook_name=not_blank(webhook.name, "callback.webhook.name"),
        attributes=attribute_specs(
            webhook.attributes or [], "callback.webhook.attributes", face=USER
        ),
        types=_types(body.type),
        label=body.label,
    )


def _check_channel(data: object) -> None:
    """Exactly one channel, and one keyfob offers; said before any detail of it is judged."""
    if not isinstance(data, dict) or not isinstance(data.get("callback"), dict):
        return  # the model names what is missing or mistyped
    channels = present(data["callback"], *CHANNELS)
    if len(channels) != 1:
        found = f" (found {', '.join(channels)})" if channels else ""
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"callback: must hold exactly one of {', '.join(CHANNELS)}{found}",
        )
    (channel,) = channels
    if channel in NOT_OFFERED:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"callback.{channel}: {NOT_OFFERED[channel]} is not offered yet; use callback.webhook",
        )


def _types(types: list[CallbackType] | None) -> tuple[CallbackType, ...] | None:
    if types is None:
        return None
    if not types:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "type: must list at least one of Monitor, Remote (or be left out for both)",
        )
    for index, kind in enumerate(types):
        if kind in types[:index]:
            raise KeyfobError(
                ErrorCode.INVALID_BODY, f"type[{index}]: {kind.value} is listed twice"
            )
    return tuple(types)
