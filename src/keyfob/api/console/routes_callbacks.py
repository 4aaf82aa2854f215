"""The console's callbacks: the list, creating one, editing, pausing and resuming, rotating
the signing secret.

Each form builds the body the API's route takes and goes through the same parser and service
(``callbacks.schemas``, ``callbacks.service``), behind the same tenant checks; a secret is
shown once, on the page that answers the form, as the API shows it once in its answer.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyfob.api.console import pages, readable
from keyfob.api.console.callback_form import FIELDS, POLICIES, REMOTE_TYPES, body_of
from keyfob.api.console.guard import CurrentVisitor, Visitor, check_csrf
from keyfob.api.console.remote_form import Problems, place_at
from keyfob.api.console.routes_deliveries import callback_page
from keyfob.api.console.routes_vehicles import page_of
from keyfob.api.deps import Ctx
from keyfob.callbacks import service as callbacks
from keyfob.callbacks.schemas import parse_callback_body, parse_status_setter
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.runtime.context import AppContext
from keyfob.vehicles.service import get_fleet

router = APIRouter(route_class=pages.ConsoleRoute)
PATH = "/fleets/{fid}/callbacks"
ROTATION_GRACE = timedelta(hours=24)
"""As ``POST .../secret/rotate``: the previous secret keeps signing beside the new one."""
BODY_ERRORS = (ErrorCode.INVALID_BODY, ErrorCode.INVALID_WEBHOOK_TARGET, ErrorCode.UNKNOWN_VARIABLE)
DEFAULTS = {"retryPolicy.policy": "Bounded", "type.Doors": "on"}


def _problems(refusal: KeyfobError) -> Problems:
    if refusal.error in BODY_ERRORS:
        return place_at(FIELDS, refusal.message)
    raise refusal


async def _list_page(
    request: Request,
    ctx: AppContext,
    visitor: Visitor,
    fid: str,
    *,
    status: int = 200,
    problems: Problems | None = None,
    sent: dict[str, str] | None = None,
) -> HTMLResponse:
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        total, found = await callbacks.list_callbacks(
            conn, fleet_id=fid, types=None, page=page_of(1, 60)
        )
    return pages.render(
        request,
        "callbacks.html",
        status=status,
        visitor=visitor,
        fleet=fleet,
        callbacks=found,
        total=total,
        values=sent if sent is not None else DEFAULTS,
        problems=problems or Problems(),
        remote_types=REMOTE_TYPES,
        policies=POLICIES,
        when=readable.when,
    )


@router.get(PATH)
async def callback_list(request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str) -> Response:
    return await _list_page(request, ctx, visitor, fid)


def _secret_page(
    request: Request,
    visitor: Visitor,
    fleet_id: str,
    callback: callbacks.Callback,
    secret: str,
    *,
    title: str,
) -> HTMLResponse:
    return pages.render(
        request,
        "secret.html",
        visitor=visitor,
        fleet_id=fleet_id,
        callback=callback,
        secret=secret,
        title=title,
    )


@router.post(PATH)
async def create(request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str) -> Response:
    sent = await pages.read_form(request)
    check_csrf(visitor.session, sent)
    try:
        parsed = parse_callback_body(body_of(sent), target_policy=ctx.target_policy)
    except KeyfobError as refusal:
        problems = _problems(refusal)
        return await _list_page(
            request, ctx, visitor, fid, status=refusal.status, problems=problems, sent=sent
        )
    async with ctx.database.transaction() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        callback, secret = await callbacks.create_callback(
            conn, fleet_id=fid, parsed=parsed, now=ctx.clock()
        )
    return _secret_page(request, visitor, fleet.id, callback, secret, title="Callback created")


@router.post(PATH + "/{cbid}")
async def edit(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    sent = await pages.read_form(request)
    check_csrf(visitor.session, sent)
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        current = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        try:
            parsed = parse_callback_body(
                body_of(sent, current.subscribe), target_policy=ctx.target_policy
            )
        except KeyfobError as refusal:
            problems = _problems(refusal)
            status = refusal.status
        else:
            await callbacks.replace_callback(conn, callback=current, parsed=parsed, now=ctx.clock())
            return pages.see_other(request, f"/fleets/{fid}/callbacks/{cbid}?done=saved")
    return await callback_page(
        request, ctx, visitor, fid, cbid, status=status, problems=problems, sent=sent
    )


@router.post(PATH + "/{cbid}/status")
async def pause_or_resume(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    sent = await pages.read_form(request)
    check_csrf(visitor.session, sent)
    status = parse_status_setter({"status": sent.get("status", "")})
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        current = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        await callbacks.set_status(conn, callback=current, status=status, now=ctx.clock())
    ctx.wake()
    return pages.see_other(request, f"/fleets/{fid}/callbacks/{cbid}?done={status.value}")


@router.post(PATH + "/{cbid}/secret")
async def rotate_secret(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cbid: str
) -> Response:
    check_csrf(visitor.session, await pages.read_form(request))
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        current = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        secret, _ = await callbacks.rotate_secret(
            conn, callback=current, now=ctx.clock(), grace=ROTATION_GRACE
        )
    return _secret_page(request, visitor, fid, current, secret, title="New signing secret")
