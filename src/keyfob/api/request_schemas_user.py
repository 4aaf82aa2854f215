"""JSON schemas of the user face's request bodies, published in ``/openapi.json``.

The same approach as ``request_schemas`` (closed objects, the parsers' own limits), for the b2c
``CallbackSubscribe`` and ``Remote``: exactly one channel (``webhook``, ``websocket``, or
``pushnotif`` where the operator configured FCM), no ``retryPolicy`` or ``batchNotify``, no
immobilization or stolen, and a remote's own ``attributes`` and ``callbackAttributes``.
"""

from __future__ import annotations

from typing import Any

from keyfob.api.request_schemas import (
    ACTIONS,
    REMOTE_CALLBACKS_STATUS_SETTER,
    _enum,
    _object,
)
from keyfob.callbacks.attributes import USER, AttributeType
from keyfob.callbacks.parsing import MAX_ATTRIBUTES
from keyfob.callbacks.user_schemas import ALL_TYPES, CHANNELS, MAX_DEVICES
from keyfob.remotes.user_schemas import FLEET_ONLY

Schema = dict[str, Any]

_VALUE = {
    "type": "string",
    "maxLength": 4096,
    "description": f"A literal, or a template using {USER.listed} (any case; $$ for a literal "
    "dollar). An unknown variable is refused.",
}


def _attributes(kinds: tuple[AttributeType, ...]) -> Schema:
    item = _object(
        {
            "type": _enum([kind.value for kind in kinds]),
            "key": {"type": "string", "minLength": 1, "maxLength": 256},
            "value": _VALUE,
        },
        required=("type", "key", "value"),
    )
    return {"type": "array", "items": item, "maxItems": MAX_ATTRIBUTES}


_ALL_KINDS = tuple(AttributeType)

_WEBHOOK = _object(
    {
        "target": {
            "type": "string",
            "format": "uri",
            "description": "Absolute URL the messages are POSTed to.",
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 256},
        "attributes": _attributes(_ALL_KINDS),
        "batch": {
            "type": "object",
            "deprecated": True,
            "description": "Accepted for compatibility with old examples and ignored.",
        },
    },
    required=("target", "name"),
)


def _channel_attributes(kinds: tuple[AttributeType, ...], default: AttributeType) -> Schema:
    schema = _attributes(kinds)
    schema["items"]["required"] = ["key", "value"]
    schema["items"]["properties"]["type"]["default"] = default.value
    return schema


_WEBSOCKET = _object(
    {
        "target": {
            "type": "string",
            "format": "uri",
            "description": "ws:// or wss:// URL keyfob connects to; each message is one text "
            "frame (a JSON array under backlog).",
        },
        "attributes": _channel_attributes((AttributeType.BODY,), AttributeType.BODY),
        "batch": {
            "type": "object",
            "deprecated": True,
            "description": "Accepted for compatibility with old examples and ignored.",
        },
    },
    required=("target",),
)

_PUSH = _object(
    {
        "devices": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 4096},
            "minItems": 1,
            "maxItems": MAX_DEVICES,
            "uniqueItems": True,
            "description": "FCM registration tokens; one FCM reports unregistered is removed, "
            "and the callback is deleted when none is left.",
        },
        "attributes": _channel_attributes(
            (AttributeType.HEADER, AttributeType.BODY), AttributeType.HEADER
        ),
    },
    required=("devices",),
    description="Offered where the operator configured FCM (a 400 otherwise).",
)

USER_CALLBACK_SUBSCRIBE: Schema = _object(
    {
        "label": {"type": "string", "maxLength": 200},
        "type": {
            "type": "array",
            "items": _enum([kind.value for kind in ALL_TYPES]),
            "minItems": 1,
            "uniqueItems": True,
            "description": "Which features may use the callback; absent means both.",
        },
        "callback": _object(
            {"webhook": _WEBHOOK, "websocket": _WEBSOCKET, "pushnotif": _PUSH},
            description="Exactly one channel.",
            oneOf=[{"required": [name]} for name in CHANNELS],
        ),
    },
    required=("callback",),
    title="CallbackSubscribe",
)

CALLBACKS_STATUS_SETTER: Schema = {
    **REMOTE_CALLBACKS_STATUS_SETTER,
    "title": "CallbacksStatusSetter",
}

_USER_ACTIONS = {name: schema for name, schema in ACTIONS.items() if name not in FLEET_ONLY}

USER_REMOTE: Schema = _object(
    {
        "label": {"type": "string"},
        "attributes": {
            **_attributes((AttributeType.HEADER, AttributeType.BODY)),
            "description": "Added to the callback's for this remote's messages; one with the "
            "type and key of a callback attribute replaces it.",
        },
        "callbackAttributes": _object(
            {
                "webhook": _attributes(_ALL_KINDS),
                "websocket": _channel_attributes((AttributeType.BODY,), AttributeType.BODY),
                "pushnotif": _channel_attributes(
                    (AttributeType.HEADER, AttributeType.BODY), AttributeType.HEADER
                ),
            },
            description="The callback's attributes as this remote changes them (same rule); "
            "the member of the callback's channel applies.",
        ),
        **_USER_ACTIONS,
    },
    title="Remote",
    description="Exactly one action member per request.",
    oneOf=[{"required": [name]} for name in _USER_ACTIONS],
)
