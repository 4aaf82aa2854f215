"""``POST .../remotes?dryRun=true`` on both faces: the forecast of ``remotes.control.dry_run``.

The documented POST remote routes hand a dry run here; the lean routes let a request whose
query names ``dryRun`` fall through to them. A refusal is the real POST's error; a remote it
would accept is answered ``200`` (not ``202``: nothing was accepted) with what would happen.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyfob.api.docs_models import Link, hal
from keyfob.api.http import HalResponse
from keyfob.auth.principal import UserPrincipal
from keyfob.kit.clock import isoformat
from keyfob.kit.hal import link
from keyfob.remotes.accept_fleet import AcceptRequest
from keyfob.remotes.accept_user import UserAcceptRequest
from keyfob.remotes.control.dry_run import Forecast, dry_run
from keyfob.runtime.context import AppContext


class DryRunForecast(BaseModel):
    """What a POST of this remote would do now (``dryRun=true``)."""

    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    dryRun: bool
    type: str
    outcome: str = Field(description="SendNow, WakeUpFirst or Fail")
    wouldWakeUpVehicle: bool
    failureCause: str | None
    events: list[dict[str, str]]


DOCUMENTED = hal(DryRunForecast, "keyfob extension, dryRun=true: what would happen; nothing stored")


def forecast_body(href: str, forecast: Forecast) -> dict[str, Any]:
    budget = forecast.budget
    wakes = forecast.outcome == "WakeUpFirst"
    spent = 1 if wakes else 0  # a wake-up counts against both budgets
    return {
        "_links": {"remotes": link(href)},
        "dryRun": True,
        "type": forecast.remote_type,
        "outcome": forecast.outcome,
        "wouldWakeUpVehicle": wakes,
        "failureCause": forecast.failure_cause,
        "events": forecast.events,
        "vehicle": {"presence": forecast.presence},
        "wakeUps": {
            "wouldSpend": ["month", "shortWindow"] if wakes else [],
            "remaining": budget.remaining,
            "remainingAfter": budget.remaining - spent,
            "resetsAt": isoformat(budget.resets_at),
            "month": {
                "remaining": budget.month_remaining,
                "remainingAfter": budget.month_remaining - spent,
            },
            "shortWindow": {
                "remaining": budget.short_remaining,
                "remainingAfter": budget.short_remaining - spent,
            },
        },
    }


async def fleet(
    ctx: AppContext, *, href: str, partner_id: str, ids: tuple[str, str, str], data: object
) -> HalResponse:
    fleet_id, vehicle_id, callback_id = ids
    request = AcceptRequest(partner_id, fleet_id, vehicle_id, callback_id, data)
    async with ctx.database.read() as conn:
        forecast = await dry_run(conn, request, settings=ctx.settings.vehicle, now=ctx.clock())
    return HalResponse(forecast_body(href, forecast))


async def user(
    ctx: AppContext,
    *,
    href: str,
    caller: UserPrincipal,
    vehicle_id: str,
    callback_id: str,
    data: object,
) -> HalResponse:
    request = UserAcceptRequest(
        caller.client_id, caller.user_id, caller.scopes, vehicle_id, callback_id, data
    )
    async with ctx.database.read() as conn:
        forecast = await dry_run(conn, request, settings=ctx.settings.vehicle, now=ctx.clock())
    return HalResponse(forecast_body(href, forecast))
