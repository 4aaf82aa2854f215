"""How the simulated vehicle reads a command's ``params``, as a real unit would.

The platform validates remote bodies before sending them; the vehicle still checks what it is
told, because a unit must never act on a half-understood order. Anything it cannot read is
answered ``failed`` / ``wrongCommand``; ``BadParams`` names the path (``door.state``) for logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.link.protocol import Action

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LEVELS = ("Level1", "Level2", "Level3", "Level4", "Level5")


class BadParams(KeyfobError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_BODY, message)


@dataclass(frozen=True, slots=True)
class DoorRequest:
    lock: bool
    forced: bool = False


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    """Horn (``Activated``/``Unactivated``), lights (``on``), immobilization (``activate``)."""

    on: bool


@dataclass(frozen=True, slots=True)
class WakeUpRequest:
    pass


@dataclass(frozen=True, slots=True)
class NavigationRequest:
    positions: tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True)
class StolenRequest:
    stolen: bool | None = None
    tracking: tuple[int, int] | None = None  # (running, shutdown) seconds
    immobilize: bool | None = None


@dataclass(frozen=True, slots=True)
class ProgramChange:
    slot: int
    program: dict[str, Any] | None  # None = delete the slot


@dataclass(frozen=True, slots=True)
class ClimateRequest:
    immediate: bool | None
    programs: tuple[ProgramChange, ...]


@dataclass(frozen=True, slots=True)
class ChargingRequest:
    immediate: bool | None = None
    next_delayed_time: str | None = None
    programs: tuple[dict[str, Any], ...] | None = None
    level: str | None = None
    target: str | None = None

    @property
    def sets_schedule(self) -> bool:
        return self.next_delayed_time is not None or self.programs is not None

    @property
    def sets_preferences(self) -> bool:
        return self.level is not None or self.target is not None


Request = (
    DoorRequest
    | SwitchRequest
    | WakeUpRequest
    | NavigationRequest
    | StolenRequest
    | ClimateRequest
    | ChargingRequest
)


def parse(action: Action, params: Mapping[str, Any]) -> Request:
    """The typed request carried by ``params``; ``BadParams`` names the first defect."""
    p = _Obj(action.value, params)
    match action:
        case Action.DOOR:
            return DoorRequest(
                p.choice("state", ("Locked", "Unlocked")) == "Locked",
                p.boolean("forced", required=False) or False,
            )
        case Action.HORN:
            return SwitchRequest(p.choice("state", ("Activated", "Unactivated")) == "Activated")
        case Action.LIGHTS:
            return SwitchRequest(bool(p.boolean("on")))
        case Action.IMMOBILIZATION:
            return SwitchRequest(bool(p.boolean("activate")))
        case Action.WAKE_UP:
            p.choice("action", ("WakeUp",), required=False)
            return WakeUpRequest()
        case Action.NAVIGATION:
            return NavigationRequest(_positions(p))
        case Action.STOLEN:
            return _stolen(p)
        case Action.PRECONDITIONING:
            return _climate(p.obj("airConditioning"))
        case Action.CHARGING:
            return _charging(p)


def _positions(p: _Obj) -> tuple[tuple[float, ...], ...]:
    items = p.array("positions", 1, 10)
    points = []
    for index, item in enumerate(items):
        point = _Obj(f"{p.path}.positions[{index}]", item)
        point.choice("type", ("Point",))
        coordinates = point.array("coordinates", 2, 3)
        if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates):
            raise BadParams(f"{point.path}.coordinates: expected numbers")
        lon, lat = coordinates[0], coordinates[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise BadParams(f"{point.path}.coordinates: [longitude, latitude] out of range")
        points.append(tuple(float(c) for c in coordinates))
    return tuple(points)


def _stolen(p: _Obj) -> StolenRequest:
    present = [key for key in ("stolen", "trackingPeriod", "immobilization") if key in p.body]
    if len(present) != 1:
        raise BadParams(f"{p.path}: expected exactly one of stolen, trackingPeriod, immobilization")
    if present[0] == "stolen":
        return StolenRequest(stolen=p.boolean("stolen"))
    if present[0] == "trackingPeriod":
        period = p.obj("trackingPeriod")
        return StolenRequest(
            tracking=(period.integer("running", 5), period.integer("shutdown", 60))
        )
    return StolenRequest(immobilize=p.obj("immobilization").boolean("activate"))


def _climate(p: _Obj) -> ClimateRequest:
    immediate = p.boolean("immediate", required=False)
    changes = []
    slots: set[int] = set()
    items = p.array("programs", 0, 4) if "programs" in p.body else []
    for index, item in enumerate(items):
        program = _Obj(f"{p.path}.programs[{index}]", item)
        slot = program.integer("slot", 1, 4)
        if slot in slots:
            raise BadParams(f"{program.path}.slot: slot {slot} appears twice")
        slots.add(slot)
        if program.choice("actionsType", ("Set", "Delete"), required=False) == "Delete":
            changes.append(ProgramChange(slot, None))
            continue
        recurrence = program.choice("recurrence", ("None", "Daily"), required=False) or "Daily"
        changes.append(
            ProgramChange(
                slot,
                {
                    "slot": slot,
                    "enabled": program.boolean("enabled"),
                    "recurrence": recurrence,
                    "start": program.text("start"),
                    "occurence": {"day": _days(program.obj("occurence"))},
                },
            )
        )
    if immediate is None and not changes:
        raise BadParams(f"{p.path}: expected immediate or programs")
    return ClimateRequest(immediate, tuple(changes))


def _charging(p: _Obj) -> ChargingRequest:
    immediate = p.boolean("immediate", required=False)
    delayed = p.text("nextDelayedTime", required=False)
    programs = None
    if "schedule" in p.body:
        schedule = p.obj("schedule")
        if ("nextDelayedTime" in schedule.body) == ("programs" in schedule.body):
            raise BadParams(f"{schedule.path}: expected exactly one of nextDelayedTime, programs")
        delayed = schedule.text("nextDelayedTime", required=False) or delayed
        if "programs" in schedule.body:
            programs = _charge_programs(schedule)
    level = target = None
    if "preferences" in p.body:
        preferences = p.obj("preferences")
        level = preferences.choice("level", LEVELS, required=False)
        target = preferences.choice("type", ("Partial", "Full"), required=False)
        if immediate is not None or delayed is not None or programs is not None:
            raise BadParams(f"{p.path}.preferences: cannot be combined with immediate or schedule")
    request = ChargingRequest(immediate, delayed, programs, level, target)
    if immediate is None and not request.sets_schedule and not request.sets_preferences:
        raise BadParams(f"{p.path}: expected immediate, schedule or preferences")
    return request


def _charge_programs(schedule: _Obj) -> tuple[dict[str, Any], ...]:
    programs = []
    for index, item in enumerate(schedule.array("programs", 0, 4)):
        program = _Obj(f"{schedule.path}.programs[{index}]", item)
        entry: dict[str, Any] = {
            "slot": program.integer("slot", 1, 4, required=False) or index + 1,
            "start": program.text("start"),
            "enabled": program.boolean("enabled", required=False) is not False,
        }
        if "end" in program.body:
            entry["end"] = program.text("end")
        if "occurence" in program.body:
            entry["occurence"] = {"day": _days(program.obj("occurence"))}
        programs.append(entry)
    if len({entry["slot"] for entry in programs}) != len(programs):
        raise BadParams(f"{schedule.path}.programs: slots must be unique")
    return tuple(programs)


def _days(occurence: _Obj) -> list[str]:
    days = occurence.array("day", 0, 7)
    for index, day in enumerate(days):
        if day not in DAYS:
            raise BadParams(f"{occurence.path}.day[{index}]: {day!r} is not one of {DAYS}")
    return list(days)


class _Obj:
    """Typed reads from one JSON object, with errors that carry its path."""

    def __init__(self, path: str, body: Any) -> None:
        if not isinstance(body, Mapping):
            raise BadParams(f"{path}: expected an object")
        self.path = path
        self.body = body

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.body and required:
            raise BadParams(f"{self.path}.{key}: required field is missing")
        return self.body.get(key)

    def obj(self, key: str) -> _Obj:
        return _Obj(f"{self.path}.{key}", self._get(key, True))

    def boolean(self, key: str, required: bool = True) -> bool | None:
        value = self._get(key, required)
        if value is not None and not isinstance(value, bool):
            raise BadParams(f"{self.path}.{key}: expected true or false")
        return value

    def text(self, key: str, required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is not None and (not isinstance(value, str) or not value):
            raise BadParams(f"{self.path}.{key}: expected a non-empty string")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is not None and value not in allowed:
            raise BadParams(f"{self.path}.{key}: {value!r} is not one of {', '.join(allowed)}")
        return None if value is None else str(value)

    def integer(self, key: str, low: int, high: int | None = None, required: bool = True) -> int:
        value = self._get(key, required)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadParams(f"{self.path}.{key}: expected an integer")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise BadParams(f"{self.path}.{key}: {value} is outside {bounds}")
        return value

    def array(self, key: str, low: int, high: int) -> list[Any]:
        value = self._get(key, True)
        if not isinstance(value, list):
            raise BadParams(f"{self.path}.{key}: expected an array")
        if not low <= len(value) <= high:
            raise BadParams(f"{self.path}.{key}: expected {low} to {high} items")
        return value
