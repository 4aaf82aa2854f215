"""User face: keyfob's command-control extensions (docs/extensions.md). Thin, as every route.

The user face's ``Message`` body carries exactly the template's fields (decision 26), so these
extensions are paths of their own; a client written for the official API never meets them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyfob.api import views_control, views_user
from keyfob.api import views_user_callbacks as user_views
from keyfob.api.deps import Ctx, base_url
from keyfob.api.docs_models import RemoteAction, hal
from keyfob.api.docs_user import user_errors
from keyfob.api.http import HalResponse
from keyfob.api.routes_user_callbacks import owner
from keyfob.api.user_access import CurrentUser
from keyfob.callbacks import user_service
from keyfob.errors import ErrorCode as E
from keyfob.notifications import probe
from keyfob.remotes import service as remotes
from keyfob.remotes.control.cancel import cancel_plan
from keyfob.runtime.delivery_role import push_config
from keyfob.store.units import run_unit
from keyfob.vehicles.budget import read_budget, wake_limits
from keyfob.vehicles.user_vehicles import get_user_vehicle
from keyfob.vocabulary import RemoteType

router = APIRouter(prefix="/connectedcar/v4", tags=["Extensions"])


@router.post(
    "/user/callbacks/{cbid}/test",
    operation_id="testUserCallback",
    response_class=HalResponse,
    responses={
        200: hal(views_control.CallbackTestResult, "The receiver's answer to a test"),
        **user_errors(E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
)
async def test_callback(request: Request, ctx: Ctx, caller: CurrentUser, cbid: str) -> Response:
    """Send a test ``Message`` to the callback's target and tell what it answered."""
    async with ctx.database.read() as conn:
        callback = await user_service.get_user_callback(conn, owner=owner(caller), callback_id=cbid)
        target = await probe.target_of(conn, callback.id)
    sent = await probe.send_test(
        ctx.database,
        ctx.target_policy,
        timeout_s=ctx.settings.delivery.timeout_s,
        target=target,
        remote_type=RemoteType.WAKE_UP.value,
        now=ctx.clock(),
        push=push_config(ctx.settings.push),
    )
    href = user_views.callback_href(base_url(request, ctx, "v4"), callback.id)
    return HalResponse(views_control.callback_test_result(href, callback.id, sent))


@router.get(
    "/user/vehicles/{id}/budget",
    operation_id="getUserVehicleBudget",
    response_class=HalResponse,
    responses={
        200: hal(views_control.VehicleBudget, "Wake-ups left and the client's request budget"),
        **user_errors(E.VEHICLE_NOT_FOUND),
    },
)
async def get_budget(request: Request, ctx: Ctx, caller: CurrentUser, id: str) -> Response:
    """The vehicle's wake-up budgets (decision 19) as the dispatcher will count them."""
    async with ctx.database.read() as conn:
        vehicle = await get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
        budget = await read_budget(
            conn, vehicle.id, limits=wake_limits(ctx.settings.vehicle), now=ctx.clock()
        )
    vehicle_href = views_user.vehicle_href(base_url(request, ctx, "v4"), vehicle.id)
    body = views_control.vehicle_budget(
        f"{vehicle_href}/budget",
        vehicle_href,
        vehicle.vin,
        budget,
        getattr(request.state, "rate_headers", None),
    )
    return HalResponse(body)


@router.post(
    "/user/vehicles/{id}/callbacks/{cbid}/remotes/{rid}/cancel",
    operation_id="cancelUserRemoteForVhl",
    response_class=HalResponse,
    responses={
        200: hal(RemoteAction, "The remote, ended Done/Failed CanceledByDriver"),
        **user_errors(
            E.INVALID_PATH_ID,
            E.VEHICLE_NOT_FOUND,
            E.CALLBACK_NOT_FOUND,
            E.REMOTE_NOT_FOUND,
            E.REMOTE_NOT_CANCELLABLE,
        ),
    },
)
async def cancel_remote(
    request: Request, ctx: Ctx, caller: CurrentUser, id: str, cbid: str, rid: str
) -> Response:
    """Stop a remote not yet sent to the vehicle: it ends Done/Failed CanceledByDriver."""
    mine = owner(caller)
    async with ctx.database.read() as conn:
        await get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
        await user_service.get_user_callback(
            conn, owner=mine, callback_id=cbid, include_deleted=True
        )
        await remotes.get_user_remote(
            conn, owner=mine, vehicle_id=id, callback_id=cbid, remote_id=rid
        )
    await run_unit(ctx.database, lambda: cancel_plan(rid, now=ctx.clock()))
    ctx.wake()
    async with ctx.database.read() as conn:
        remote, events = await remotes.get_user_remote(
            conn, owner=mine, vehicle_id=id, callback_id=cbid, remote_id=rid
        )
    return HalResponse(user_views.remote_action(base_url(request, ctx, "v4"), remote, events))
