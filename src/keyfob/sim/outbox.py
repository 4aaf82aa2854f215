"""The results a vehicle still owes the platform, oldest first, in bounded memory.

A command's result is the one vehicle message nothing else replaces: presence and telemetry are
superseded by the next ones (and both are sent afresh on every connection), acks are
diagnostics, but a lost result leaves the platform reporting ``VehicleConnectionTimeout`` for a
car that acted. So a result that could not be handed to the broker (no link, a publish that
failed, no PUBACK before the connection dropped) is kept here and sent again, in order, before
any newer result.

The bound protects a car that stays unreachable for a long time. At the bound the *oldest*
result is dropped: it is the one most likely past its command's deadline already, where the
platform no longer changes the remote's outcome, while the newest may still end a remote that
waits for it. Keeping a result twice is pointless (the platform reads one per command id), so a
result whose id is already held is not added again.
"""

from __future__ import annotations

from collections import OrderedDict

from keyfob.link.protocol import Result


class Outbox:
    """A bounded FIFO of results keyed by command id."""

    __slots__ = ("_held", "capacity", "dropped")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an outbox holds at least one result")
        self.capacity = capacity
        self.dropped = 0  # results pushed out at the bound, since the vehicle started
        self._held: OrderedDict[str, Result] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def __bool__(self) -> bool:
        return bool(self._held)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._held

    def keep(self, result: Result) -> Result | None:
        """Hold ``result`` behind the others; returns the result dropped at the bound, if any."""
        if result.id in self._held:
            return None
        self._held[result.id] = result
        if len(self._held) <= self.capacity:
            return None
        self.dropped += 1
        return self._held.popitem(last=False)[1]

    def drain(self) -> list[Result]:
        """Every held result, oldest first; the outbox is empty afterwards."""
        results = list(self._held.values())
        self._held.clear()
        return results

    def peek(self) -> list[Result]:
        return list(self._held.values())
