"""What a vehicle can do, in the contract's ``onboardCapabilities`` layout (decision 17).

The document is stored per vehicle and served as is under ``?extension=onboardCapabilities``;
``remotes.eligibility`` reads the same document to refuse remotes a car cannot perform. The
defaults come from the energy table of the data catalog: a thermic car has neither
preconditioning nor charging, a hydrogen car preconditions but does not plug in, electric and
hybrid cars do everything.

Two quirks of the official ``OnboardCapabilities`` schema are honoured so the document
validates against it:

* every remote has an entry, supported or not (stolen included);
* ``charging.parameters.schedule`` must hold a ``preferences`` key next to ``programs`` and
  ``nextDelayedTime``; keyfob puts the same flags there and in ``charging.parameters.preferences``
  (where the end-user quickstart places them), and reads the latter first.

The official layout has no immobilization entry. keyfob's extension: ``remote.immobilization``
``{"supported": false}`` marks a vehicle that cannot be immobilized; when the key is absent,
immobilization is supported (every motorization can do it). A client that does not know the
key ignores it.
"""

from __future__ import annotations

from typing import Any

from keyfob.vocabulary import Motorization, RemoteType

MAX_PROGRAMS = 4

REMOTE_CAPABILITY_KEY: dict[RemoteType, str] = {
    RemoteType.THERMAL_PRECONDITIONING: "preconditioning",
    RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST: "charging",
    RemoteType.DOORS: "door",
    RemoteType.HORN: "horn",
    RemoteType.LIGHTS: "lights",
    RemoteType.WAKE_UP: "wakeup",
    RemoteType.NAVIGATION: "navigation",
    RemoteType.STOLEN: "stolen",
    RemoteType.IMMOBILIZATION: "immobilization",
}
"""Each remote type's entry under ``onboardCapabilities.remote``."""

_PRECONDITIONING = {
    Motorization.THERMIC: False,
    Motorization.ELECTRIC: True,
    Motorization.HYBRID: True,
    Motorization.HYDROGEN: True,
}
_CHARGING = {
    Motorization.THERMIC: False,
    Motorization.ELECTRIC: True,
    Motorization.HYBRID: True,
    Motorization.HYDROGEN: False,
}

_COMMON_DATA = [
    "data:telemetry",
    "data:telemetry:environment",
    "data:telemetry:privacy",
    "data:telemetry:vehicle",
    "data:telemetry:vehicle:ignition",
    "data:telemetry:vehicle:energies",
    "data:telemetry:vehicle:engines",
    "data:telemetry:vehicle:doorsState",
    "data:telemetry:vehicle:powertrain",
    "data:telemetry:vehicle:battery",
    "data:telemetry:vehicle:safety",
    "data:telemetry:vehicle:odometer",
    "data:telemetry:vehicle:kinetic",
    "data:telemetry:vehicle:lightingSystem",
    "data:telemetry:vehicle:maintenance",
    "data:telemetry:vehicle:alarm",
    "data:position",
    "data:trip",
    "data:alert",
    "data:collision",
]


def _scoped(name: str, supported: bool) -> dict[str, Any]:
    return {"supported": supported, "scopeName": f"remote:{name}:write"}


def _preconditioning(supported: bool, size: int) -> dict[str, Any]:
    return {
        **_scoped("preconditioning", supported),
        "parameters": {"programs": {"size": size if supported else 0}, "immediate": supported},
    }


def _charging(supported: bool, size: int) -> dict[str, Any]:
    preferences = {"level": supported, "type": supported}
    return {
        **_scoped("charging", supported),
        "parameters": {
            "immediate": {"start": supported, "stop": supported},
            "schedule": {
                "programs": {"supported": supported and size > 0, "size": size if supported else 0},
                "nextDelayedTime": supported,
                "preferences": dict(preferences),
            },
            "preferences": preferences,
        },
    }


def _data(motorization: Motorization) -> list[str]:
    data = list(_COMMON_DATA)
    if _PRECONDITIONING[motorization]:
        data.append("data:telemetry:vehicle:preconditioning")
    if _CHARGING[motorization]:
        data.append("data:vehicle:devices:pnc")
    return data


def capabilities_for(
    motorization: Motorization, *, programs_size: int = MAX_PROGRAMS, immobilization: bool = True
) -> dict[str, Any]:
    """The default ``onboardCapabilities`` of a vehicle with this motorization.

    ``programs_size`` (0..4) bounds both preconditioning programs and charging schedule
    programs; ``immobilization=False`` adds the extension entry that refuses immobilization.
    """
    if not 0 <= programs_size <= MAX_PROGRAMS:
        raise ValueError(f"programs_size must be within 0..{MAX_PROGRAMS} (got {programs_size})")
    motorization = Motorization(motorization)
    remote: dict[str, Any] = {
        "preconditioning": _preconditioning(_PRECONDITIONING[motorization], programs_size),
        "charging": _charging(_CHARGING[motorization], programs_size),
        "door": _scoped("door", True),
        "horn": _scoped("horn", True),
        "lights": _scoped("lights", True),
        "wakeup": _scoped("wakeup", True),
        "navigation": _scoped("navigation", True),
        "stolen": {"supported": True},
    }
    if not immobilization:
        remote["immobilization"] = {"supported": False}
    return {"remote": remote, "data": _data(motorization)}
