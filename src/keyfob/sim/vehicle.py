"""A simulated vehicle as a pure state machine: messages and time in, outputs out.

No I/O and no asyncio: the caller passes ``now`` and carries out the returned outputs (publish,
connect, disconnect, call ``tick`` again at a time). The fleet runner does that over a real or
in-memory transport; unit tests do it by reading the lists.

Connectivity::

    ASLEEP ──SMS (wake)──► WAKING ──latency──► AWAKE ──awake window over, nothing running──► ASLEEP
                                                 │ ▲
                             fault / go_offline  ▼ │ period over
                                               OFFLINE   (results are kept and sent on return)

A result that cannot reach the broker is kept in the vehicle's ``Outbox`` (``delivery``): one
finished while OFFLINE, or one the runner reports ``undelivered`` (no link, a failed publish, no
PUBACK before the connection dropped); a car holding results does not fall asleep.

The awake window is 3 min after waking or stopping, +3 min per command received, never more
than 30 min ahead (decision 19, configurable). Driving, charging, a running preconditioning,
a stolen state or a command in progress keep the car awake. Below 11.0 V the modem no longer
wakes up. A driver interaction (door, ignition, privacy) wakes a sleeping car at once.

Each command is acknowledged ``received``, then judged in this order (first match answers):

    #  condition                                     actions                answer
    1  more than ``max_commands`` per window        all                    tooManyRequests
    2  params unreadable                             all                    wrongCommand
    3  not fitted (charging: Electric, Hybrid;       charging,              wrongCommand
       preconditioning: Electric, Hybrid, Hydrogen)  preconditioning
    4  the same action is still executing            all                    tooManyRequests
    5  privacy Full                                  all but stolen and     privacyLevel
                                                     immobilization
    6  stolen                                        door unlock, precond., stolenState
                                                     charging, navigation
    7  ignition not Stop                             door, horn, lights,    vehicleInUse
                                                     precond., charging,
                                                     immobilize (both forms)
    8  requested state already holds                 door, precond.,        alreadyDone
       (horn, lights and wake-up always act)         charging, navigation,
                                                     immobilization, stolen
    9  lock with an opening open                     door Locked            doorsOpen
    10 lock with the key inside, not forced          door Locked            keyInside
    11 12 V below ``low_voltage``                    horn/lights on,        batteryLevel
                                                     precond. immediate
    12 traction below ``low_traction_percent``       precond. immediate     batteryLevel
       and not plugged
    13 an opening open                               precond. immediate     doorsOpen
    14 not plugged                                   charging immediate     chargingSystemError
    15 the charging station is faulty                charging immediate     chargerError
    16 doors unlocked                                immobilize             notLocked
    17 otherwise: ``executing``, then success when done (a forced lock adds keyBlacklisted or
       keyNotBlacklisted)

When the action finishes, an armed driver cancel turns it into ``canceledByDriver`` (door, horn,
lights, preconditioning, charging, navigation; never the security actions). A ``vehicleError``
fault replaces a success (``errorOrKeyInside`` for a lock). The new state is published as
telemetry before the result, so the platform's status is fresh when the result arrives.

A command whose ``expiresAt`` has passed when it arrives is ignored: never executed, never
answered (the platform has already given up on it). A repeated command id is not executed again:
the vehicle repeats its ack or its result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from keyfob.kit.clock import Clock, utcnow
from keyfob.link.protocol import (
    Ack,
    AckState,
    Command,
    Presence,
    PresenceState,
    Result,
    Telemetry,
    WireCause,
)
from keyfob.link.topics import Channel, check_vin
from keyfob.sim import programs
from keyfob.sim.actions import apply
from keyfob.sim.config import SimConfig
from keyfob.sim.delivery import Delivery
from keyfob.sim.faults import NO_FAULT, FaultRoll, roll
from keyfob.sim.outbox import Outbox
from keyfob.sim.outputs import Connect, Disconnect, Output, Send, Timer
from keyfob.sim.params import BadParams, DoorRequest, Request, parse
from keyfob.sim.physics import advance
from keyfob.sim.rng import Rng
from keyfob.sim.rules import CANCELLABLE, decide, refused
from keyfob.sim.scenario import Knobs, delayed_start, personalize
from keyfob.sim.state import InFlight, Mode, VehicleState, Verdict
from keyfob.sim.status import build_status
from keyfob.vocabulary import Motorization

REMEMBERED_ANSWERS = 256
WAKE_COST_V = 0.005


class SimVehicle(Knobs, Delivery):
    __slots__ = ("clock", "config", "counters", "last_unreadable", "rng", "state", "vin")

    def __init__(
        self,
        vin: str,
        motorization: Motorization,
        *,
        seed: int | str = 0,
        clock: Clock = utcnow,
        config: SimConfig | None = None,
        awake: bool = True,
    ) -> None:
        self.vin = check_vin(vin)
        self.config = config or SimConfig()
        self.clock = clock
        self.rng = Rng(f"{seed}:{vin}")
        now = clock()
        window = timedelta(seconds=self.config.awake_window)
        mode = Mode.AWAKE if awake else Mode.ASLEEP
        self.state = VehicleState(motorization, mode, updated_at=now, awake_until=now + window)
        self.state.programs_seen_at = now
        self.state.outbox = Outbox(self.config.outbox_size)
        personalize(self.state, self.rng)
        self.counters: dict[str, int] = {}
        self.last_unreadable: str | None = None

    @property
    def mode(self) -> Mode:
        return self.state.mode

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        return build_status(self.state, now or self.clock())

    # -- what happens to the vehicle -------------------------------------------------------

    def start(self, now: datetime) -> list[Output]:
        """First outputs: connect when the vehicle starts awake."""
        outputs: list[Output] = [Connect()] if self.state.mode is Mode.AWAKE else []
        return self._finish(outputs, now)

    def connected(self, now: datetime) -> list[Output]:
        """The broker connection is (again) up: announce presence, state and held results."""
        advance(self.state, now)
        if self.state.mode is not Mode.AWAKE:
            return self._finish([], now)
        outputs: list[Output] = [Send(Channel.PRESENCE, Presence(PresenceState.ONLINE, now), True)]
        outputs.append(self._telemetry(now))
        outputs.extend(self._drain())
        return self._finish(outputs, now)

    def wake(self, now: datetime) -> list[Output]:
        """A wake-up SMS arrives."""
        state = self.state
        advance(state, now)
        outputs: list[Output] = []
        if state.mode is Mode.ASLEEP:
            if state.voltage < self.config.dead_voltage:
                self._count("wake_ignored_flat_battery")
            else:
                latency = self.rng.uniform(*self.config.wake_latency)
                state.mode = Mode.WAKING
                state.mode_until = now + timedelta(seconds=self.config.reaction(latency))
                state.voltage -= WAKE_COST_V
        elif state.mode is Mode.AWAKE:
            self._extend_awake(now)
            outputs.append(Send(Channel.PRESENCE, Presence(PresenceState.ONLINE, now), True))
        return self._finish(outputs, now)

    def tick(self, now: datetime) -> list[Output]:
        """Time passes: finish actions, report, wake up, come back online or fall asleep."""
        state = self.state
        dirty = advance(state, now)
        outputs: list[Output] = []
        due = state.mode_until is not None and now >= state.mode_until
        if (state.mode in (Mode.WAKING, Mode.OFFLINE) and due) or (
            state.mode is Mode.ASLEEP
            and (self._delayed_charge_due(now) or programs.due(state, now))
        ):
            self._become_awake(now, outputs)
        if state.mode in (Mode.AWAKE, Mode.OFFLINE):
            self._complete_due(now, outputs)
        retry = state.outbox_retry_at
        if state.mode is Mode.AWAKE and state.outbox and retry is not None and now >= retry:
            outputs.extend(self._drain())
        if state.mode is Mode.AWAKE:
            dirty |= self._start_delayed_charge(now)
            dirty |= programs.run_due(state, now, self.config.climate_run)
            dirty |= self._report_due(now)
            if dirty:
                outputs.append(self._telemetry(now))
            owed = any(isinstance(o, Send) and o.channel is Channel.RESULT for o in outputs)
            # Not asleep in the tick that sends a result: if the link refuses it, it is owed.
            if now >= state.awake_until and not owed and not self._kept_awake():
                outputs.append(Send(Channel.PRESENCE, Presence(PresenceState.ASLEEP, now), True))
                outputs.append(Disconnect(graceful=True))
                state.mode, state.next_report = Mode.ASLEEP, None
        return self._finish(outputs, now)

    def handle_command(self, command: Command, now: datetime) -> list[Output]:
        """A command arrives on the vehicle's command topic."""
        state = self.state
        advance(state, now)
        if state.mode is not Mode.AWAKE:
            return self._finish([], now)  # not connected: it cannot have heard it
        self._extend_awake(now)
        repeated = self._repeat(command, now)
        if repeated is not None:
            return self._finish(repeated, now)
        if command.expired(now):
            self._count("expired_ignored")
            return self._finish([], now)
        fault = roll(self.config.faults, self.rng) if self.config.faults.active else NO_FAULT
        if fault.drop_command:
            self._count("dropped_commands")
            return self._finish([], now)
        if fault.offline_for:
            return self.go_offline(fault.offline_for, now)
        outputs: list[Output] = [Send(Channel.ACK, Ack(command.id, AckState.RECEIVED, now))]
        request, verdict = self._judge(command, now, fault)
        state.command_times.append(now)
        if verdict.execute:
            outputs.append(Send(Channel.ACK, Ack(command.id, AckState.EXECUTING, now)))
            seconds = self.config.action_seconds[command.action]
        else:
            seconds = self.config.refusal_seconds
        done_at = now + timedelta(seconds=self.config.reaction(seconds) + fault.delay)
        state.in_flight[command.id] = InFlight(
            command, request, verdict, done_at, fault.drop_result
        )
        self._complete_due(now, outputs)
        return self._finish(outputs, now)

    # -- judging and completing commands ---------------------------------------------------

    def _judge(
        self, command: Command, now: datetime, fault: FaultRoll
    ) -> tuple[Request | None, Verdict]:
        state, config = self.state, self.config
        horizon = now - timedelta(seconds=config.command_window)
        state.command_times = [t for t in state.command_times if t > horizon]
        if len(state.command_times) >= config.max_commands:
            return None, refused(WireCause.TOO_MANY_REQUESTS)
        try:
            request = parse(command.action, command.params)
        except BadParams as exc:
            self._count("unreadable_params")
            self.last_unreadable = exc.message
            return None, refused(WireCause.WRONG_COMMAND)
        if state.busy_with(command.action):
            return request, refused(WireCause.TOO_MANY_REQUESTS)
        verdict = decide(state, command.action, request, config)
        if fault.vehicle_error and verdict.execute:
            locking = isinstance(request, DoorRequest) and request.lock
            verdict = refused(WireCause.ERROR_OR_KEY_INSIDE if locking else WireCause.VEHICLE_ERROR)
        return request, verdict

    def _complete_due(self, now: datetime, outputs: list[Output]) -> None:
        """Finish every command whose time has come, telemetry first, then the result."""
        flights = self.state.in_flight
        for flight in sorted(
            (f for f in flights.values() if f.done_at <= now), key=lambda f: f.done_at
        ):
            del flights[flight.command.id]
            verdict = flight.verdict
            if verdict.execute and self.state.cancel_next and flight.command.action in CANCELLABLE:
                self.state.cancel_next = False
                verdict = refused(WireCause.CANCELED_BY_DRIVER)
            elif verdict.execute and flight.request is not None:
                apply(
                    self.state,
                    flight.command.action,
                    flight.request,
                    now=now,
                    config=self.config,
                    new_id=self.rng.hex_id,
                )
                if self.state.mode is Mode.AWAKE:
                    outputs.append(self._telemetry(now))
            result = Result(
                flight.command.id, verdict.outcome, now, verdict.cause, verdict.feedback
            )
            self._remember(result)
            if flight.drop_result:
                self._count("dropped_results")
            else:
                outputs.extend(self._emit(result))

    def _repeat(self, command: Command, now: datetime) -> list[Output] | None:
        """The answer to a command id seen before (QoS 1 may deliver twice)."""
        answered = self.state.answered.get(command.id)
        if answered is not None:
            return self._emit(answered)
        flight = self.state.in_flight.get(command.id)
        if flight is not None:
            state = AckState.EXECUTING if flight.verdict.execute else AckState.RECEIVED
            return [Send(Channel.ACK, Ack(command.id, state, now))]
        return None

    def _remember(self, result: Result) -> None:
        answered = self.state.answered
        answered[result.id] = result
        while len(answered) > REMEMBERED_ANSWERS:
            del answered[next(iter(answered))]

    # -- time-driven behaviour -------------------------------------------------------------

    def _become_awake(self, now: datetime, outputs: list[Output]) -> None:
        state = self.state
        state.mode, state.mode_until = Mode.AWAKE, None
        state.awake_until = max(
            state.awake_until, now + timedelta(seconds=self.config.awake_window)
        )
        outputs.append(Connect())

    def _extend_awake(self, now: datetime) -> None:
        state, config = self.state, self.config
        extended = max(state.awake_until, now) + timedelta(seconds=config.awake_extension)
        state.awake_until = min(extended, now + timedelta(seconds=config.awake_cap))

    def _kept_awake(self) -> bool:
        state = self.state
        return bool(
            state.ignition != "Stop"
            or state.charging_now
            or state.climate_running
            or state.theft.stolen
            or state.in_flight
            or state.outbox
        )

    def _report_period(self) -> float | None:
        state = self.state
        if state.theft.stolen:
            theft = state.theft
            return float(theft.running_period if state.driving else theft.shutdown_period)
        if state.charging_now or state.driving:
            return self.config.report_period
        return None

    def _report_due(self, now: datetime) -> bool:
        """Whether a periodic report is due now (charging, driving, stolen)."""
        state = self.state
        period = self._report_period()
        if period is None:
            state.next_report = None
            return False
        due = state.next_report is not None and now >= state.next_report
        if state.next_report is None or due:
            state.next_report = now + timedelta(seconds=period)
        return due

    def _delayed_charge_due(self, now: datetime) -> bool:
        charging = self.state.charging
        start = delayed_start(charging.next_delayed_time)
        return (
            charging.plugged and charging.status == "Stopped" and start is not None and start <= now
        )

    def _start_delayed_charge(self, now: datetime) -> bool:
        if not self._delayed_charge_due(now):
            return False
        self.state.charging.status = "InProgress"
        self.state.charging.next_delayed_time = None
        return True

    def _next_deadline(self) -> datetime | None:
        state = self.state
        if state.mode in (Mode.WAKING, Mode.OFFLINE) and state.mode_until is not None:
            flights = [f.done_at for f in state.in_flight.values()]
            return min([state.mode_until, *flights])
        charging = state.charging
        delayed = delayed_start(charging.next_delayed_time)
        charge_at = delayed if charging.plugged and charging.status == "Stopped" else None
        program_at = programs.next_moment(state)
        if state.mode is Mode.ASLEEP:
            asleep = [t for t in (charge_at, program_at) if t]
            return min(asleep) if asleep else None
        candidates = [f.done_at for f in state.in_flight.values()]
        if state.outbox and state.outbox_retry_at is not None:
            candidates.append(state.outbox_retry_at)
        candidates += [
            t for t in (state.climate.running_until, state.next_report, charge_at, program_at) if t
        ]
        if state.next_report is None and self._report_period() is not None:
            candidates.append(state.updated_at)  # arm the periodic report
        if not self._kept_awake():
            candidates.append(state.awake_until)
        return min(candidates) if candidates else None

    # -- helpers ---------------------------------------------------------------------------

    def _telemetry(self, now: datetime) -> Send:
        return Send(Channel.STATUS, Telemetry(now, build_status(self.state, now)))

    def _finish(self, outputs: list[Output], now: datetime) -> list[Output]:
        deadline = self._next_deadline()
        if deadline is not None:
            outputs.append(Timer(max(deadline, now)))
        return outputs

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
