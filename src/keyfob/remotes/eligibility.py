"""Refuse, before anything is stored, a remote the vehicle's onboard capabilities rule out.

The capabilities document is the one served under ``?extension=onboardCapabilities`` (see
``vehicles.capabilities``). A capability the document does not advertise is one the vehicle
lacks: a missing flag counts as ``false`` and a missing ``programs.size`` as 0. The one
exception is immobilization, which the official layout does not list: it is refused only when
``remote.immobilization.supported`` is present and not true.

Every problem found is reported in one ``NOT_SUPPORTED_BY_VEHICLE`` error whose message names
the body's JSON path and the capability that is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.bodies.charging import ChargingAction
from keyfob.remotes.bodies.climate import PreconditioningAction
from keyfob.remotes.bodies.simple import StolenAction
from keyfob.remotes.schemas import RemoteBody
from keyfob.vehicles.capabilities import MAX_PROGRAMS, REMOTE_CAPABILITY_KEY
from keyfob.vocabulary import Motorization, RemoteType


def _get(document: object, *path: str) -> Any:
    """The value at ``path`` in nested mappings, or ``None`` if any step is missing."""
    node = document
    for step in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


def _size(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _type_supported(remote: object, key: str) -> bool:
    entry = _get(remote, key)
    if key == REMOTE_CAPABILITY_KEY[RemoteType.IMMOBILIZATION] and entry is None:
        return True
    return _get(entry, "supported") is True


def _unsupported_type(remote_type: RemoteType, key: str, motorization: str | None) -> str:
    reason = f"onboardCapabilities remote.{key}.supported is not true"
    if motorization:
        reason = f"motorization {motorization}, {reason}"
    return f"this vehicle cannot do {remote_type.value} ({reason})"


def _program_problems(
    where: str, slots: Sequence[int | None], size: int, capability: str
) -> list[str]:
    """Programs beyond the vehicle's slot count, by number of programs or by slot number."""
    problems: list[str] = []
    if len(slots) > size:
        problems.append(
            f"{where}: this vehicle has {size} program slot(s) ({capability} = {size}), "
            f"got {len(slots)} programs"
        )
    problems += [
        f"{where}[{index}].slot: this vehicle has {size} program slot(s) "
        f"({capability} = {size}), got slot {slot}"
        for index, slot in enumerate(slots)
        if slot is not None and slot > size
    ]
    return problems


def _preconditioning_problems(entry: object, payload: PreconditioningAction) -> list[str]:
    problems: list[str] = []
    air = payload.air_conditioning
    if air.immediate is not None and _get(entry, "parameters", "immediate") is not True:
        problems.append(
            "preconditioning.airConditioning.immediate: this vehicle cannot start or stop "
            "preconditioning on demand (remote.preconditioning.parameters.immediate is not true)"
        )
    if air.programs is not None:
        problems += _program_problems(
            "preconditioning.airConditioning.programs",
            [program.slot for program in air.programs],
            _size(_get(entry, "parameters", "programs", "size")),
            "remote.preconditioning.parameters.programs.size",
        )
    return problems


def _charging_flag(parameters: object, *path: str) -> bool:
    """A charging flag; preferences are read where the quickstart puts them, then in schedule."""
    if path[0] == "preferences" and _get(parameters, *path) is None:
        return _get(parameters, "schedule", *path) is True
    return _get(parameters, *path) is True


def _charging_problems(entry: object, payload: ChargingAction) -> list[str]:
    parameters = _get(entry, "parameters")
    base = "remote.charging.parameters"
    wanted: list[tuple[str, tuple[str, ...], str]] = []
    if payload.immediate is not None:
        verb = "start" if payload.immediate else "stop"
        wanted.append(("charging.immediate", ("immediate", verb), f"{verb} a charge on demand"))
    if payload.delayed_start is not None:
        place = "charging.schedule" if payload.schedule is not None else "charging"
        wanted.append(
            (f"{place}.nextDelayedTime", ("schedule", "nextDelayedTime"), "delay a charge")
        )
    if payload.schedule is not None and payload.schedule.programs is not None:
        wanted.append(
            ("charging.schedule.programs", ("schedule", "programs", "supported"), "run programs")
        )
    if payload.preferences is not None:
        for name in ("level", "type"):
            if getattr(payload.preferences, name) is not None:
                wanted.append(
                    (f"charging.preferences.{name}", ("preferences", name), f"set a charge {name}")
                )
    problems = [
        f"{where}: this vehicle cannot {what} ({base}.{'.'.join(path)} is not true)"
        for where, path, what in wanted
        if not _charging_flag(parameters, *path)
    ]
    if payload.programs and _charging_flag(parameters, "schedule", "programs", "supported"):
        size = _get(parameters, "schedule", "programs", "size")
        problems += _program_problems(
            "charging.schedule.programs",
            [program.slot for program in payload.programs],
            MAX_PROGRAMS if size is None else _size(size),
            f"{base}.schedule.programs.size",
        )
    return problems


def _stolen_problems(remote: object, payload: StolenAction) -> list[str]:
    """Immobilizing a stolen car needs the immobilization capability as well."""
    key = REMOTE_CAPABILITY_KEY[RemoteType.IMMOBILIZATION]
    if payload.immobilization is None or _type_supported(remote, key):
        return []
    return [
        "stolen.immobilization: this vehicle cannot be immobilized "
        f"(remote.{key}.supported is not true)"
    ]


def ensure_vehicle_can(
    capabilities: Mapping[str, Any],
    body: RemoteBody,
    *,
    motorization: Motorization | str | None = None,
) -> None:
    """Raise ``NOT_SUPPORTED_BY_VEHICLE`` unless ``capabilities`` allow every part of ``body``.

    ``capabilities`` is an ``onboardCapabilities`` document; ``motorization``, when given,
    is quoted in the message so the caller sees why a whole remote type is missing.
    """
    remote = _get(capabilities, "remote")
    key = REMOTE_CAPABILITY_KEY[body.type]
    if not _type_supported(remote, key):
        raise KeyfobError(
            ErrorCode.NOT_SUPPORTED_BY_VEHICLE, _unsupported_type(body.type, key, motorization)
        )
    payload = body.payload
    entry = _get(remote, key)
    problems: list[str] = []
    if isinstance(payload, PreconditioningAction):
        problems = _preconditioning_problems(entry, payload)
    elif isinstance(payload, ChargingAction):
        problems = _charging_problems(entry, payload)
    elif isinstance(payload, StolenAction):
        problems = _stolen_problems(remote, payload)
    if problems:
        raise KeyfobError(ErrorCode.NOT_SUPPORTED_BY_VEHICLE, "; ".join(problems))
