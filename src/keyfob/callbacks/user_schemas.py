"""The body of POST/PUT ``/user/callbacks`` (B2C ``CallbackSubscribe``, §3.2).

The user face has no ``retryPolicy`` nor ``batchNotify``: its delivery policy is the platform's
(decision 30). What it has is ``type`` (which features may use the callback; absent means both)
and a ``callback`` holding exactly one channel:

* ``webhook``: ``target`` (http/https), ``name``, attributes of any type;
* ``websocket``: ``target`` (ws/wss), attributes of type Body only (the default);
* ``pushnotif``: ``devices`` (FCM registration tokens, at least one), attributes of type Header
  (the default: they go into the FCM message's ``data``) or Body; the keys FCM reserves
  (``from``, ``message_type``, anything starting with ``google`` or ``gcm``) are refused.
  Push is refused with a 400 while the operator has not configured FCM (``push_offered``).

Parsing is as strict as on the fleet face (``callbacks.parsing``); webhook and WebSocket targets
pass the same SSRF policy (``callbacks.targets``), and attribute values use the user face's
variables (decision 8: ``$Vin``, ``$CallbackID``, ``$CallbackLabel``, ``$RemoteType``,
``$RemoteStatus``, ``$RemoteLabel``, any case).

``to_stored()`` is echoed as ``subscribe`` in GET: ``type`` only when it was given (a client that
compares its own body with the echo finds what it sent), attributes always as a list.

    parse_user_callback_body(json, target_policy, push_offered) ─► UserCallbackSubscribe
    load_user_stored(stored) ─► UserCallbackSubscribe ─► .to_stored()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, Strict

from keyfob.callbacks.attributes import USER, AttributeSpec, AttributeType, validate_value
from keyfob.callbacks.parsing import (
    MAX_ATTRIBUTES,
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
WEBHOOK, WEBSOCKET, PUSH = CHANNELS
MAX_DEVICES = 100
_RESERVED_DATA_KEYS = ("from", "message_type")
_RESERVED_DATA_PREFIXES = ("google", "gcm")


@dataclass(frozen=True, slots=True)
class UserCallbackSubscribe:
    """A checked user callback body."""

    target: str
    """The webhook's or the WebSocket's URL; empty for push."""
    webhook_name: str
    """The webhook's ``name``; empty for the other channels."""
    attributes: list[AttributeSpec]
    types: tuple[CallbackType, ...] | None
    """As given; ``None`` when the body has no ``type`` (both features may use it)."""
    label: str | None
    channel: str = WEBHOOK
    devices: tuple[str, ...] = ()
    """``pushnotif.devices``: the FCM registration tokens."""

    @property
    def effective_types(self) -> tuple[CallbackType, ...]:
        return self.types or ALL_TYPES

    def to_stored(self) -> dict[str, Any]:
        """The official ``CallbackSubscribe`` shape."""
        body: dict[str, Any] = {} if self.label is None else {"label": self.label}
        if self.types is not None:
            body["type"] = [kind.value for kind in self.types]
        attributes = stored_attributes(self.attributes)
        channel: dict[str, Any]
        if self.channel == WEBSOCKET:
            channel = {"target": self.target, "attributes": attributes}
        elif self.channel == PUSH:
            channel = {"devices": list(self.devices), "attributes": attributes}
        else:
            channel = {"target": self.target, "name": self.webhook_name, "attributes": attributes}
        body["callback"] = {self.channel: channel}
        return body


class _WebhookIn(Input):
    target: str
    name: Annotated[str, Field(min_length=1, max_length=256)]
    attributes: Attributes | None = None
    batch: Any = None  # decision 5, as on the fleet face: doc examples carry it; dropped


class ChannelAttributeIn(Input):
    """A ``WSAttribute`` or ``PushNotifAttribute``: ``type`` may be left out."""

    type: Annotated[AttributeType, Strict(False)] | None = None
    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)]


ChannelAttributes = Annotated[list[ChannelAttributeIn], Field(max_length=MAX_ATTRIBUTES)]


class _WebSocketIn(Input):
    target: str
    attributes: ChannelAttributes | None = None
    batch: Any = None  # as on webhook: doc examples carry it; dropped


class _PushIn(Input):
    devices: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=4096)]],
        Field(min_length=1, max_length=MAX_DEVICES),
    ]
    attributes: ChannelAttributes | None = None


class _CallbackIn(Input):
    webhook: _WebhookIn | None = None
    websocket: _WebSocketIn | None = None
    pushnotif: _PushIn | None = None


class _BodyIn(Input):
    label: Annotated[str, Field(max_length=200)] | None = None
    type: list[Annotated[CallbackType, Strict(False)]] | None = None
    callback: _CallbackIn


def parse_user_callback_body(
    data: object, *, target_policy: TargetPolicy, push_offered: bool = False
) -> UserCallbackSubscribe:
    """Check a POST/PUT user callback body; every refusal is a ``KeyfobError`` naming the field.

    ``push_offered``: whether this server can deliver push (FCM is configured)."""
    return _parse(data, target_policy, push_offered)


def load_user_stored(data: Mapping[str, Any]) -> UserCallbackSubscribe:
    """Rebuild a user callback from ``to_stored()`` output without re-judging its target."""
    return _parse(dict(data), None, True)


def _parse(
    data: object, target_policy: TargetPolicy | None, push_offered: bool
) -> UserCallbackSubscribe:
    channel = _check_channel(data, push_offered)
    body = validate(_BodyIn, data)
    types, label = _types(body.type), body.label
    if body.callback.websocket is not None:
        socket = body.callback.websocket
        target = socket.target
        if target_policy is not None:
            target = check_target(
                target, target_policy, field="callback.websocket.target", websocket=True
            )
        attributes = channel_attributes(
            socket.attributes, WEBSOCKET, "callback.websocket.attributes"
        )
        return UserCallbackSubscribe(target, "", attributes, types, label, channel=WEBSOCKET)
    if body.callback.pushnotif is not None:
        push = body.callback.pushnotif
        attributes = channel_attributes(push.attributes, PUSH, "callback.pushnotif.attributes")
        devices = _devices(push.devices)
        return UserCallbackSubscribe("", "", attributes, types, label, PUSH, devices)
    webhook = body.callback.webhook
    if webhook is None:  # _check_channel saw one channel: this cannot happen
        raise KeyfobError(ErrorCode.INVALID_BODY, f"callback: must hold {channel}")
    target = webhook.target
    if target_policy is not None:
        target = check_target(target, target_policy, field="callback.webhook.target")
    return UserCallbackSubscribe(
        target=target,
        webhook_name=not_blank(webhook.name, "callback.webhook.name"),
        attributes=attribute_specs(
            webhook.attributes or [], "callback.webhook.attributes", face=USER
        ),
        types=types,
        label=label,
    )


def channel_attributes(
    items: list[ChannelAttributeIn] | None, channel: str, path: str
) -> list[AttributeSpec]:
    """A WebSocket's attributes are Body only (the default); a push's are Header (the default:
    into ``data``) or Body. ``path`` names the list in messages."""
    default = AttributeType.BODY if channel == WEBSOCKET else AttributeType.HEADER
    specs: list[AttributeSpec] = []
    keys: dict[str, int] = {}
    for index, item in enumerate(items or []):
        where = f"{path}[{index}]"
        kind = item.type or default
        if kind is AttributeType.QUERY or (channel == WEBSOCKET and kind is not default):
            allowed = "Body" if channel == WEBSOCKET else "Header or Body"
            raise KeyfobError(
                ErrorCode.INVALID_BODY, f"{where}.type: a {channel} attribute is {allowed}"
            )
        if kind is AttributeType.HEADER:
            lowered = item.key.lower()
            if lowered in _RESERVED_DATA_KEYS or lowered.startswith(_RESERVED_DATA_PREFIXES):
                raise KeyfobError(
                    ErrorCode.INVALID_BODY,
                    f"{where}.key: {item.key!r} is reserved by FCM (from, message_type, "
                    "google*, gcm*)",
                )
            first = keys.setdefault(item.key, index)
            if first != index:
                raise KeyfobError(
                    ErrorCode.INVALID_BODY,
                    f"{where}.key: {item.key} is already set by {path}[{first}]",
                )
        validate_value(item.value, f"{where}.value", face=USER)
        specs.append(AttributeSpec(type=kind, key=item.key, value=item.value))
    return specs


def _devices(devices: list[str]) -> tuple[str, ...]:
    for index, token in enumerate(devices):
        if not token.strip() or any(char.isspace() for char in token):
            raise KeyfobError(
                ErrorCode.INVALID_BODY,
                f"callback.pushnotif.devices[{index}]: an FCM token has no spaces",
            )
        if token in devices[:index]:
            raise KeyfobError(
                ErrorCode.INVALID_BODY,
                f"callback.pushnotif.devices[{index}]: the token is listed twice",
            )
    return tuple(devices)


def _check_channel(data: object, push_offered: bool) -> str:
    """Exactly one channel, and one keyfob offers; said before any detail of it is judged."""
    if not isinstance(data, dict) or not isinstance(data.get("callback"), dict):
        return ""  # the model names what is missing or mistyped
    channels = present(data["callback"], *CHANNELS)
    if len(channels) != 1:
        found = f" (found {', '.join(channels)})" if channels else ""
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"callback: must hold exactly one of {', '.join(CHANNELS)}{found}",
        )
    (channel,) = channels
    if channel == PUSH and not push_offered:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "callback.pushnotif: this server has no push (FCM) configuration; use "
            "callback.webhook or callback.websocket",
        )
    return str(channel)


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
