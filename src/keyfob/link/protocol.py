"""Vehicle wire protocol v1: the JSON messages keyfob and a vehicle exchange.

The protocol is written down for implementers in ``docs/vehicle-protocol.md``; this module is
its single executable definition, used by the dispatcher and by the simulator alike. Decoding
never trusts the peer: any defect raises ``ProtocolError`` naming the field, so a receive loop
can log the message and carry on.

    platform ──Command──► vehicle        (…/cmd)
    platform ◄──Ack────── vehicle        (…/ack: received, then executing)
    platform ◄──Result─── vehicle        (…/result: success | alreadyDone | failed + cause)
    platform ◄──Telemetry vehicle        (…/status: the status document, on every change)
    platform ◄──Presence─ vehicle        (…/presence: online | asleep | offline, retained)
    platform ──WakeSignal► SMS stand-in  (keyfob/v1/wakeup/{vin})

The vehicle's failure codes are its own vocabulary (``WireCause``); ``FAILURE_CAUSES`` maps them
one to one onto the contract's ``failureCause`` values a vehicle can produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import isoformat
from keyfob.kit.ids import new_id
from keyfob.vocabulary import DoneStatus, FailureCause, FeedbackDetail, RemoteType

PROTOCOL_VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_ID_LENGTH = 64


class ProtocolError(KeyfobError):
    """A message that is not valid protocol v1; the text names the offending field."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.BAD_REQUEST, message)


class Action(StrEnum):
    """A command's action: the name of the contract's ``Remote`` body member it carries."""

    PRECONDITIONING = "preconditioning"
    CHARGING = "charging"
    DOOR = "door"
    HORN = "horn"
    LIGHTS = "lights"
    WAKE_UP = "wakeUp"
    NAVIGATION = "navigation"
    IMMOBILIZATION = "immobilization"
    STOLEN = "stolen"


ACTION_REMOTE_TYPES: Mapping[Action, RemoteType] = {
    Action.PRECONDITIONING: RemoteType.THERMAL_PRECONDITIONING,
    Action.CHARGING: RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
    Action.DOOR: RemoteType.DOORS,
    Action.HORN: RemoteType.HORN,
    Action.LIGHTS: RemoteType.LIGHTS,
    Action.WAKE_UP: RemoteType.WAKE_UP,
    Action.NAVIGATION: RemoteType.NAVIGATION,
    Action.IMMOBILIZATION: RemoteType.IMMOBILIZATION,
    Action.STOLEN: RemoteType.STOLEN,
}
_ACTIONS_BY_TYPE = {remote_type: action for action, remote_type in ACTION_REMOTE_TYPES.items()}


def action_for(remote_type: RemoteType) -> Action:
    """The wire action of a remote type (decision 10, read backwards)."""
    return _ACTIONS_BY_TYPE[remote_type]


class AckState(StrEnum):
    RECEIVED = "received"
    EXECUTING = "executing"


class Outcome(StrEnum):
    SUCCESS = "success"
    ALREADY_DONE = "alreadyDone"
    FAILED = "failed"


class WireCause(StrEnum):
    """Why a vehicle failed a command; see ``FAILURE_CAUSES`` for the contract's names."""

    VEHICLE_ERROR = "vehicleError"
    WRONG_COMMAND = "wrongCommand"
    DOORS_OPEN = "doorsOpen"
    VEHICLE_IN_USE = "vehicleInUse"
    ERROR_OR_KEY_INSIDE = "errorOrKeyInside"
    KEY_INSIDE = "keyInside"
    CHARGER_ERROR = "chargerError"
    CHARGING_SYSTEM_ERROR = "chargingSystemError"
    NOT_LOCKED = "notLocked"
    CANCELED_BY_DRIVER = "canceledByDriver"
    BATTERY_LEVEL = "batteryLevel"
    PRIVACY_LEVEL = "privacyLevel"
    STOLEN_STATE = "stolenState"
    TOO_MANY_REQUESTS = "tooManyRequests"


FAILURE_CAUSES: Mapping[WireCause, FailureCause] = {
    WireCause.VEHICLE_ERROR: FailureCause.VEHICLE_ERROR,
    WireCause.WRONG_COMMAND: FailureCause.WRONG_COMMAND,
    WireCause.DOORS_OPEN: FailureCause.DOORS_OPEN,
    WireCause.VEHICLE_IN_USE: FailureCause.VEHICLE_IN_USE,
    WireCause.ERROR_OR_KEY_INSIDE: FailureCause.VEHICLE_ERROR_OR_CID_INSIDE,
    WireCause.KEY_INSIDE: FailureCause.CID_INSIDE,
    WireCause.CHARGER_ERROR: FailureCause.EXTERNAL_CHARGING_SYSTEM_ERROR,
    WireCause.CHARGING_SYSTEM_ERROR: FailureCause.VEHICLE_CHARGING_SYSTEM_ERROR,
    WireCause.NOT_LOCKED: FailureCause.VEHICLE_IS_NOT_LOCKED,
    WireCause.CANCELED_BY_DRIVER: FailureCause.CANCELED_BY_DRIVER,
    WireCause.BATTERY_LEVEL: FailureCause.NOT_POSSIBLE_DUE_TO_VEHICLE_BATTERY_LEVEL,
    WireCause.PRIVACY_LEVEL: FailureCause.NOT_POSSIBLE_DUE_TO_VEHICLE_PRIVACY_LEVEL,
    WireCause.STOLEN_STATE: FailureCause.NOT_POSSIBLE_DUE_TO_VEHICLE_STOLEN_STATE,
    WireCause.TOO_MANY_REQUESTS: FailureCause.TOO_MANY_REQUEST_SENT,
}


class WireFeedback(StrEnum):
    """Extra detail on a door lock: was the in-car key identifier blacklisted?"""

    KEY_NOT_BLACKLISTED = "keyNotBlacklisted"
    KEY_BLACKLISTED = "keyBlacklisted"


FEEDBACK_DETAILS: Mapping[WireFeedback, FeedbackDetail] = {
    WireFeedback.KEY_NOT_BLACKLISTED: FeedbackDetail.NO_CID_BLACKLISTED,
    WireFeedback.KEY_BLACKLISTED: FeedbackDetail.CID_BLACKLISTED,
}

DONE_STATUSES: Mapping[Outcome, DoneStatus] = {
    Outcome.SUCCESS: DoneStatus.SUCCESS,
    Outcome.ALREADY_DONE: DoneStatus.ALREADY_DONE,
    Outcome.FAILED: DoneStatus.FAILED,
}


class PresenceState(StrEnum):
    ONLINE = "online"
    ASLEEP = "asleep"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Command:
    """One remote action for one vehicle; ``params`` is the contract's action object as is."""

    id: str
    action: Action
    params: Mapping[str, Any] = field(hash=False)
    issued_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now > self.expires_at


@dataclass(frozen=True, slots=True)
class Ack:
    id: str
    state: AckState
    at: datetime


@dataclass(frozen=True, slots=True)
class Result:
    """The vehicle's final word on a command; ``cause`` is present exactly when it failed."""

    id: str
    outcome: Outcome
    at: datetime
    cause: WireCause | None = None
    feedback: WireFeedback | None = None

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.FAILED) != (self.cause is not None):
            raise ProtocolError("result.cause: present if and only if outcome is failed")

    @property
    def done_status(self) -> DoneStatus:
        return DONE_STATUSES[self.outcome]

    @property
    def failure_cause(self) -> FailureCause | None:
        return None if self.cause is None else FAILURE_CAUSES[self.cause]

    @property
    def feedback_detail(self) -> FeedbackDetail | None:
        return None if self.feedback is None else FEEDBACK_DETAILS[self.feedback]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """The vehicle's status document (the contract's ``Status`` minus vin, createdAt, _links)."""

    at: datetime
    status: Mapping[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Presence:
    state: PresenceState
    at: datetime


@dataclass(frozen=True, slots=True)
class WakeSignal:
    """What the wake-up channel carries in MQTT mode (the stand-in for an SMS)."""

    at: datetime


Message = Command | Ack | Result | Telemetry | Presence | WakeSignal
M = TypeVar("M", Command, Ack, Result, Telemetry, Presence, WakeSignal)


def new_command(
    action: Action, params: Mapping[str, Any], *, now: datetime, ttl: timedelta
) -> Command:
    """A command with a fresh correlation id that the vehicle must not execute after ``ttl``."""
    if ttl <= timedelta(0):
        raise ProtocolError("command.expiresAt: the time to live must be positive")
    return Command(new_id(), action, dict(params), now, now + ttl)


def encode(message: Message) -> bytes:
    """Compact UTF-8 JSON with ``"v": 1``; the inverse of ``decode``."""
    # Copied: orjson's own bytes keep a ~4 KiB allocation however short they are, and the
    # simulator holds a will per vehicle (10,000 of them were 36 MiB more).
    return bytes(memoryview(orjson.dumps(_to_wire(message))))


def _to_wire(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"v": PROTOCOL_VERSION}
    match message:
        case Command():
            body |= {
                "id": message.id,
                "action": message.action.value,
                "params": dict(message.params),
                "issuedAt": isoformat(message.issued_at),
                "expiresAt": isoformat(message.expires_at),
            }
        case Ack():
            body |= {"id": message.id, "state": message.state.value}
        case Result():
            body |= {"id": message.id, "outcome": message.outcome.value}
            if message.cause is not None:
                body["cause"] = message.cause.value
            if message.feedback is not None:
                body["feedbackDetail"] = message.feedback.value
        case Telemetry():
            body["status"] = dict(message.status)
        case Presence():
            body["state"] = message.state.value
        case WakeSignal():
            pass
    if not isinstance(message, Command):
        body["at"] = isoformat(message.at)
    return body


def decode(kind: type[M], data: bytes) -> M:
    """Parse ``data`` as a ``kind`` message, or raise ``ProtocolError`` naming the bad field."""
    name = kind.__name__.lower()
    fields = _Fields(name, _load(name, data))
    version = fields.get("v", int)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"{name}.v: unsupported protocol version {version!r}, expected 1")
    message: Message
    if kind is Command:
        message = Command(
            id=fields.identifier(),
            action=fields.choice("action", Action),
            params=fields.get("params", dict),
            issued_at=fields.moment("issuedAt"),
            expires_at=fields.moment("expiresAt"),
        )
        if message.expires_at < message.issued_at:
            raise ProtocolError("command.expiresAt: earlier than issuedAt")
    elif kind is Ack:
        message = Ack(fields.identifier(), fields.choice("state", AckState), fields.moment("at"))
    elif kind is Result:
        message = _decode_result(fields)
    elif kind is Telemetry:
        message = Telemetry(fields.moment("at"), fields.get("status", dict))
    elif kind is Presence:
        message = Presence(fields.choice("state", PresenceState), fields.moment("at"))
    else:
        message = WakeSignal(fields.moment("at"))
    assert isinstance(message, kind)
    return message


def _decode_result(fields: _Fields) -> Result:
    cause = fields.optional_choice("cause", WireCause)
    feedback = fields.optional_choice("feedbackDetail", WireFeedback)
    return Result(
        fields.identifier(), fields.choice("outcome", Outcome), fields.moment("at"), cause, feedback
    )


def _load(name: str, data: bytes) -> dict[str, Any]:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"{name}: payload larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        loaded = orjson.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"{name}: not a UTF-8 JSON document ({exc})") from None
    if not isinstance(loaded, dict):
        raise ProtocolError(f"{name}: expected a JSON object, got {type(loaded).__name__}")
    return loaded


_TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object", bool: "a boolean"}
E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class _Fields:
    """Typed access to a decoded object, with errors that name ``message.field``."""

    def __init__(self, name: str, body: dict[str, Any]) -> None:
        self.name = name
        self.body = body

    def get(self, key: str, kind: type[T]) -> T:
        if key not in self.body:
            raise ProtocolError(f"{self.name}.{key}: required field is missing")
        value = self.body[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(f"{self.name}.{key}: expected {_TYPE_NAMES[kind]}")
        return value

    def identifier(self) -> str:
        value = self.get("id", str)
        if not 0 < len(value) <= MAX_ID_LENGTH or not value.isprintable():
            raise ProtocolError(f"{self.name}.id: expected 1 to {MAX_ID_LENGTH} printable chars")
        return value

    def choice(self, key: str, kind: type[E]) -> E:
        value = self.get(key, str)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise ProtocolError(f"{self.name}.{key}: {value!r} is not one of {allowed}") from None

    def optional_choice(self, key: str, kind: type[E]) -> E | None:
        return self.choice(key, kind) if key in self.body else None

    def moment(self, key: str) -> datetime:
        value = self.get(key, str)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ProtocolError(f"{self.name}.{key}: expected an RFC 3339 time with a zone")
        return moment
