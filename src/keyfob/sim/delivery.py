"""How a simulated vehicle hands its results over: at once, or through its outbox.

Mixed into ``SimVehicle``. A result leaves at once only when nothing is held before it; one that
finishes while the car is OFFLINE, or arrives while older ones are held, goes behind them. The
runner reports a result the link could not take with ``undelivered``; held results leave, oldest
first, on the next connection and every ``outbox_retry`` seconds while the car is awake
(``docs/vehicle-protocol.md`` §5).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from keyfob.link.protocol import Result
from keyfob.link.topics import Channel
from keyfob.sim.config import SimConfig
from keyfob.sim.outputs import Output, Send
from keyfob.sim.state import Mode, VehicleState


class Delivery:
    """Mixed into ``SimVehicle``; the vehicle provides ``_finish`` and ``_count``."""

    __slots__ = ()

    state: VehicleState
    config: SimConfig

    def _finish(self, outputs: list[Output], now: datetime) -> list[Output]:
        raise NotImplementedError

    def _count(self, name: str) -> None:
        raise NotImplementedError

    def undelivered(self, result: Result, now: datetime) -> list[Output]:
        """The runner could not hand ``result`` to the broker: keep it and try again later."""
        self._hold(result)
        self.state.outbox_retry_at = now + timedelta(seconds=self.config.outbox_retry)
        return self._finish([], now)

    def _emit(self, result: Result) -> list[Output]:
        """Send ``result`` now, or keep it behind the results already held."""
        if self.state.mode is Mode.OFFLINE or self.state.outbox:
            self._hold(result)
            return []
        return [Send(Channel.RESULT, result)]

    def _hold(self, result: Result) -> None:
        if result.id in self.state.outbox:
            return
        self._count("results_held")
        if self.state.outbox.keep(result) is not None:
            self._count("results_dropped_at_bound")

    def _drain(self) -> list[Output]:
        """Every held result as a send, oldest first."""
        self.state.outbox_retry_at = None
        return [Send(Channel.RESULT, result) for result in self.state.outbox.drain()]
