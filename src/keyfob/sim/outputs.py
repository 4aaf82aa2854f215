"""What a simulated vehicle asks its runner to do; the vehicle itself never performs I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyfob.link.protocol import Ack, Presence, Result, Telemetry
from keyfob.link.topics import Channel


@dataclass(frozen=True, slots=True)
class Send:
    """Publish ``message`` on the vehicle's ``channel`` topic (QoS 1)."""

    channel: Channel
    message: Ack | Result | Telemetry | Presence
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Connect:
    """Open the broker connection; call ``connected`` once it is up (and after each reconnect)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection; not ``graceful``: vanish, so the broker publishes the last will."""

    graceful: bool


@dataclass(frozen=True, slots=True)
class Timer:
    """Call ``tick`` at ``at``; replaces any earlier timer of the same vehicle."""

    at: datetime


Output = Send | Connect | Disconnect | Timer
