"""Refusals the platform makes before spending a wake-up, from what it knows of the vehicle.

The vehicle refuses the same things itself (see the simulator's rule table); checking here
first, from the latest status telemetry, saves a wake-up and a cellular round trip, and gives
the exact contract causes of §1.2 and decision 6.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyfob.vocabulary import FailureCause, PendingStatus, RemoteType

PRIVACY_EXEMPT = frozenset({RemoteType.STOLEN, RemoteType.IMMOBILIZATION})
STOLEN_FORBIDS = frozenset(
    {
        RemoteType.THERMAL_PRECONDITIONING,
        RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST,
        RemoteType.NAVIGATION,
    }
)


@dataclass(frozen=True)
class Refusal:
    cause: FailureCause
    pending: PendingStatus | None = None  # a Pending status announced just before (decision 6)


def _traction(status: Mapping[str, Any]) -> tuple[float | None, bool]:
    for energy in status.get("energies") or []:
        if energy.get("type") == "Electric":
            charging = (energy.get("extension") or {}).get("electric", {}).get("charging", {})
            level = energy.get("level")
            return (float(level) if level is not None else None), bool(charging.get("plugged"))
    return None, False


def precheck(
    remote_type: RemoteType,
    body: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    *,
    low_battery_percent: float,
) -> Refusal | None:
    """The first refusal that the last known status already implies, if any."""
    if not status:
        return None
    if (status.get("privacy") or {}).get("state") == "Full" and remote_type not in PRIVACY_EXEMPT:
        return Refusal(FailureCause.NOT_POSSIBLE_DUE_TO_VEHICLE_PRIVACY_LEVEL)
    stolen = bool((status.get("stolen") or {}).get("state"))
    unlocking = remote_type is RemoteType.DOORS and body.get("door", {}).get("state") == "Unlocked"
    if stolen and (unlocking or remote_type in STOLEN_FORBIDS):
        return Refusal(FailureCause.NOT_POSSIBLE_DUE_TO_VEHICLE_STOLEN_STATE)
    immediate = body.get("preconditioning", {}).get("airConditioning", {}).get("immediate")
    if remote_type is RemoteType.THERMAL_PRECONDITIONING and immediate is True:
        level, plugged = _traction(status)
        if level is not None and level < low_battery_percent and not plugged:
            return Refusal(
                FailureCause.NOT_POSSIBLE_DUE_TO_VEHICLE_BATTERY_LEVEL,
                PendingStatus.VEHICLE_BATTERY_CHARGE_TOO_LOW,
            )
    return None


def wake_refusal(
    *, this_month: int, recent: int, month_quota: int, short_limit: int
) -> Refusal | None:
    """Decision 19's budgets: a monthly quota, then a short-window limit."""
    if this_month >= month_quota:
        return Refusal(
            FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH, PendingStatus.TOO_MANY_WAKE_UPS_OVER_MONTH
        )
    if recent >= short_limit:
        return Refusal(FailureCause.TOO_MANY_REQUEST_IN_SHORT_TIME)
    return None
