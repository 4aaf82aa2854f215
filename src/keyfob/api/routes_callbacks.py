"""Fleet face: remote callbacks (§2.1). Thin: parse, call a service in one unit of work, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from keyfob.api import views
from keyfob.api.deps import Ctx, CurrentPartner, base_url
from keyfob.api.docs_models import CallbackRef, Collection, RemoteCallback, errors, hal
from keyfob.api.http import HalResponse, json_body
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.request_schemas import (
    REMOTE_CALLBACK_SUBSCRIBE,
    REMOTE_CALLBACKS_STATUS_SETTER,
    request_body,
)
from keyfob.callbacks import service
from keyfob.callbacks.schemas import parse_callback_body, parse_status_setter
from keyfob.errors import ErrorCode as E
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.remotes.service import delete_callback
from keyfob.vehicles.service import get_fleet
from keyfob.vocabulary import RemoteType

router = APIRouter(prefix="/connectedcar/v3", tags=["Remote callbacks"])
PATH = "/fleets/{fid}/remote/callbacks"
BODY_ERRORS = (
    E.MALFORMED_JSON,
    E.INVALID_BODY,
    E.LEGACY_FIELD,
    E.UNKNOWN_VARIABLE,
    E.INVALID_WEBHOOK_TARGET,
    E.FLEET_NOT_FOUND,
    E.UNSUPPORTED_MEDIA_TYPE,
)


@router.get(
    PATH,
    operation_id="getFleetRemotes",
    response_class=HalResponse,
    responses={
        200: hal(Collection, "RemoteCallbacks"),
        **errors(E.INVALID_QUERY, E.FLEET_NOT_FOUND),
    },
)
async def list_callbacks(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    types: Annotated[list[RemoteType] | None, Query()] = None,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    wanted = sorted(set(types or []))
    scope = f"callbacks:{fid}:{','.join(wanted)}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        size, found = await service.list_callbacks(conn, fleet_id=fid, types=wanted, page=page)
    base = base_url(request, ctx)
    body = collection(
        href=f"{base}/fleets/{fid}/remote/callbacks",
        query={"types": [t.value for t in wanted] or None},
        request=page,
        info=page_info(page, size),
        scope=scope,
        key="callbacks",
        items=[views.remote_callback(base, cb) for cb in found],
    )
    return HalResponse(body)


@router.post(
    PATH,
    operation_id="setFleetVehicleRemote",
    response_class=HalResponse,
    responses={
        200: hal(CallbackRef, "CallbackRef, with the signing secret"),
        **errors(*BODY_ERRORS),
    },
    openapi_extra=request_body(REMOTE_CALLBACK_SUBSCRIBE),
)
async def create_callback(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str
) -> Response:
    parsed = parse_callback_body(await json_body(request), target_policy=ctx.target_policy)
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        callback, secret = await service.create_callback(
            conn, fleet_id=fid, parsed=parsed, now=ctx.clock()
        )
    return HalResponse(views.callback_ref(base_url(request, ctx), callback, secret))


@router.get(
    PATH + "/{cbid}",
    operation_id="getFleetRemotebyId",
    response_class=HalResponse,
    responses={
        200: hal(RemoteCallback, "RemoteCallback"),
        **errors(E.INVALID_PATH_ID, E.FLEET_NOT_FOUND, E.CALLBACK_NOT_FOUND),
    },
)
async def get_callback(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str
) -> Response:
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        callback = await service.get_callback(conn, fleet_id=fid, callback_id=cbid)
    return HalResponse(views.remote_callback(base_url(request, ctx), callback))


@router.put(
    PATH + "/{cbid}",
    operation_id="setFleetVehicleRemoteById",
    response_class=HalResponse,
    status_code=202,
    responses={
        202: hal(CallbackRef, "CallbackRef"),
        **errors(*BODY_ERRORS, E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
    openapi_extra=request_body(REMOTE_CALLBACK_SUBSCRIBE),
)
async def replace_callback(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str
) -> Response:
    parsed = parse_callback_body(await json_body(request), target_policy=ctx.target_policy)
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        current = await service.get_callback(conn, fleet_id=fid, callback_id=cbid)
        callback = await service.replace_callback(
            conn, callback=current, parsed=parsed, now=ctx.clock()
        )
    return HalResponse(views.callback_ref(base_url(request, ctx), callback), status_code=202)


@router.delete(
    PATH + "/{cbid}",
    operation_id="deleteFleetRemote",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "Deleted"},
        **errors(
            E.INVALID_PATH_ID,
            E.FLEET_NOT_FOUND,
            E.CALLBACK_NOT_FOUND,
            E.CALLBACK_HAS_PENDING_REMOTES,
        ),
    },
)
async def remove_callback(ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str) -> Response:
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await delete_callback(conn, fleet_id=fid, callback_id=cbid, now=ctx.clock())
    return Response(status_code=204)


@router.put(
    PATH + "/{cbid}/status",
    operation_id="setFleeRemoteCallbackStatus",
    response_class=HalResponse,
    status_code=202,
    responses={
        202: hal(CallbackRef, "CallbackRef"),
        **errors(*BODY_ERRORS, E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
    openapi_extra=request_body(REMOTE_CALLBACKS_STATUS_SETTER),
)
async def set_status(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str
) -> Response:
    status = parse_status_setter(await json_body(request))
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        current = await service.get_callback(conn, fleet_id=fid, callback_id=cbid)
        callback = await service.set_status(conn, callback=current, status=status, now=ctx.clock())
    return HalResponse(views.callback_ref(base_url(request, ctx), callback), status_code=202)
