"""Fleet campaigns: the request body, creating one, reading its progress, cancelling it.

A campaign sends one remote body, through one callback, to a list of the fleet's vehicles (or
every vehicle whose VIN starts with a prefix), each as an ordinary remote with its ordinary
notifications. Its pace and safety are rules stored with it and applied by the runner
(``campaign_runner``):

* ``rate.perMinute`` remotes started per minute, reached at once, or linearly over
  ``rate.rampMinutes`` (``allowed_by`` says how many may have started after a given time);
* ``abortThreshold.failedPercent``: once ``minFinished`` of its remotes are Done, the campaign
  stops starting new ones when more than that share of the finished ones failed;
* ``startsAt``: nothing starts before (now when absent).

Everything is checked before anything is stored, as POST remote checks it: the body, the
callback (Running, the remote type in its ``remoteTypes``) and every vehicle (in the fleet,
able to do it). A campaign's life:

    Scheduled ──startsAt──► Running ──all started──► Completed
        │                     ├──failed share above the threshold──► Aborted
        └──────cancel─────────┴──cancel──► Cancelled   (targets not started are dropped)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.callbacks.parsing import Input, validate
from keyfob.callbacks.service import Callback
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.ids import new_id
from keyfob.remotes.accept_fleet import check_callback
from keyfob.remotes.control.campaign_models import campaign_targets, campaigns
from keyfob.remotes.control.window import time_window
from keyfob.remotes.eligibility import ensure_vehicle_can
from keyfob.remotes.models import remotes
from keyfob.remotes.schemas import parse_remote_body
from keyfob.vehicles.models import vehicles
from keyfob.vehicles.service import vehicle_from_row

MAX_TARGETS = 10_000
ACTIVE = ("Scheduled", "Running")
FINISHED = ("Completed", "Aborted", "Cancelled")


class RateIn(Input):
    perMinute: Annotated[int, Field(ge=1, le=6000)]
    rampMinutes: Annotated[int, Field(ge=0, le=1440)] = 0


class AbortIn(Input):
    failedPercent: Annotated[int, Field(ge=0, le=100)]
    minFinished: Annotated[int, Field(ge=1, le=MAX_TARGETS)] = 10


class CampaignIn(Input):
    callbackId: Annotated[str, Field(min_length=1, max_length=64)]
    remote: dict[str, Any]
    vehicles: Annotated[list[str], Field(min_length=1, max_length=MAX_TARGETS)] | None = None
    vinPrefix: Annotated[str, Field(min_length=1, max_length=17)] | None = None
    rate: RateIn
    abortThreshold: AbortIn | None = None
    startsAt: str | None = None


@dataclass(frozen=True)
class Campaign:
    id: str
    fleet_id: str
    callback_id: str
    type: str
    status: str
    per_minute: int
    ramp_s: int
    abort_percent: int | None
    abort_min_finished: int
    starts_at: datetime
    created_at: datetime
    finished_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class Progress:
    campaign: Campaign
    targets: dict[str, int]
    """Targets by state: pending, started, refused, cancelled."""
    by_status: dict[str, int]
    """Started remotes by their current status (Accepted, SentToVehicle, Success, Failed...)."""
    by_cause: dict[str, int]
    """Failed remotes by failure cause."""


def allowed_by(elapsed_s: float, *, per_minute: int, ramp_s: int) -> int:
    """How many targets may have started ``elapsed_s`` after the start: the first at once,
    then ``per_minute``, reached linearly over ``ramp_s`` seconds when there is a ramp."""
    if elapsed_s < 0:
        return 0
    rate = per_minute / 60.0
    if ramp_s <= 0:
        return 1 + math.floor(rate * elapsed_s + 1e-9)
    if elapsed_s <= ramp_s:
        return 1 + math.floor(rate * elapsed_s * elapsed_s / (2 * ramp_s) + 1e-9)
    return 1 + math.floor(rate * (ramp_s / 2 + elapsed_s - ramp_s) + 1e-9)


def campaign_not_found(campaign_id: str) -> KeyfobError:
    return KeyfobError(ErrorCode.CAMPAIGN_NOT_FOUND, f"no campaign {campaign_id} in this fleet")


def campaign_from_row(row: Any) -> Campaign:
    return Campaign(
        row.id,
        row.fleet_id,
        row.callback_id,
        row.type,
        row.status,
        row.per_minute,
        row.ramp_s,
        row.abort_percent,
        row.abort_min_finished,
        row.starts_at,
        row.created_at,
        row.finished_at,
        row.reason,
    )


async def _targets(conn: AsyncConnection, fleet_id: str, parsed: CampaignIn) -> list[Any]:
    if (parsed.vehicles is None) == (parsed.vinPrefix is None):
        raise KeyfobError(
            ErrorCode.INVALID_BODY, "give exactly one of vehicles (a list of ids) and vinPrefix"
        )
    query = select(vehicles).where(vehicles.c.fleet_id == fleet_id)
    if parsed.vinPrefix is not None:
        rows = (
            await conn.execute(
                query.where(vehicles.c.vin.startswith(parsed.vinPrefix, autoescape=True))
                .order_by(vehicles.c.vin)
                .limit(MAX_TARGETS + 1)
            )
        ).all()
        if not rows:
            raise KeyfobError(
                ErrorCode.INVALID_BODY, "vinPrefix: no vehicle of this fleet starts with it"
            )
        if len(rows) > MAX_TARGETS:
            raise KeyfobError(
                ErrorCode.INVALID_BODY, f"vinPrefix: more than {MAX_TARGETS} vehicles match"
            )
        return list(rows)
    wanted = list(dict.fromkeys(parsed.vehicles or []))
    found = {r.id: r for r in (await conn.execute(query.where(vehicles.c.id.in_(wanted)))).all()}
    missing = [index for index, vid in enumerate(parsed.vehicles or []) if vid not in found]
    if missing:
        where = ", ".join(f"vehicles[{i}]" for i in missing[:3])
        raise KeyfobError(ErrorCode.INVALID_BODY, f"{where}: not a vehicle of this fleet")
    return [found[vid] for vid in wanted]


async def create_campaign(
    conn: AsyncConnection,
    *,
    partner_id: str,
    fleet_id: str,
    callback: Callback,
    parsed: CampaignIn,
    now: datetime,
) -> Campaign:
    """Check everything a POST remote would, for every target; store the campaign."""
    body = parse_remote_body(parsed.remote)
    check_callback(callback, body)
    rows = await _targets(conn, fleet_id, parsed)
    for row in rows:
        vehicle = vehicle_from_row(row)
        try:
            ensure_vehicle_can(vehicle.capabilities, body, motorization=vehicle.motorization)
        except KeyfobError as refusal:
            raise KeyfobError(refusal.error, f"vehicle {vehicle.id}: {refusal.message}") from None
    window = time_window(None, parsed.startsAt, now=now)
    starts = window.not_before or now
    campaign_id = new_id()
    abort = parsed.abortThreshold
    await conn.execute(
        campaigns.insert().values(
            id=campaign_id,
            partner_id=partner_id,
            fleet_id=fleet_id,
            callback_id=callback.id,
            type=body.type.value,
            body=parsed.remote,
            status="Scheduled",
            per_minute=parsed.rate.perMinute,
            ramp_s=parsed.rate.rampMinutes * 60,
            abort_percent=None if abort is None else abort.failedPercent,
            abort_min_finished=10 if abort is None else abort.minFinished,
            starts_at=starts,
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(
        campaign_targets.insert(),
        [
            {
                "campaign_id": campaign_id,
                "vehicle_id": row.id,
                "position": index,
                "state": "pending",
            }
            for index, row in enumerate(rows)
        ],
    )
    return await get_campaign(conn, fleet_id=fleet_id, campaign_id=campaign_id)


def parse_campaign_body(data: object) -> CampaignIn:
    return validate(CampaignIn, data)


async def get_campaign(conn: AsyncConnection, *, fleet_id: str, campaign_id: str) -> Campaign:
    row = (
        await conn.execute(
            select(campaigns).where(campaigns.c.id == campaign_id, campaigns.c.fleet_id == fleet_id)
        )
    ).first()
    if row is None:
        raise campaign_not_found(campaign_id)
    return campaign_from_row(row)


async def progress(conn: AsyncConnection, campaign: Campaign) -> Progress:
    """The campaign's targets by state, and its remotes by status and failure cause."""
    states = await conn.execute(
        select(campaign_targets.c.state, func.count())
        .where(campaign_targets.c.campaign_id == campaign.id)
        .group_by(campaign_targets.c.state)
    )
    statuses = await conn.execute(
        select(remotes.c.status, remotes.c.failure_cause, func.count())
        .join(campaign_targets, campaign_targets.c.remote_id == remotes.c.id)
        .where(campaign_targets.c.campaign_id == campaign.id)
        .group_by(remotes.c.status, remotes.c.failure_cause)
    )
    targets = dict.fromkeys(("pending", "started", "refused", "cancelled"), 0)
    targets.update({state: int(n) for state, n in states.all()})
    by_status: dict[str, int] = {}
    by_cause: dict[str, int] = {}
    for status, cause, n in statuses.all():
        by_status[status] = by_status.get(status, 0) + int(n)
        if cause is not None:
            by_cause[cause] = by_cause.get(cause, 0) + int(n)
    return Progress(campaign, targets, by_status, by_cause)


async def finish(
    conn: AsyncConnection, campaign_id: str, *, status: str, reason: str | None, now: datetime
) -> bool:
    """End an active campaign (its targets not started are dropped); ``False`` if it was not
    active any more."""
    ended = await conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id, campaigns.c.status.in_(ACTIVE))
        .values(status=status, reason=reason, finished_at=now, updated_at=now)
    )
    if ended.rowcount != 1:
        return False
    await conn.execute(
        update(campaign_targets)
        .where(campaign_targets.c.campaign_id == campaign_id, campaign_targets.c.state == "pending")
        .values(state="cancelled")
    )
    return True


async def cancel_campaign(conn: AsyncConnection, campaign: Campaign, *, now: datetime) -> None:
    """Stop what has not started; remotes already started run on. 409 once finished."""
    if not await finish(conn, campaign.id, status="Cancelled", reason="cancelled", now=now):
        raise KeyfobError(
            ErrorCode.CAMPAIGN_FINISHED,
            f"the campaign is {campaign.status}; only a Scheduled or Running one can be cancelled",
        )


def started_by(campaign: Campaign, now: datetime) -> int:
    return allowed_by(
        (now - campaign.starts_at) / timedelta(seconds=1),
        per_minute=campaign.per_minute,
        ramp_s=campaign.ramp_s,
    )


async def list_campaigns(
    conn: AsyncConnection, *, fleet_id: str, limit: int = 60
) -> list[Progress]:
    """The fleet's latest campaigns, newest first, each with its progress."""
    rows = (
        await conn.execute(
            select(campaigns)
            .where(campaigns.c.fleet_id == fleet_id)
            .order_by(campaigns.c.created_at.desc(), campaigns.c.id)
            .limit(limit)
        )
    ).all()
    return [await progress(conn, campaign_from_row(row)) for row in rows]
