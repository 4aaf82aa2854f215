"""Fleet face: fleets, their vehicles, and a vehicle's onboard capabilities (§2.5).

The vehicle reads take the specification's ``vinPrefix``, ``extension`` and ``locale``
(decision 31, ``api.vehicle_params``): ``extension=onboardCapabilities`` embeds the vehicle's
capabilities; ``branding`` and ``pictures`` are accepted and embed nothing, since keyfob knows
neither a vehicle's model nor its pictures.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyfob.api import views
from keyfob.api.deps import Ctx, CurrentPartner, base_url
from keyfob.api.docs_models import (
    Collection,
    Fleet,
    StolenContext,
    Vehicle,
    VehicleCapabilities,
    VehicleStatus,
    errors,
    hal,
)
from keyfob.api.http import HalResponse
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.vehicle_params import Extensions, ListExtensions, Locale, VinPrefix
from keyfob.errors import ErrorCode as E
from keyfob.errors import KeyfobError
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.kit.text import shown
from keyfob.vehicles import service
from keyfob.vehicles import state as vehicle_state
from keyfob.vehicles.status import Profile, status_document, stolen_context

router = APIRouter(prefix="/connectedcar/v3", tags=["Fleets and vehicles"])


@router.get(
    "/fleets",
    operation_id="getFleets",
    response_class=HalResponse,
    responses={200: hal(Collection, "Fleets"), **errors(E.INVALID_QUERY)},
)
async def list_fleets(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    page = page_request(index_range, page_size, page_token, scope="fleets")
    async with ctx.database.read() as conn:
        size, found = await service.list_fleets(conn, partner_id=partner.id, page=page)
    base = base_url(request, ctx)
    return HalResponse(
        collection(
            href=f"{base}/fleets",
            query={},
            request=page,
            info=page_info(page, size),
            scope="fleets",
            key="fleets",
            items=[views.fleet_view(base, f) for f in found],
        )
    )


@router.get(
    "/fleets/{fid}",
    operation_id="getFleetById",
    response_class=HalResponse,
    responses={200: hal(Fleet, "Fleet"), **errors(E.FLEET_NOT_FOUND)},
)
async def get_fleet(request: Request, ctx: Ctx, partner: CurrentPartner, fid: str) -> Response:
    async with ctx.database.read() as conn:
        fleet = await service.get_fleet(conn, partner_id=partner.id, fleet_id=fid)
    return HalResponse(views.fleet_view(base_url(request, ctx), fleet))


@router.get(
    "/fleets/{fid}/vehicles",
    operation_id="getFleetVehicles",
    response_class=HalResponse,
    responses={200: hal(Collection, "Vehicles"), **errors(E.INVALID_QUERY, E.FLEET_NOT_FOUND)},
)
async def list_vehicles(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
    extension: ListExtensions = None,
    vin_prefix: VinPrefix = None,
    locale: Locale = None,
) -> Response:
    scope = f"vehicles:{fid}:{vin_prefix or ''}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        await service.get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        size, found = await service.list_vehicles(
            conn, fleet_id=fid, page=page, vin_prefix=vin_prefix
        )
    base = base_url(request, ctx)
    wanted = list(dict.fromkeys(extension or []))
    return HalResponse(
        collection(
            href=f"{base}/fleets/{fid}/vehicles",
            query={"extension": wanted, "vinPrefix": vin_prefix, "locale": locale},
            request=page,
            info=page_info(page, size),
            scope=scope,
            key="vehicles",
            items=[views.vehicle_view(base, v) for v in found],
        )
    )


@router.get(
    "/fleets/{fid}/vehicles/{vid}",
    operation_id="getFleetVehicleById",
    response_class=HalResponse,
    responses={
        200: hal(Vehicle, "Vehicle"),
        **errors(E.INVALID_QUERY, E.FLEET_NOT_FOUND, E.VEHICLE_NOT_FOUND),
    },
)
async def get_vehicle(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    vid: str,
    extension: Extensions = None,
    locale: Locale = None,
) -> Response:
    async with ctx.database.read() as conn:
        await service.get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        vehicle = await service.get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
    return HalResponse(
        views.vehicle_view(base_url(request, ctx), vehicle, extensions=extension or [])
    )


@router.get(
    "/fleets/{fid}/vehicles/{vid}/status",
    operation_id="getFleetVehicleStatus",
    response_class=HalResponse,
    responses={
        200: hal(VehicleStatus, "Status"),
        **errors(E.FLEET_NOT_FOUND, E.VEHICLE_NOT_FOUND, E.NO_DATA, E.INVALID_QUERY),
    },
)
async def get_status(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    vid: str,
    profile: Profile = "fleet",
) -> Response:
    """The vehicle's latest reported status; a WakeUp remote makes it fresh."""
    async with ctx.database.read() as conn:
        await service.get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        vehicle = await service.get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        known = await vehicle_state.get_state(conn, vehicle.id)
    if known.status is None or known.status_at is None:
        raise KeyfobError(E.NO_DATA, "this vehicle has not reported its status yet; send a WakeUp")
    href = f"{base_url(request, ctx)}/fleets/{fid}/vehicles/{vid}"
    return HalResponse(
        status_document(
            vin=vehicle.vin,
            reported=known.status,
            reported_at=known.status_at,
            profile=profile,
            self_href=f"{href}/status?profile={profile}",
            vehicle_href=href,
        )
    )


@router.get(
    "/fleets/{fid}/vehicles/{vid}/stolen/{sid}",
    operation_id="getFleetVehicleStolenById",
    response_class=HalResponse,
    responses={
        200: hal(StolenContext, "Stolen"),
        **errors(E.FLEET_NOT_FOUND, E.VEHICLE_NOT_FOUND, E.NO_DATA),
    },
)
async def get_stolen(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, vid: str, sid: str
) -> Response:
    """The stolen context a Stolen remote opened, as the vehicle last reported it."""
    async with ctx.database.read() as conn:
        await service.get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        vehicle = await service.get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        known = await vehicle_state.get_state(conn, vehicle.id)
    found = None
    if known.status is not None and known.status_at is not None:
        found = stolen_context(
            reported=known.status,
            reported_at=known.status_at,
            stolen_id=sid,
            vehicle_href=f"{base_url(request, ctx)}/fleets/{fid}/vehicles/{vid}",
        )
    if found is None:
        raise KeyfobError(E.NO_DATA, f"no stolen context {shown(sid)} reported by this vehicle")
    return HalResponse(found)


@router.get(
    "/vehicles/{vin}",
    operation_id="getVehiclesCapabilities",
    response_class=HalResponse,
    responses={
        200: hal(VehicleCapabilities, "VehicleCapabilities"),
        **errors(E.INVALID_QUERY, E.VEHICLE_NOT_FOUND),
    },
)
async def get_capabilities(
    ctx: Ctx,
    partner: CurrentPartner,
    vin: str,
    extension: Extensions = None,
    locale: Locale = None,
) -> Response:
    async with ctx.database.read() as conn:
        vehicle = await service.get_vehicle_by_vin(conn, partner_id=partner.id, vin=vin)
    return HalResponse(views.vehicle_capabilities(vehicle, list(extension or [])))
