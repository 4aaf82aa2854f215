"""Where protocol v1 messages travel: one versioned topic tree per vehicle.

The version is in the topic (``keyfob/v1/...``) so a v2 can run beside v1 on the same broker,
and the VIN is one topic level so a broker ACL can confine each vehicle to its own tree with a
``%u`` pattern. A VIN is checked before it becomes a topic level: a ``+``, ``#`` or ``/``
inside it would let one vehicle's topic reach another's.

    keyfob/v1/vehicles/{vin}/cmd        platform → vehicle   Command
    keyfob/v1/vehicles/{vin}/ack        vehicle → platform   Ack
    keyfob/v1/vehicles/{vin}/result     vehicle → platform   Result
    keyfob/v1/vehicles/{vin}/status     vehicle → platform   Telemetry
    keyfob/v1/vehicles/{vin}/presence   vehicle → platform   Presence (retained, last will)
    keyfob/v1/wakeup/{vin}              platform → SMS stand-in  WakeSignal
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from keyfob.link.protocol import Ack, Presence, ProtocolError, Result, Telemetry, decode

ROOT = "keyfob/v1"
VEHICLES = f"{ROOT}/vehicles"
WAKEUP = f"{ROOT}/wakeup"
VIN_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Channel(StrEnum):
    CMD = "cmd"
    ACK = "ack"
    RESULT = "result"
    STATUS = "status"
    PRESENCE = "presence"


UPLINK_CHANNELS = (Channel.ACK, Channel.RESULT, Channel.STATUS, Channel.PRESENCE)
UplinkMessage = Ack | Result | Telemetry | Presence
UPLINK_KINDS: Mapping[Channel, type[UplinkMessage]] = {
    Channel.ACK: Ack,
    Channel.RESULT: Result,
    Channel.STATUS: Telemetry,
    Channel.PRESENCE: Presence,
}

UPLINK_SUBSCRIPTIONS: tuple[str, ...] = tuple(f"{VEHICLES}/+/{c}" for c in UPLINK_CHANNELS)
"""Everything vehicles publish (not the commands): for diagnostics and tools."""

PLATFORM_SUBSCRIPTIONS: tuple[str, ...] = tuple(
    f"{VEHICLES}/+/{c}" for c in UPLINK_CHANNELS if c is not Channel.ACK
)
"""What the dispatcher subscribes to: results, status and presence. Not ``ack``: nothing of
the lifecycle follows from it (SentToVehicle is recorded when the command goes out, Done from
the result), and the two acks of every command were half the messages, and PUBACKs, a
dispatcher handled."""

WAKEUP_SUBSCRIPTION = f"{WAKEUP}/+"
"""What the SMS stand-in (the simulator process) subscribes to in MQTT mode."""


def check_vin(vin: str) -> str:
    """``vin`` if it is safe as one topic level (letters, digits, ``-``, ``_``, ``.``; ≤ 64)."""
    if not isinstance(vin, str) or not VIN_PATTERN.fullmatch(vin):
        raise ProtocolError(
            f"vin: {vin!r} cannot be a topic level; use 1 to 64 letters, digits, '-', '_' or '.'"
        )
    return vin


def vehicle_topic(vin: str, channel: Channel) -> str:
    return f"{VEHICLES}/{check_vin(vin)}/{channel.value}"


def wakeup_topic(vin: str) -> str:
    return f"{WAKEUP}/{check_vin(vin)}"


def shared(group: str, pattern: str) -> str:
    """An MQTT shared subscription: the broker hands each message to one member of ``group``."""
    if not group or any(c in group for c in "/+#"):
        raise ProtocolError(f"group: {group!r} must be a non-empty name without '/', '+', '#'")
    return f"$share/{group}/{pattern}"


def parse_vehicle_topic(topic: str) -> tuple[str, Channel]:
    """``(vin, channel)`` of a vehicle topic, or ``ProtocolError``."""
    prefix = f"{VEHICLES}/"
    parts = topic[len(prefix) :].split("/") if topic.startswith(prefix) else []
    if len(parts) != 2:
        raise ProtocolError(f"topic: {topic!r} is not {VEHICLES}/<vin>/<channel>")
    vin, channel = parts
    try:
        return check_vin(vin), Channel(channel)
    except ValueError:
        raise ProtocolError(f"topic: unknown channel {channel!r} in {topic!r}") from None


def parse_wakeup_topic(topic: str) -> str:
    prefix = f"{WAKEUP}/"
    if not topic.startswith(prefix):
        raise ProtocolError(f"topic: {topic!r} is not {WAKEUP}/<vin>")
    return check_vin(topic[len(prefix) :])


@dataclass(frozen=True, slots=True)
class Uplink:
    """A message from a vehicle, with the VIN its topic names."""

    vin: str
    channel: Channel
    message: UplinkMessage


def decode_uplink(topic: str, payload: bytes) -> Uplink:
    """Decode what vehicles publish (``UPLINK_SUBSCRIPTIONS``); ``ProtocolError`` if bad."""
    vin, channel = parse_vehicle_topic(topic)
    message: UplinkMessage
    match channel:
        case Channel.ACK:
            message = decode(Ack, payload)
        case Channel.RESULT:
            message = decode(Result, payload)
        case Channel.STATUS:
            message = decode(Telemetry, payload)
        case Channel.PRESENCE:
            message = decode(Presence, payload)
        case _:
            raise ProtocolError(f"topic: {channel.value!r} is not a vehicle-to-platform channel")
    return Uplink(vin, channel, message)
