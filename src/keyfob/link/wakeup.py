"""Waking a sleeping vehicle, which cannot hear MQTT while it sleeps.

A parked car drops its data connection to save its 12 V battery; a real platform reaches it
through the cellular network's SMS, which the modem still listens to. keyfob models that path
behind ``WakeUpChannel`` so the dispatcher does not care how the signal travels:

* ``SimulatedSmsGateway``: in-process, for the one-process default; vehicles register a
  receiver per VIN, like a SIM card registered with a gateway;
* ``MqttWakeUpChannel``: publishes a ``WakeSignal`` on ``keyfob/v1/wakeup/{vin}``. Only the
  simulator process listens there, for every vehicle including sleeping ones: it stands in
  for the SMS network. A real deployment would replace it with an SMS gateway client.

``wake`` only hands the signal over: whether the vehicle wakes shows later, as its presence
turning ``online``. ``WakeUpError`` means the gateway refused the signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import Clock, utcnow
from keyfob.link.protocol import ProtocolError, WakeSignal, encode
from keyfob.link.topics import check_vin, wakeup_topic
from keyfob.link.transport import Transport, TransportError

SmsReceiver = Callable[[str], None]


class WakeUpError(KeyfobError):
    """The wake-up signal could not be sent (unknown number, gateway down, SIM barred)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


class WakeUpChannel(Protocol):
    async def wake(self, vin: str) -> None: ...


class SimulatedSmsGateway:
    """An SMS gateway inside the process: delivers to the receiver registered for a VIN."""

    def __init__(self) -> None:
        self._receivers: dict[str, SmsReceiver] = {}
        self._barred: set[str] = set()
        self.sent: list[str] = []

    def register(self, vin: str, receiver: SmsReceiver) -> None:
        self._receivers[check_vin(vin)] = receiver

    def unregister(self, vin: str) -> None:
        self._receivers.pop(vin, None)

    def bar(self, vin: str, barred: bool = True) -> None:
        """Scenario knob: refuse (or accept again) signals to ``vin``, like a barred SIM."""
        if barred:
            self._barred.add(vin)
        else:
            self._barred.discard(vin)

    async def wake(self, vin: str) -> None:
        try:
            check_vin(vin)
        except ProtocolError as exc:
            raise WakeUpError(exc.message) from None
        receiver = self._receivers.get(vin)
        if receiver is None:
            raise WakeUpError(f"vin: no SIM is registered for {vin}")
        if vin in self._barred:
            raise WakeUpError(f"vin: the gateway refuses signals to {vin}")
        self.sent.append(vin)
        asyncio.get_running_loop().call_soon(receiver, vin)  # delivered later, as an SMS is


class MqttWakeUpChannel:
    """Sends wake-up signals over a ``Transport`` to the simulator's SMS stand-in."""

    def __init__(self, transport: Transport, *, clock: Clock = utcnow) -> None:
        self._transport = transport
        self._clock = clock

    async def wake(self, vin: str) -> None:
        try:
            topic = wakeup_topic(vin)
        except ProtocolError as exc:
            raise WakeUpError(exc.message) from None
        try:
            await self._transport.publish(topic, encode(WakeSignal(self._clock())), qos=1)
        except TransportError as exc:
            raise WakeUpError(f"wake-up of {vin}: {exc.message}") from None
