"""When a simulated vehicle's programs run: charging windows and preconditioning starts.

A program (set through the ``charging`` or ``preconditioning`` remote) holds a time of day as
an ISO 8601 duration from midnight (``PT7H30M``), the weekdays it runs on and whether it is
enabled; a charging program may also hold an end. The simulated vehicle keeps UTC as its
local time. Pure functions: the vehicle asks which program starts next, arms a timer for it,
and at that moment starts charging or preconditioning, waking itself if asleep, as a real car
does without any network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from keyfob.sim.params import DAYS
from keyfob.sim.state import VehicleState

_DURATION = re.compile(
    r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)

Program = Mapping[str, Any]


def time_of_day(text: object) -> timedelta | None:
    """``PT7H30M`` as 7 h 30 min; ``None`` when unreadable or not within one day."""
    if not isinstance(text, str) or text in ("P", "PT") or text.endswith("T"):
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    parts = {key: float(value) if value else 0.0 for key, value in match.groupdict().items()}
    offset = timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    return offset if offset < timedelta(days=1) else None


def _days(program: Program) -> set[int]:
    occurence = program.get("occurence")
    named = occurence.get("day") if isinstance(occurence, Mapping) else None
    if not named:
        return set(range(7))  # no weekdays given: every day
    return {DAYS.index(day) for day in named if day in DAYS}


def _enabled(program: Program) -> bool:
    return program.get("enabled", True) is not False


def next_start(programs: Iterable[Program], after: datetime) -> tuple[datetime, Program] | None:
    """The first enabled program to start strictly after ``after``, and when it starts."""
    best: tuple[datetime, Program] | None = None
    midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
    for program in programs:
        offset = time_of_day(program.get("start"))
        if offset is None or not _enabled(program):
            continue
        days = _days(program)
        for ahead in range(8):
            day = midnight + timedelta(days=ahead)
            start = day + offset
            if day.weekday() in days and start > after:
                if best is None or start < best[0]:
                    best = (start, program)
                break
    return best


def started(
    programs: Sequence[Program], since: datetime, now: datetime
) -> tuple[datetime, Program] | None:
    """The last program to start in ``(since, now]`` and when, if any (missed starts are not
    replayed one by one: a car that was off for a week runs its latest program once)."""
    found: tuple[datetime, Program] | None = None
    while True:
        upcoming = next_start(programs, found[0] if found else since)
        if upcoming is None or upcoming[0] > now:
            return found
        found = upcoming


def end_of(program: Program, started_at: datetime) -> datetime | None:
    """When a charging program that started at ``started_at`` ends (its ``end``, the same day
    or the next one), or ``None`` when it has no end."""
    offset = time_of_day(program.get("end"))
    if offset is None:
        return None
    end = started_at.replace(hour=0, minute=0, second=0, microsecond=0) + offset
    return end if end > started_at else end + timedelta(days=1)


# -- on a vehicle's state ---------------------------------------------------------------------


def _charging_programs(state: VehicleState) -> tuple[Program, ...]:
    charging = state.charging
    chargeable = state.traits.chargeable and charging.plugged and charging.status == "Stopped"
    return charging.programs if chargeable else ()


def _climate_programs(state: VehicleState) -> list[Program]:
    if not state.traits.climate or state.climate_running:
        return []
    return list(state.climate.programs.values())


def next_moment(state: VehicleState) -> datetime | None:
    """When a program next starts (or a program's charge ends): the vehicle's next timer."""
    since = state.programs_seen_at or state.updated_at
    moments = [
        found[0]
        for found in (
            next_start(_charging_programs(state), since),
            next_start(_climate_programs(state), since),
        )
        if found is not None
    ]
    if state.charging_now and state.charging.until is not None:
        moments.append(state.charging.until)
    return min(moments) if moments else None


def due(state: VehicleState, now: datetime) -> bool:
    """A program starts by ``now``: a sleeping vehicle wakes itself for it."""
    moment = next_moment(state)
    return moment is not None and moment <= now


def run_due(state: VehicleState, now: datetime, climate_run: float) -> bool:
    """Start what programs started since the last look, end a program's charge at its end;
    True when the status changed."""
    since = state.programs_seen_at or now
    state.programs_seen_at = now
    changed = False
    charging = state.charging
    if state.charging_now and charging.until is not None and charging.until <= now:
        charging.status, charging.until = "Stopped", None
        changed = True
    charge = started(_charging_programs(state), since, now)
    if charge is not None:
        charging.status = "InProgress"
        charging.until = end_of(charge[1], charge[0])
        changed = True
    if started(_climate_programs(state), since, now) is not None:
        climate = state.climate
        climate.status, climate.starting_cause = "Enabled", "Scheduled"
        climate.running_until = now + timedelta(seconds=climate_run)
        changed = True
    return changed
