"""User face: keyfob's command-control extensions (docs/extensions.md). Thin, as every route.

The user face's ``Message`` body carries exactly the template's fields (decision 26), so these
extensions are paths of their own; a client written for the official API never meets them.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response

from keyfob.api import control, views_control, views_user
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
from keyfob.runtime.delivery_role import push_config
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
    sent = await control.send_test(
        ctx, target, RemoteType.WAKE_UP.value, push_config(ctx.settings.push)
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
        budget = await control.budget_of(conn, ctx, vehicle.id)
    vehicle_href = views_user.vehicle_href(base_url(request, ctx, "v4"), vehicle.id)
    return control.budget_answer(request, vehicle_href, vehicle.vin, budget)


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
    find = partial(
        remotes.get_user_remote, owner=mine, vehicle_id=id, callback_id=cbid, remote_id=rid
    )
    async with ctx.database.read() as conn:
        await get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
        await user_service.get_user_callback(
            conn, owner=mine, callback_id=cbid, include_deleted=True
        )
        await find(conn)
    remote, events = await control.cancel(ctx, rid, find)
    return HalResponse(user_views.remote_action(base_url(request, ctx, "v4"), remote, events))
