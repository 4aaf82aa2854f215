"""The console's callbacks: the list, a callback's delivery log with every attempt, replay.

The log and replay are the delivery extension's services (``notifications.inspect``), behind
the same tenant checks as ``/connectedcar/v3/fleets/{fid}/remote/callbacks/{cbid}/...``.
"""

from __future__ import annotations

import math
from datetime import datetime

from fastapi import APIRouter, Request, Response

from keyfob.api.console import pages, readable
from keyfob.api.console.guard import CurrentVisitor, check_csrf
from keyfob.api.console.routes_vehicles import page_of
from keyfob.api.deps import Ctx
from keyfob.callbacks import service as callbacks
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import as_utc
from keyfob.notifications import inspect
from keyfob.vehicles.service import get_fleet

router = APIRouter(route_class=pages.ConsoleRoute)
PATH = "/fleets/{fid}/callbacks"
LOG_SIZE = 25


@router.get(PATH)
async def callback_list(request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str) -> Response:
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        total, found = await callbacks.list_callbacks(
            conn, fleet_id=fid, types=None, page=page_of(1, 60)
        )
    return pages.render(
        request, "callbacks.html", visitor=visitor, fleet=fleet, callbacks=found, total=total
    )


def _last_page(total: int) -> int:
    return max(1, math.ceil(total / LOG_SIZE))


@router.get(PATH + "/{cbid}")
async def delivery_log(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    """The newest notifications and attempts (the last page of each, oldest first)."""
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        callback = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        sent, found = await inspect.list_notifications(
            conn, callback_id=cbid, state=None, remote_id=None, page=page_of(1, LOG_SIZE)
        )
        if sent > LOG_SIZE:
            sent, found = await inspect.list_notifications(
                conn,
                callback_id=cbid,
                state=None,
                remote_id=None,
                page=page_of(_last_page(sent), LOG_SIZE),
            )
        tried, attempts = await inspect.list_attempts(
            conn, callback_id=cbid, page=page_of(1, LOG_SIZE)
        )
        if tried > LOG_SIZE:
            tried, attempts = await inspect.list_attempts(
                conn, callback_id=cbid, page=page_of(_last_page(tried), LOG_SIZE)
            )
    return pages.render(
        request,
        "callback.html",
        visitor=visitor,
        fleet=fleet,
        callback=callback,
        notifications=found,
        notification_total=sent,
        attempts=attempts,
        attempt_total=tried,
        replayable=inspect.REPLAYABLE,
        replayed=request.query_params.get("replayed"),
        when=readable.when,
        now=readable.when(ctx.clock()),
    )


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise KeyfobError(
            ErrorCode.INVALID_BODY, f"since: {text!r} is not a date-time like 2026-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise KeyfobError(ErrorCode.INVALID_BODY, "since: give a time zone (e.g. a trailing Z)")
    return as_utc(moment)


@router.post(PATH + "/{cbid}/replay")
async def replay(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    """One notification (``notification``) or every failed one since a time (``since``)."""
    form = await pages.read_form(request)
    check_csrf(visitor.session, form)
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        if form.get("notification"):
            await inspect.replay_one(
                conn, callback_id=cbid, notification_id=form["notification"], now=ctx.clock()
            )
            count = 1
        else:
            count = await inspect.replay_failed_since(
                conn, callback_id=cbid, since=_since(form.get("since", "")), now=ctx.clock()
            )
    ctx.wake()
    return pages.see_other(request, f"/fleets/{fid}/callbacks/{cbid}?replayed={count}")
