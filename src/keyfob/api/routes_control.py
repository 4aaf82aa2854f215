"""Fleet face: keyfob's command-control extensions (docs/extensions.md). Thin, as every route.

They live on paths of their own under the official ones, so a client written for the official
API never meets them.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response

from keyfob.api import control, views, views_control
from keyfob.api.deps import Ctx, CurrentPartner, base_url
from keyfob.api.docs_models import RemoteAction, errors, hal
from keyfob.api.http import HalResponse
from keyfob.callbacks import service as callbacks
from keyfob.errors import ErrorCode as E
from keyfob.notifications import probe
from keyfob.remotes import service as remotes
from keyfob.vehicles.service import get_fleet, get_vehicle

router = APIRouter(prefix="/connectedcar/v3", tags=["Extensions"])
CALLBACK = "/fleets/{fid}/remote/callbacks/{cbid}"


@router.post(
    CALLBACK + "/test",
    operation_id="testFleetRemoteCallback",
    response_class=HalResponse,
    responses={
        200: hal(views_control.CallbackTestResult, "The receiver's answer to a test"),
        **errors(E.INVALID_PATH_ID, E.FLEET_NOT_FOUND, E.CALLBACK_NOT_FOUND),
    },
)
async def test_callback(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str
) -> Response:
    """Send a test notification to the callback's target and tell what it answered."""
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        callback = await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        target = await probe.target_of(conn, callback.id)
    sent = await control.send_test(ctx, target, callback.remote_types[0])
    href = views.callback_href(base_url(request, ctx), fid, callback.id)
    return HalResponse(views_control.callback_test_result(href, callback.id, sent))


@router.get(
    "/fleets/{fid}/vehicles/{vid}/budget",
    operation_id="getFleetVehicleBudget",
    response_class=HalResponse,
    responses={
        200: hal(views_control.VehicleBudget, "Wake-ups left and the partner's request budget"),
        **errors(E.FLEET_NOT_FOUND, E.VEHICLE_NOT_FOUND),
    },
)
async def get_budget(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, vid: str
) -> Response:
    """The vehicle's wake-up budgets (decision 19) as the dispatcher will count them."""
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        vehicle = await get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        budget = await control.budget_of(conn, ctx, vehicle.id)
    vehicle_href = f"{views.fleet_href(base_url(request, ctx), fid)}/vehicles/{vehicle.id}"
    return control.budget_answer(request, vehicle_href, vehicle.vin, budget)


@router.post(
    "/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes/{rid}/cancel",
    operation_id="cancelRemoteForVhl",
    response_class=HalResponse,
    responses={
        200: hal(RemoteAction, "The remote, ended Done/Failed CanceledByDriver"),
        **errors(
            E.INVALID_PATH_ID,
            E.FLEET_NOT_FOUND,
            E.VEHICLE_NOT_FOUND,
            E.CALLBACK_NOT_FOUND,
            E.REMOTE_NOT_FOUND,
            E.REMOTE_NOT_CANCELLABLE,
        ),
    },
)
async def cancel_remote(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, vid: str, cbid: str, rid: str
) -> Response:
    """Stop a remote not yet sent to the vehicle: it ends Done/Failed CanceledByDriver."""
    find = partial(
        remotes.get_remote, fleet_id=fid, vehicle_id=vid, callback_id=cbid, remote_id=rid
    )
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        await callbacks.get_callback(conn, fleet_id=fid, callback_id=cbid)
        await find(conn)
    remote, events = await control.cancel(ctx, rid, find)
    return HalResponse(views.remote_action(base_url(request, ctx), remote, events))
