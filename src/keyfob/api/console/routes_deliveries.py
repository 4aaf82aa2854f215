"""A callback's page in the console: its settings form, its delivery log with every attempt,
and replay. The page's script refreshes the log in place every few seconds (``/log``, the same
tables alone), so failing attempts show as they happen.

The log and replay are the delivery extension's services (``notifications.inspect``), behind
the same tenant checks as ``/connectedcar/v3/fleets/{fid}/remote/callbacks/{cbid}/...``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from keyfob.vehicles.service import Fleet, get_fleet

router = APIRouter(route_class=pages.ConsoleRoute)
PATH = "/fleets/{fid}/callbacks/{cbid}"
LOG_SIZE = 25
NOTICES = {"saved": "Saved.", "Running": "Running again.", "Paused": "Paused."}


def _last_page(total: int) -> int:
    return max(1, math.ceil(total / LOG_SIZE))


@dataclass(frozen=True, slots=True)
class Log:
    fleet: Fleet
    callback: callbacks.Callback
    notifications: list[inspect.Notification]
    notification_total: int
    attempts: list[inspect.Attempt]
    attempt_total: int


async def read_log(ctx: AppContext, visitor: Visitor, fid: str, cbid: str) -> Log:
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
    return Log(fleet, callback, found, sent, attempts, tried)


def _log_context(log: Log) -> dict[str, Any]:
    return {
        "fleet": log.fleet,
        "callback": log.callback,
        "notifications": log.notifications,
        "notification_total": log.notification_total,
        "attempts": log.attempts,
        "attempt_total": log.attempt_total,
        "replayable": inspect.REPLAYABLE,
        "when": readable.when,
    }


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
    log = await read_log(ctx, visitor, fid, cbid)
    notice = NOTICES.get(request.query_params.get("done", ""))
    replayed = request.query_params.get("replayed")
    if replayed is not None and replayed.isdigit():
        notice = f"Replayed {replayed} notification{'' if replayed == '1' else 's'}."
    return pages.render(
        request,
        "callback.html",
        status=status,
        visitor=visitor,
        notice=notice,
        values=sent if sent is not None else values_of(log.callback.subscribe),
        problems=problems or Problems(),
        remote_types=REMOTE_TYPES,
        policies=POLICIES,
        **_log_context(log),
    )


@router.get(PATH + "/log")
async def log_part(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    """The log alone, for the page's script to refresh it in place."""
    log = await read_log(ctx, visitor, fid, cbid)
    return pages.render(request, "_log.html", visitor=visitor, **_log_context(log))


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
