"""User face reads (§2.5): the signed-in user, their vehicles, and a vehicle's status.

Every route takes the caller from ``CurrentUser`` (Bearer token, ``client_id`` and
``x-introspect-realm``, decisions 27 and 28) and reads through the user's vehicle links
(``vehicles.user_vehicles``): a vehicle the user is not linked to is a 404, never a 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyfob.api import views_user
from keyfob.api.deps import Ctx, base_url
from keyfob.api.docs_models import Collection, Vehicle, hal
from keyfob.api.docs_user import User, UserVehicleStatus, user_errors
from keyfob.api.http import HalResponse
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.user_access import CurrentUser
from keyfob.api.vehicle_params import Extensions, Locale, VinPrefix
from keyfob.auth.users import get_user
from keyfob.errors import ErrorCode as E
from keyfob.errors import KeyfobError
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.vehicles import state as vehicle_state
from keyfob.vehicles import user_vehicles
from keyfob.vehicles.user_status import user_status_document

router = APIRouter(prefix="/connectedcar/v4", tags=["User and vehicles"])


@router.get(
    "/user",
    operation_id="getUser",
    response_class=HalResponse,
    responses={200: hal(User, "User"), **user_errors(E.NOT_FOUND)},
)
async def get_current_user(request: Request, ctx: Ctx, caller: CurrentUser) -> Response:
    async with ctx.database.read() as conn:
        user = await get_user(conn, caller.user_id)
    if user is None:
        raise KeyfobError(E.NOT_FOUND, "this token's user no longer exists")
    return HalResponse(
        views_user.user_view(
            base_url(request, ctx, "v4"),
            email=user.login,
            first_name=user.first_name,
            last_name=user.last_name,
            created_at=user.created_at,
        )
    )


@router.get(
    "/user/vehicles",
    operation_id="getVehiclesByDevice",
    response_class=HalResponse,
    responses={
        200: hal(Collection, "Vehicles"),
        **user_errors(E.INVALID_QUERY, E.INVALID_PAGE_TOKEN),
    },
)
async def list_vehicles(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    extension: Extensions = None,
    vin_prefix: VinPrefix = None,
    locale: Locale = None,
) -> Response:
    scope = f"user-vehicles:{caller.user_id}:{vin_prefix or ''}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        size, found = await user_vehicles.list_user_vehicles(
            conn, user_id=caller.user_id, page=page, vin_prefix=vin_prefix
        )
    base = base_url(request, ctx, "v4")
    wanted = list(dict.fromkeys(extension or []))
    return HalResponse(
        collection(
            href=f"{views_user.user_href(base)}/vehicles",
            query={"extension": wanted, "vinPrefix": vin_prefix, "locale": locale},
            request=page,
            info=page_info(page, size),
            scope=scope,
            key="vehicles",
            items=[
                views_user.user_vehicle_view(base, v, extensions=wanted, realm=caller.realm)
                for v in found
            ],
        )
    )


@router.get(
    "/user/vehicles/{id}",
    operation_id="getVehicleByid",
    response_class=HalResponse,
    responses={200: hal(Vehicle, "Vehicle"), **user_errors(E.INVALID_QUERY, E.VEHICLE_NOT_FOUND)},
)
async def get_vehicle(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    id: str,
    extension: Extensions = None,
    locale: Locale = None,
) -> Response:
    async with ctx.database.read() as conn:
        vehicle = await user_vehicles.get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
    return HalResponse(
        views_user.user_vehicle_view(
            base_url(request, ctx, "v4"), vehicle, extensions=extension or [], realm=caller.realm
        )
    )


@router.get(
    "/user/vehicles/{id}/status",
    operation_id="getVehicleStatus",
    response_class=HalResponse,
    responses={
        200: hal(UserVehicleStatus, "Status"),
        **user_errors(E.VEHICLE_NOT_FOUND, E.NOT_FOUND),
    },
)
async def get_status(request: Request, ctx: Ctx, caller: CurrentUser, id: str) -> Response:
    """The vehicle's latest reported status, as its driver may see it (``vehicles.user_status``).

    404 with code 40400 while the vehicle has never reported: clients read exactly that as
    "no data yet" and poll again.
    """
    async with ctx.database.read() as conn:
        vehicle = await user_vehicles.get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
        known = await vehicle_state.get_state(conn, vehicle.id)
    if known.status is None or known.status_at is None:
        raise KeyfobError(
            E.NOT_FOUND, "this vehicle has not reported its status yet; send a WakeUp"
        )
    href = views_user.vehicle_href(base_url(request, ctx, "v4"), vehicle.id)
    return HalResponse(
        user_status_document(
            vin=vehicle.vin,
            reported=known.status,
            reported_at=known.status_at,
            scopes=caller.scopes,
            self_href=f"{href}/status?profile=endUser",
            vehicle_href=href,
        )
    )
