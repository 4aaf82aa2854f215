"""keyfob extensions under a callback: its delivery log, attempts, replay, secret rotation.

These paths do not exist in the official contract; a client written for it never sees them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from keyfob.api.deps import Ctx, CurrentPartner, base_url
from keyfob.api.docs_models import errors
from keyfob.api.http import json_body
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.request_schemas import request_body
from keyfob.api.views import callback_href
from keyfob.callbacks import service as callbacks
from keyfob.errors import ErrorCode as E
from keyfob.errors import KeyfobError
from keyfob.kit.clock import as_utc, isoformat
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.kit.text import shown
from keyfob.notifications import inspect
from keyfob.vehicles.service import get_fleet

router = APIRouter(prefix="/connectedcar/v3", tags=["Deliveries (keyfob extension)"])
PATH = "/fleets/{fid}/remote/callbacks/{cbid}"
LOOKUP = (E.INVALID_PATH_ID, E.FLEET_NOT_FOUND, E.CALLBACK_NOT_FOUND)
ROTATION_GRACE = timedelta(hours=24)
REPLAY_SINCE = {
    "type": "object",
    "title": "ReplaySince",
    "properties": {
        "since": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 date-time with a time zone: notifications raised since "
            "then that were abandoned or expired are sent again.",
            "examples": ["2026-01-01T00:00:00Z"],
        }
    },
    "required": ["since"],
    "additionalProperties": False,
}


def _notification(n: inspect.Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "remoteActionId": n.remote_id,
        "sequence": n.seq,
        "eventDate": n.event["event_date"],
        "eventStatus": {
            k: v
            for k, v in {
                "type": n.event["event_type"],
                "status": n.event["status"],
                "failureCause": n.event.get("failure_cause"),
                "feedbackDetail": n.event.get("feedback_detail"),
            }.items()
            if v is not None
        },
        "state": n.state,
        "attempts": n.attempts,
        "raisedAt": isoformat(n.raised_at),
        "dueAt": isoformat(n.due_at),
        "lastAttemptAt": isoformat(n.last_attempt_at) if n.last_attempt_at else None,
        "finishedAt": isoformat(n.finished_at) if n.finished_at else None,
    }


def _attempt(a: inspect.Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "messageId": a.message_id,
        "notificationIds": a.notification_ids,
        "startedAt": isoformat(a.started_at),
        "latencyMs": a.latency_ms,
        "statusCode": a.status_code,
        "errorClass": a.error_class,
        "responseExcerpt": a.response_excerpt,
        "outcome": a.outcome,
    }


@router.get(PATH + "/deliveries", responses=errors(*LOOKUP, E.INVALID_QUERY))
async def list_deliveries(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    cbid: str,
    state: Annotated[Literal[inspect.STATES] | None, Query()] = None,  # type: ignore[valid-type]
    remote_action_id: Annotated[str | None, Query(alias="remoteActionId")] = None,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Every notification of the callback, oldest first, with its delivery state."""
    scope = f"deliveries:{cbid}:{state}:{remote_action_id}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        size, found = await inspect.list_notifications(
            conn, callback_id=cbid, state=state, remote_id=remote_action_id, page=page
        )
    href = callback_href(base_url(request, ctx), fid, cbid) + "/deliveries"
    return JSONResponse(
        collection(
            href=href,
            query={"state": state, "remoteActionId": remote_action_id},
            request=page,
            info=page_info(page, size),
            scope=scope,
            key="deliveries",
            items=[_notification(n) for n in found],
        )
    )


@router.get(PATH + "/deliveries/{nid}", responses=errors(*LOOKUP, E.NOTIFICATION_NOT_FOUND))
async def get_delivery(
    ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str, nid: str
) -> Response:
    """One notification and every attempt made to deliver it."""
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        found, attempts = await inspect.get_notification(
            conn, callback_id=cbid, notification_id=nid
        )
    return JSONResponse({**_notification(found), "attemptLog": [_attempt(a) for a in attempts]})


@router.get(PATH + "/attempts", responses=errors(*LOOKUP, E.INVALID_QUERY))
async def list_attempts(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    cbid: str,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Every delivery attempt of the callback: time, status code, latency, error, answer excerpt."""
    scope = f"attempts:{cbid}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        size, found = await inspect.list_attempts(conn, callback_id=cbid, page=page)
    href = callback_href(base_url(request, ctx), fid, cbid) + "/attempts"
    return JSONResponse(
        collection(
            href=href,
            query={},
            request=page,
            info=page_info(page, size),
            scope=scope,
            key="attempts",
            items=[_attempt(a) for a in found],
        )
    )


def _wake(ctx: Ctx) -> None:
    ctx.wake()


@router.post(
    PATH + "/deliveries/{nid}/replay",
    status_code=202,
    responses=errors(*LOOKUP, E.NOTIFICATION_NOT_FOUND, E.CONFLICT),
)
async def replay_delivery(
    ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str, nid: str
) -> Response:
    """Send one notification again (delivered, abandoned or expired ones)."""
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        found = await inspect.replay_one(
            conn, callback_id=cbid, notification_id=nid, now=ctx.clock()
        )
    ctx.wake()
    return JSONResponse(_notification(found), status_code=202)


def _since(data: object) -> datetime:
    if not isinstance(data, dict) or set(data) != {"since"} or not isinstance(data["since"], str):
        raise KeyfobError(
            E.INVALID_BODY, 'send {"since": "<RFC 3339 date-time>"}, e.g. "2026-01-01T00:00:00Z"'
        )
    try:
        moment = datetime.fromisoformat(data["since"].replace("Z", "+00:00"))
    except ValueError:
        raise KeyfobError(
            E.INVALID_BODY, f"since: {shown(data['since'])} is not a date-time"
        ) from None
    if moment.tzinfo is None:
        raise KeyfobError(E.INVALID_BODY, "since: give a time zone (e.g. a trailing Z)")
    return as_utc(moment)


@router.post(
    PATH + "/deliveries/replay",
    status_code=202,
    responses=errors(*LOOKUP, E.INVALID_BODY, E.MALFORMED_JSON),
    openapi_extra=request_body(REPLAY_SINCE),
)
async def replay_failed(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str
) -> Response:
    """Send again every abandoned or expired notification raised since a time."""
    since = _since(await json_body(request))
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        count = await inspect.replay_failed_since(
            conn, callback_id=cbid, since=since, now=ctx.clock()
        )
    ctx.wake()
    return JSONResponse({"replayed": count}, status_code=202)


@router.post(PATH + "/secret/rotate", responses=errors(*LOOKUP))
async def rotate_secret(ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str) -> Response:
    """A new signing secret; the previous one keeps signing for 24 h beside it."""
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        current = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        secret, until = await callbacks.rotate_secret(
            conn, callback=current, now=ctx.clock(), grace=ROTATION_GRACE
        )
    return JSONResponse({"secret": secret, "previousSecretValidUntil": isoformat(until)})
