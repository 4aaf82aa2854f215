"""A simulated vehicle's PUBLISH and PUBACK packets of one turn of the event loop, in one write.

A car answers a command with four messages at once (two acks, its telemetry and the result),
right after the PUBACK of the command itself. gmqtt writes each packet to the socket as it is
made: five system calls a command, each of which also wakes the broker for one packet. On the
benchmark's saturated machine those writes were a fifth of the simulator's time
(``docs/benchmarks.md``).

So each connection keeps the PUBLISH and PUBACK packets written during one turn of the loop
and sends them together at its end (``loop.call_soon``), the way the platform's own transport
does (``link.mqtt``). Any other packet (CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT) first sends
what is kept, then goes at once, as before: a DISCONNECT is never left behind a closed socket,
and the broker sees every packet in the order it was made. Nothing waits longer than the turn
it was made in.
"""

from __future__ import annotations

import asyncio
from typing import Any

_KEPT = frozenset({3, 4})
"""The packet types gathered into one write: PUBLISH and PUBACK."""


class Corked:
    """The writes of one gmqtt protocol (``protocol.write_data``), gathered per turn."""

    __slots__ = ("_loop", "_parts", "_write")

    def __init__(self, protocol: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._write = protocol.write_data  # gmqtt's own, before ``cork`` replaces it
        self._loop = loop
        self._parts: list[bytes] = []

    def write_data(self, data: bytes) -> None:
        if data and data[0] >> 4 in _KEPT:
            if not self._parts:
                self._loop.call_soon(self.flush)
            self._parts.append(data)
            return
        self.flush()
        self._write(data)

    def flush(self) -> None:
        """Send what is kept, as one write (nothing if it was sent already)."""
        if not self._parts:
            return
        parts, self._parts = self._parts, []
        self._write(parts[0] if len(parts) == 1 else b"".join(parts))


def cork(protocol: Any, loop: asyncio.AbstractEventLoop) -> Corked:
    """Make ``protocol`` (gmqtt's) gather its PUBLISH and PUBACK packets per turn."""
    corked = Corked(protocol, loop)
    protocol.write_data = corked.write_data
    return corked
