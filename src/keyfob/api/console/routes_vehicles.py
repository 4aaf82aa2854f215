"""The console's fleets, vehicles and one vehicle with its remote forms.

Every look-up names the signed-in partner (``vehicles.service.get_fleet`` first, then the
vehicle in that fleet), as the API's routes do, so another tenant's ids are a 404 page. A
remote posted from a form goes through the acceptor every POST remote goes through
(``remotes.accept``), with an idempotency key per rendered form, so a double click sends one
remote.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyfob.api.console import figures, pages, readable, vehicle_page
from keyfob.api.console.guard import CurrentVisitor, Visitor
from keyfob.api.console.remote_form import FORMS, ActionForm
from keyfob.api.console.vehicle_page import FIRST, Retry, remote_forms
from keyfob.api.deps import Ctx
from keyfob.callbacks.service import Callback, list_callbacks
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.paging import PageRequest
from keyfob.kit.text import shown
from keyfob.remotes.accept import AcceptRequest
from keyfob.runtime.context import AppContext
from keyfob.vehicles import overview, service
from keyfob.vehicles import state as vehicle_state

router = APIRouter(route_class=pages.ConsoleRoute)
PAGE_SIZE = 50
NO_CALLBACKS = (
    "This fleet has no callback: create one with the API (POST …/remote/callbacks) to send remotes."
)


def page_of(number: int, size: int = PAGE_SIZE) -> PageRequest:
    return PageRequest(start=0, end=None, page_size=size, page=number, index_range="0-")


def _page_number(text: str | None) -> int:
    if text is None or text == "":
        return 1
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise KeyfobError(
            ErrorCode.INVALID_QUERY, f"page must be a positive number (got {shown(text)})"
        )
    return int(text)


@router.get("/")
async def home(request: Request, ctx: Ctx, visitor: CurrentVisitor) -> Response:
    async with ctx.database.read() as conn:
        total, fleets = await service.list_fleets(
            conn, partner_id=visitor.partner.id, page=page_of(1, 60)
        )
    if total == 1:
        return pages.see_other(request, f"/fleets/{fleets[0].id}")
    return pages.render(request, "fleets.html", visitor=visitor, fleets=fleets, total=total)


@router.get("/fleets/{fid}")
async def vehicles(request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str) -> Response:
    vin = (request.query_params.get("vin") or "").strip()[:17]
    presence = request.query_params.get("presence") or ""
    if presence and presence not in overview.PRESENCES:
        raise KeyfobError(
            ErrorCode.INVALID_QUERY, f"presence must be one of {', '.join(overview.PRESENCES)}"
        )
    number = _page_number(request.query_params.get("page"))
    async with ctx.database.read() as conn:
        fleet = await service.get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        total, found = await overview.fleet_page(
            conn,
            fleet_id=fid,
            vin=vin or None,
            presence=presence or None,
            page=page_of(number),
            now=ctx.clock(),
        )
    return pages.render(
        request,
        "vehicles.html",
        visitor=visitor,
        fleet=fleet,
        lines=found,
        total=total,
        vin=vin,
        presence=presence,
        presences=overview.PRESENCES,
        page=number,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        quota=ctx.settings.vehicle.wake_up_quota_per_month,
        when=readable.when,
    )


async def _vehicle_page(
    request: Request, ctx: AppContext, visitor: Visitor, fid: str, vid: str, retry: Retry = FIRST
) -> HTMLResponse:
    async with ctx.database.read() as conn:
        fleet = await service.get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        vehicle = await service.get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        known = await vehicle_state.get_state(conn, vehicle.id)
        _, callbacks = await list_callbacks(conn, fleet_id=fid, types=None, page=page_of(1, 60))
        wakes = await overview.wake_ups_since(
            conn, [vehicle.id], vehicle_state.month_start(ctx.clock())
        )
        recent = await figures.recent_remotes(conn, fleet_id=fid, vehicle_id=vehicle.id)
    return pages.render(
        request,
        "vehicle.html",
        visitor=visitor,
        fleet=fleet,
        vehicle=vehicle,
        known=known,
        status_lines=readable.lines(known.status),
        capability_lines=readable.lines(vehicle.capabilities),
        position=readable.position(known.status),
        energy=overview.energy_summary(known.status),
        wake_ups=wakes.get(vehicle.id, 0),
        quota=ctx.settings.vehicle.wake_up_quota_per_month,
        recent=recent,
        **remote_forms(
            vehicle_url=f"{pages.root(request)}/fleets/{fleet.id}/vehicles/{vehicle.id}",
            csrf=visitor.session.csrf,
            forms=FORMS,
            callbacks=callbacks,
            callback_note=fleet_callback_note,
            no_callbacks=NO_CALLBACKS,
            retry=retry,
        ),
    )


def fleet_callback_note(callback: Callback, form: ActionForm) -> str:
    """What the remote form's list says about a callback this remote cannot go through."""
    note = (
        ""
        if form.remote_type in callback.remote_types
        else f" (not subscribed to {form.remote_type})"
    )
    return note + ("" if callback.status == "Running" else f" ({callback.status})")


@router.get("/fleets/{fid}/vehicles/{vid}")
async def vehicle(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, vid: str
) -> Response:
    return await _vehicle_page(request, ctx, visitor, fid, vid)


@router.post("/fleets/{fid}/vehicles/{vid}/remotes")
async def send_remote(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, vid: str
) -> Response:
    """Accept the form's remote as POST remote would, then show its timeline."""

    def accept_for(callback_id: str, data: dict[str, Any], key: str | None) -> AcceptRequest:
        return AcceptRequest(
            partner_id=visitor.partner.id,
            fleet_id=fid,
            vehicle_id=vid,
            callback_id=callback_id,
            data=data,
            idempotency_key=key,
        )

    outcome = await vehicle_page.send_remote(
        request,
        ctx,
        visitor.session,
        forms=FORMS,
        unknown_action="the form names no remote action",
        accept_for=accept_for,
    )
    if isinstance(outcome, Retry):
        return await _vehicle_page(request, ctx, visitor, fid, vid, outcome)
    return pages.see_other(
        request,
        f"/fleets/{fid}/vehicles/{vid}/callbacks/{outcome.callback_id}/remotes/{outcome.remote_id}",
    )
