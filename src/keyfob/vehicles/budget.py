"""A vehicle's wake-up budgets (decision 19), as numbers a partner can read before spending them.

Waking a sleeping car costs: the platform allows ``month_quota`` wake-ups per calendar month
(UTC) and ``short_limit`` in any ``short_window``; beyond either a remote fails with
``TooManyWakeUpsOverMonth`` or ``TooManyRequestInShortTime`` (``remotes.checks``). The same
numbers are read here, from the same ``wake_ups`` rows, so what ``GET .../budget`` and the
``Keyfob-Wakeups-*`` headers say is what the dispatcher will decide.

    remaining  = min(month_quota - used this month, short_limit - used in the window), >= 0
    resets_at  = when ``remaining`` next grows: the month's end when the month binds,
                 else the moment the oldest wake-up in the window leaves it

``plan_budgets`` is a unit-of-work plan (``store.units``): one statement for any number of
vehicles, so the acceptor can read the budgets of a whole batch in the batch's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.config import VehicleSettings
from keyfob.kit.clock import isoformat
from keyfob.store.queries import one_of
from keyfob.store.schema import UtcDateTime
from keyfob.store.units import Fetch, Plan
from keyfob.vehicles.models import wake_ups
from keyfob.vehicles.state import month_start

REMAINING_HEADER = "Keyfob-Wakeups-Remaining"
RESET_HEADER = "Keyfob-Wakeups-Reset"


@dataclass(frozen=True)
class WakeLimits:
    """The operator's budgets (``[vehicles]`` settings)."""

    month_quota: int
    short_limit: int
    short_window: timedelta


@dataclass(frozen=True)
class WakeBudget:
    limits: WakeLimits
    now: datetime
    month_used: int
    short_used: int
    oldest_in_window: datetime | None

    @property
    def month_remaining(self) -> int:
        return max(0, self.limits.month_quota - self.month_used)

    @property
    def short_remaining(self) -> int:
        return max(0, self.limits.short_limit - self.short_used)

    @property
    def remaining(self) -> int:
        """Wake-ups that can be spent now."""
        return min(self.month_remaining, self.short_remaining)

    @property
    def month_resets_at(self) -> datetime:
        return next_month(self.now)

    @property
    def short_frees_at(self) -> datetime | None:
        """When the oldest wake-up in the window leaves it (``None``: the window is empty)."""
        if self.oldest_in_window is None:
            return None
        return self.oldest_in_window + self.limits.short_window

    @property
    def resets_at(self) -> datetime:
        """When ``remaining`` next grows."""
        frees = self.short_frees_at
        if self.month_remaining <= self.short_remaining or frees is None:
            return self.month_resets_at
        return frees

    def headers(self) -> dict[str, str]:
        return {REMAINING_HEADER: str(self.remaining), RESET_HEADER: isoformat(self.resets_at)}


def wake_limits(settings: VehicleSettings) -> WakeLimits:
    return WakeLimits(
        month_quota=settings.wake_up_quota_per_month,
        short_limit=settings.short_window_wake_ups,
        short_window=timedelta(seconds=settings.short_window_s),
    )


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


_SPENT = (
    select(wake_ups.c.vehicle_id, wake_ups.c.at)
    .where(
        one_of(wake_ups.c.vehicle_id, "ids"), wake_ups.c.at >= bindparam("since", type_=UtcDateTime)
    )
    .order_by(wake_ups.c.vehicle_id, wake_ups.c.at)
)
"""The wake-ups since the earlier of the month's start and the window's: a few per vehicle."""


def _budgets(
    rows: Iterable[Any], vehicle_ids: Iterable[str], limits: WakeLimits, now: datetime
) -> dict[str, WakeBudget]:
    month, window_start = month_start(now), now - limits.short_window
    spent: dict[str, list[datetime]] = {vehicle_id: [] for vehicle_id in vehicle_ids}
    for row in rows:
        spent.setdefault(row.vehicle_id, []).append(row.at)
    found = {}
    for vehicle_id, times in spent.items():
        recent = [at for at in times if at >= window_start]
        found[vehicle_id] = WakeBudget(
            limits,
            now,
            month_used=sum(1 for at in times if at >= month),
            short_used=len(recent),
            oldest_in_window=recent[0] if recent else None,
        )
    return found


def plan_budgets(
    vehicle_ids: set[str], *, limits: WakeLimits, now: datetime
) -> Plan[dict[str, WakeBudget]]:
    """The budgets of these vehicles, in one statement."""
    if not vehicle_ids:
        return {}
    since = min(month_start(now), now - limits.short_window)
    rows = yield Fetch(_SPENT, {"ids": sorted(vehicle_ids), "since": since})
    return _budgets(rows, vehicle_ids, limits, now)


async def read_budget(
    conn: AsyncConnection, vehicle_id: str, *, limits: WakeLimits, now: datetime
) -> WakeBudget:
    """One vehicle's budget, outside a unit of work (the budget endpoint)."""
    since = min(month_start(now), now - limits.short_window)
    rows = await conn.execute(_SPENT, {"ids": [vehicle_id], "since": since})
    return _budgets(rows, [vehicle_id], limits, now)[vehicle_id]
