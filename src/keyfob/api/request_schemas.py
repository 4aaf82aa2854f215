"""JSON schemas of the request bodies, published in ``/openapi.json``.

The routes read their bodies themselves (``api.http.json_body``) so that every refusal is a 400
naming the field; FastAPI therefore cannot infer a schema, and without these the published
document would say ``{"type": "object"}``. The pydantic models of ``callbacks.schemas`` and
``remotes.bodies`` are not used to generate them: they accept ``null`` for absent members and
hide the contract's cross-field rules (exactly one action, a program that is ``Set`` needs its
whole content) in validators that JSON Schema cannot see. So the shapes are written here with
the official field names and enums, tightened to what keyfob accepts, and the limits are
imported from the parsers so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from keyfob.callbacks.attributes import AttributeType
from keyfob.callbacks.schemas import (
    HORIZON_SECONDS,
    MAX_ATTRIBUTES,
    MAX_BATCH_SIZE,
    RetryPolicyKind,
)
from keyfob.remotes.bodies.climate import MAX_PROGRAMS
from keyfob.remotes.bodies.navigation import MAX_POSITIONS
from keyfob.vocabulary import CallbackStatus, RemoteType

Schema = dict[str, Any]

__all__ = [
    "REMOTE",
    "REMOTE_CALLBACKS_STATUS_SETTER",
    "REMOTE_CALLBACK_SUBSCRIBE",
    "request_body",
]

# -- shared pieces -------------------------------------------------------------------------

BOOLEAN: Schema = {"type": "boolean"}
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# An ISO-8601 duration from midnight with at least one component (PT14H30M, PT0S, ...).
TIME_OF_DAY = r"^P(?:0D)?T(?:\d+H(?:\d+M)?(?:\d+S)?|\d+M(?:\d+S)?|\d+S)$"


def _object(properties: Schema, *, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """A closed object: keyfob refuses members it does not know."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def _enum(values: list[str], **extra: Any) -> Schema:
    return {"type": "string", "enum": values, **extra}


def _seconds(minimum: int, default: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum, "maximum": HORIZON_SECONDS}
    if default is not None:
        schema["default"] = default
    return schema


def _slot() -> Schema:
    return {"type": "integer", "minimum": 1, "maximum": MAX_PROGRAMS}


def _time_of_day() -> Schema:
    return {
        "type": "string",
        "pattern": TIME_OF_DAY,
        "description": "Time of day as an ISO-8601 duration from midnight, below 24 hours.",
    }


def _occurence() -> Schema:
    days = {"type": "array", "items": _enum(DAYS), "minItems": 1, "uniqueItems": True}
    return _object({"day": days}, required=("day",))


REMOTE_TYPES: Schema = {
    "type": "array",
    "items": _enum([t.value for t in RemoteType]),
    "minItems": 1,
    "uniqueItems": True,
}

# -- RemoteCallbackSubscribe ---------------------------------------------------------------

_ATTRIBUTE = _object(
    {
        "type": _enum([t.value for t in AttributeType]),
        "key": {"type": "string", "minLength": 1, "maxLength": 256},
        "value": {
            "type": "string",
            "maxLength": 4096,
            "description": "A literal, or a template using $vin, $callbackID, $remoteType, "
            "$fleetID ($$ for a literal dollar). An unknown variable is refused.",
        },
    },
    required=("type", "key", "value"),
)

_WEBHOOK = _object(
    {
        "target": {
            "type": "string",
            "format": "uri",
            "description": "Absolute URL the notifications are POSTed to.",
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 256},
        "attributes": {"type": "array", "items": _ATTRIBUTE, "maxItems": MAX_ATTRIBUTES},
        "batch": {
            "type": "object",
            "deprecated": True,
            "description": "Accepted for compatibility with old examples and ignored; "
            "use batchNotify.",
        },
    },
    required=("target", "name"),
)

_RETRY_POLICY = _object(
    {
        "policy": _enum([k.value for k in RetryPolicyKind]),
        "retryNumber": _seconds(1, default=3),
        "retryDelay": _seconds(1, default=10),
        "maxRetryNumber": {
            **_seconds(1),
            "deprecated": True,
            "description": "Former name of retryNumber.",
        },
    },
    required=("policy",),
)

_BATCH_NOTIFY = _object(
    {
        "size": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH_SIZE},
        "timeWindow": _seconds(5, default=60),
    },
    required=("size",),
)

REMOTE_CALLBACK_SUBSCRIBE: Schema = _object(
    {
        "label": {"type": "string", "maxLength": 200},
        "callback": _object({"webhook": _WEBHOOK}, required=("webhook",)),
        "retryPolicy": _RETRY_POLICY,
        "batchNotify": _BATCH_NOTIFY,
        "remoteTypes": REMOTE_TYPES,
        "notificationTypes": {
            **REMOTE_TYPES,
            "deprecated": True,
            "description": "Former name of remoteTypes, accepted in its place.",
        },
    },
    required=("callback", "remoteTypes"),
    title="RemoteCallbackSubscribe",
)

REMOTE_CALLBACKS_STATUS_SETTER: Schema = _object(
    {"status": _enum([CallbackStatus.RUNNING.value, CallbackStatus.PAUSED.value])},
    required=("status",),
    title="RemoteCallbacksStatusSetter",
)

# -- Remote: one action per request --------------------------------------------------------

_PRECONDITIONING_PROGRAM = _object(
    {
        "slot": _slot(),
        "actionsType": _enum(["Set", "Delete"], default="Set"),
        "enabled": BOOLEAN,
        "recurrence": _enum(["None", "Daily"], default="Daily"),
        "start": _time_of_day(),
        "occurence": _occurence(),
    },
    required=("slot",),
    # A Delete needs only its slot; a Set (the default) needs the whole program.
    anyOf=[
        {"properties": {"actionsType": {"const": "Delete"}}, "required": ["actionsType"]},
        {"required": ["enabled", "start", "occurence"]},
    ],
)

_PRECONDITIONING = _object(
    {
        "airConditioning": _object(
            {
                "immediate": BOOLEAN,
                "programs": {
                    "type": "array",
                    "items": _PRECONDITIONING_PROGRAM,
                    "minItems": 1,
                    "maxItems": MAX_PROGRAMS,
                },
            },
            minProperties=1,
        )
    },
    required=("airConditioning",),
)

_CHARGE_PROGRAM = _object(
    {
        "slot": _slot(),
        "enabled": BOOLEAN,
        "start": _time_of_day(),
        "end": _time_of_day(),
        "occurence": _occurence(),
        "chargeUntilFull": BOOLEAN,
    },
    required=("start",),
)

_TIMESTAMP: Schema = {"type": "string", "format": "date-time"}

_CHARGING = _object(
    {
        "immediate": {**BOOLEAN, "description": "true starts a charge now, false stops it."},
        "schedule": _object(
            {
                "nextDelayedTime": _TIMESTAMP,
                "programs": {
                    "type": "array",
                    "items": _CHARGE_PROGRAM,
                    "minItems": 1,
                    "maxItems": MAX_PROGRAMS,
                },
            },
            minProperties=1,
            maxProperties=1,
        ),
        "nextDelayedTime": {
            **_TIMESTAMP,
            "deprecated": True,
            "description": "Former place of schedule.nextDelayedTime.",
        },
        "preferences": _object(
            {
                "level": _enum(["Level1", "Level2", "Level3", "Level4", "Level5"]),
                "type": _enum(["Partial", "Full"]),
            },
            minProperties=1,
        ),
    },
    minProperties=1,
    # preferences travel alone; schedule and the deprecated nextDelayedTime exclude each other.
    anyOf=[
        {"required": ["preferences"], "maxProperties": 1},
        {
            "not": {
                "anyOf": [
                    {"required": ["preferences"]},
                    {"required": ["schedule", "nextDelayedTime"]},
                ]
            }
        },
    ],
)

_POINT = _object(
    {
        "type": _enum(["Point"]),
        "coordinates": {
            "type": "array",
            "description": "GeoJSON order: [longitude, latitude(, altitude)].",
            "prefixItems": [
                {"type": "number", "minimum": -180, "maximum": 180},
                {"type": "number", "minimum": -90, "maximum": 90},
                {"type": "number"},
            ],
            "items": False,
            "minItems": 2,
            "maxItems": 3,
        },
    },
    required=("type", "coordinates"),
)

_NAVIGATION = _object(
    {
        "positions": {
            "type": "array",
            "items": _POINT,
            "minItems": 1,
            "maxItems": MAX_POSITIONS,
            "description": "The route; the last point is the destination.",
        },
        "driverApproval": {**BOOLEAN, "deprecated": True},
    },
    required=("positions",),
)

_IMMOBILIZATION = _object({"activate": BOOLEAN}, required=("activate",))

_STOLEN = _object(
    {
        "stolen": BOOLEAN,
        "trackingPeriod": _object(
            {
                "running": {"type": "integer", "minimum": 5, "description": "Seconds."},
                "shutdown": {"type": "integer", "minimum": 60, "description": "Seconds."},
            },
            minProperties=1,
        ),
        "immobilization": _IMMOBILIZATION,
    },
    minProperties=1,
    maxProperties=1,
)

ACTIONS: dict[str, Schema] = {
    "preconditioning": _PRECONDITIONING,
    "charging": _CHARGING,
    "door": _object(
        {"state": _enum(["Unlocked", "Locked"]), "forced": {**BOOLEAN, "deprecated": True}},
        required=("state",),
    ),
    "horn": _object({"state": _enum(["Activated", "Unactivated"])}, required=("state",)),
    "lights": _object({"on": BOOLEAN}, required=("on",)),
    "wakeUp": _object({"action": _enum(["WakeUp"], default="WakeUp")}),
    "navigation": _NAVIGATION,
    "immobilization": _IMMOBILIZATION,
    "stolen": _STOLEN,
}
"""Body member → its schema; the member decides the RemoteType (decision 10)."""

REMOTE: Schema = _object(
    {"label": {"type": "string"}, **ACTIONS},
    title="Remote",
    description="Exactly one action member per request.",
    oneOf=[{"required": [name]} for name in ACTIONS],
)


def request_body(schema: Schema) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose JSON body has ``schema``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }
