"""A callback's page in the console: its settings form, its delivery log with every attempt,
and replay.

The log and replay are the delivery extension's services (``notifications.inspect``), behind
the same tenant checks as ``/connectedcar/v3/fleets/{fid}/remote/callbacks/{cbid}/...``.
"""

from __future__ import annotations

import math
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyfob.api.console import pages, readable
from keyfob.api.console.callback_form import POLICIES, REMOTE_TYPES, values_of
from keyfob.api.console.guard import CurrentVisitor, Visitor, check_csrf
from keyfob.api.console.remote_form import Problems
from keyfob.api.console.routes_vehicles import page_of
from keyfob.api.deps import Ctx
from keyfob.callbacks import service as callbacks
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.clock import as_utc
from keyfob.kit.text import shown
from keyfob.notifications import inspect
from keyfob.runtime.context import AppContext
from keyfob.vehicles.service import get_fleet

router = APIRouter(route_class=pages.ConsoleRoute)
PATH = "/fleets/{fid}/callbacks/{cbid}"
LOG_SIZE = 25
NOTICES = {"saved": "Saved.", "Running": "Running again.", "Paused": "Paused."}


def _last_page(total: int) -> int:
    return max(1, math.ceil(total / LOG_SIZE))


async def callback_page(
    request: Request,
    ctx: AppContext,
    visitor: Visitor,
    fid: str,
    cbid: str,
    *,
    status: int = 200,
    problems: Problems | None = None,
    sent: dict[str, str] | None = None,
) -> HTMLResponse:
    """The newest notifications and attempts (the last page of each, oldest first)."""
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        callback = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        sent_total, found = await inspect.list_notifications(
            conn, callback_id=cbid, state=None, remote_id=None, page=page_of(1, LOG_SIZE)
        )
        if sent_total > LOG_SIZE:
            sent_total, found = await inspect.list_notifications(
                conn,
                callback_id=cbid,
                state=None,
                remote_id=None,
                page=page_of(_last_page(sent_total), LOG_SIZE),
            )
        tried, attempts = await inspect.list_attempts(
            conn, callback_id=cbid, page=page_of(1, LOG_SIZE)
        )
        if tried > LOG_SIZE:
            tried, attempts = await inspect.list_attempts(
                conn, callback_id=cbid, page=page_of(_last_page(tried), LOG_SIZE)
            )
    notice = NOTICES.get(request.query_params.get("done", ""))
    replayed = request.query_params.get("replayed")
    if replayed is not None and replayed.isdigit():
        notice = f"Replayed {replayed} notification{'' if replayed == '1' else 's'}."
    return pages.render(
        request,
        "callback.html",
        status=status,
        visitor=visitor,
        fleet=fleet,
        callback=callback,
        notifications=found,
        notification_total=sent_total,
        attempts=attempts,
        attempt_total=tried,
        replayable=inspect.REPLAYABLE,
        notice=notice,
        when=readable.when,
        values=sent if sent is not None else values_of(callback.subscribe),
        problems=problems or Problems(),
        remote_types=REMOTE_TYPES,
        policies=POLICIES,
    )


@router.get(PATH)
async def delivery_log(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    return await callback_page(request, ctx, visitor, fid, cbid)


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"since: {shown(text)} is not a date-time like 2026-01-01T00:00:00Z",
        ) from None
    if moment.tzinfo is None:
        raise KeyfobError(ErrorCode.INVALID_BODY, "since: give a time zone (e.g. a trailing Z)")
    return as_utc(moment)


@router.post(PATH + "/replay")
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
