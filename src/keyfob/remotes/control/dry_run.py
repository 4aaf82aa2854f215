"""A dry run of POST remote: every check, what would happen, nothing stored or sent.

The request is judged by the acceptor's own judges (``accept_fleet.judge`` or
``accept_user.judge``) against the same look-ups, read in a read-only connection; what a judge
stages goes into a batch that is thrown away. A request the real POST would refuse is refused
with the same error. An accepted one is then put to the dispatcher's pure lifecycle
(``lifecycle.advance``) with the vehicle's facts as they are now (presence, last status,
privacy, stolen state, battery, a remote of the same type in progress, wake-ups spent), which
says what its first step would be:

    SendNow       the car is online: the command would be sent at once
    WakeUpFirst   the car is asleep: a wake-up would be spent (``wakeUp.budget`` left after it)
    Fail          it would end Done/Failed with ``failureCause`` (the events it would raise)

The answer is a forecast, not a promise: the car may fall asleep, or another remote spend the
last wake-up, before a real POST runs. The Idempotency-Key is not consulted or used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.config import VehicleSettings
from keyfob.remotes import accept_fleet, accept_user
from keyfob.remotes.accept_fleet import AcceptRequest
from keyfob.remotes.accept_user import UserAcceptRequest
from keyfob.remotes.lifecycle import QUEUED, WAKING, Facts, Limits, advance
from keyfob.remotes.models import active, remotes
from keyfob.remotes.staging import Batch, Known
from keyfob.store.units import Execute, Fetch, Insert, Plan
from keyfob.vehicles.budget import WakeBudget, read_budget, wake_limits
from keyfob.vehicles.state import get_state
from keyfob.vocabulary import RemoteType


@dataclass(frozen=True)
class Forecast:
    """What a POST of this remote would do now."""

    remote_type: str
    outcome: str
    events: list[dict[str, str]]
    presence: str
    budget: WakeBudget

    @property
    def failure_cause(self) -> str | None:
        done = [e for e in self.events if e["type"] == "Done"]
        return done[-1].get("failureCause") if done else None


async def _run_read_plan(conn: AsyncConnection, plan: Plan[Any]) -> Any:
    """Drive a look-up plan on a read connection; a plan that would write is a bug here."""
    sent: Any = None
    try:
        while True:
            step = plan.send(sent)
            if isinstance(step, (Insert, Execute)):
                raise RuntimeError("a dry run's look-ups must not write")
            assert isinstance(step, Fetch)
            sent = (await conn.execute(step.statement, dict(step.parameters or {}))).all()
    except StopIteration as finished:
        return finished.value


def _limits(settings: VehicleSettings) -> Limits:
    return Limits(
        wake_up_timeout=timedelta(seconds=settings.wake_up_timeout_s),
        command_timeout=timedelta(seconds=settings.command_timeout_s),
        month_quota=settings.wake_up_quota_per_month,
        short_limit=settings.short_window_wake_ups,
        low_battery_percent=settings.low_battery_percent,
    )


async def _judge(
    conn: AsyncConnection, request: AcceptRequest | UserAcceptRequest, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The remote's type and stored body, or the error the real POST would answer."""
    batch = Batch(now=now, ttl=timedelta(0))
    if isinstance(request, UserAcceptRequest):
        found_user = await _run_read_plan(conn, accept_user.lookups([request], Known()))
        posted = accept_user.judge(request, found_user, batch)
    else:
        found = await _run_read_plan(conn, accept_fleet.lookups([request], Known()))
        posted = accept_fleet.judge(request, found, batch)
    (staged,) = batch.remotes  # staged only in memory: the batch is never written
    return posted.type, staged["body"]


async def _same_type_in_progress(conn: AsyncConnection, vehicle_id: str, remote_type: str) -> bool:
    query = select(func.count()).where(
        remotes.c.vehicle_id == vehicle_id,
        remotes.c.type == remote_type,
        active(),
    )
    return bool((await conn.execute(query)).scalar_one())


async def dry_run(
    conn: AsyncConnection,
    request: AcceptRequest | UserAcceptRequest,
    *,
    settings: VehicleSettings,
    now: datetime,
) -> Forecast:
    """Judge ``request`` as POST remote would, then forecast its first step; stores nothing."""
    remote_type, body = await _judge(conn, request, now)
    state = await get_state(conn, request.vehicle_id)
    budget = await read_budget(conn, request.vehicle_id, limits=wake_limits(settings), now=now)
    facts = Facts(
        type=RemoteType(remote_type),
        body=body,
        phase=QUEUED,
        deadline_at=None,
        presence=state.presence,
        status=state.status,
        entitled=True,  # the judge has just checked the caller's rights
        same_action_in_progress=await _same_type_in_progress(conn, request.vehicle_id, remote_type),
        wake_ups_this_month=budget.month_used,
        wake_ups_recent=budget.short_used,
    )
    step = advance(facts, now, _limits(settings))
    events = [_event(spec) for spec in step.events]
    if step.phase == WAKING:
        outcome = "WakeUpFirst"
    elif step.send_command:
        outcome = "SendNow"
    else:
        outcome = "Fail"
    return Forecast(remote_type, outcome, events, state.presence, budget)


def _event(spec: tuple[Any, str, str | None, str | None]) -> dict[str, str]:
    event_type, status, cause, feedback = spec
    found = {"type": str(event_type.value), "status": status}
    if cause is not None:
        found["failureCause"] = cause
    if feedback is not None:
        found["feedbackDetail"] = feedback
    return found
