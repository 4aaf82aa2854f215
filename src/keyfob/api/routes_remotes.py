"""Fleet face: remote actions (§2.2). POST answers 202 once the remote is durably stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from keyfob.api import dry_run as api_dry_run
from keyfob.api import remote_post, views
from keyfob.api.deps import Ctx, CurrentPartner, base_url
from keyfob.api.docs_models import Collection, RemoteAction, RemotePostResponse, errors, hal
from keyfob.api.http import HalResponse, json_body
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.request_schemas import REMOTE, request_body
from keyfob.callbacks.service import get_callback
from keyfob.errors import ErrorCode as E
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.remotes import service
from keyfob.remotes.control.window import time_window
from keyfob.vehicles.service import get_fleet, get_vehicle

router = APIRouter(prefix="/connectedcar/v3", tags=["Remote"])
PATH = "/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes"
DryRun = Annotated[
    bool,
    Query(
        alias="dryRun",
        description="keyfob extension: run every check and answer 200 with what would "
        "happen, storing and sending nothing",
    ),
]
ExpiresAt = Annotated[
    str | None,
    Header(
        alias="Keyfob-Expires-At",
        description="keyfob extension: not sent to the vehicle by this RFC 3339 time, the "
        "remote ends Done/Failed VehicleConnectionTimeout",
    ),
]
NotBefore = Annotated[
    str | None,
    Header(
        alias="Keyfob-Not-Before",
        description="keyfob extension: the remote waits until this RFC 3339 time, "
        "spending no wake-up",
    ),
]
Budget = Annotated[
    str | None,
    Header(
        alias="Keyfob-Budget",
        description="keyfob extension: sent (any value), the 202 carries the vehicle's "
        "Keyfob-Wakeups-Remaining and Keyfob-Wakeups-Reset",
    ),
]
LOOKUP_ERRORS = (E.INVALID_PATH_ID, E.FLEET_NOT_FOUND, E.VEHICLE_NOT_FOUND, E.CALLBACK_NOT_FOUND)


@router.post(
    PATH,
    operation_id="sendRemoteToVhl",
    response_class=HalResponse,
    status_code=202,
    responses={
        200: api_dry_run.DOCUMENTED,
        202: hal(RemotePostResponse, "Accepted: the remote is stored and will be processed"),
        **errors(
            *LOOKUP_ERRORS,
            E.MALFORMED_JSON,
            E.INVALID_BODY,
            E.LEGACY_FIELD,
            E.REMOTE_TYPE_NOT_IN_CALLBACK,
            E.NOT_SUPPORTED_BY_VEHICLE,
            E.CALLBACK_NOT_RUNNING,
            E.IDEMPOTENCY_KEY_REUSED,
            E.UNSUPPORTED_MEDIA_TYPE,
        ),
    },
    openapi_extra=request_body(REMOTE),
)
async def post_remote(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    vid: str,
    cbid: str,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    dry_run: DryRun = False,
    expires_at: ExpiresAt = None,
    not_before: NotBefore = None,
    budget: Budget = None,
) -> Response:
    key = remote_post.idempotency_key(idempotency_key)
    data = await json_body(request)
    ids = (fid, vid, cbid)
    window = time_window(expires_at, not_before, now=ctx.clock())
    if dry_run:  # extension: every check, nothing stored (docs/extensions.md)
        href = views.remotes_href(base_url(request, ctx), fid, vid, cbid)
        return await api_dry_run.fleet(ctx, href=href, partner_id=partner.id, ids=ids, data=data)
    posted = await remote_post.accept(
        ctx,
        partner_id=partner.id,
        ids=ids,
        key=key,
        data=data,
        window=window,
        budget=budget is not None,
    )
    body, headers = remote_post.answer(base_url(request, ctx), ids, posted)
    return HalResponse(body, status_code=202, headers=headers)


@router.get(
    PATH,
    operation_id="getRemoteRequestsForVhl",
    response_class=HalResponse,
    responses={200: hal(Collection, "RemoteActions"), **errors(*LOOKUP_ERRORS, E.INVALID_QUERY)},
)
async def list_remotes(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    vid: str,
    cbid: str,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    scope = f"remotes:{fid}:{vid}:{cbid}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        await get_callback(conn, fleet_id=fid, callback_id=cbid)
        size, found = await service.list_remotes(conn, vehicle_id=vid, callback_id=cbid, page=page)
    base = base_url(request, ctx)
    body = collection(
        href=views.remotes_href(base, fid, vid, cbid),
        query={},
        request=page,
        info=page_info(page, size),
        scope=scope,
        key="remoteActions",
        items=[views.remote_action(base, r) for r in found],
    )
    return HalResponse(body)


@router.get(
    PATH + "/{rid}",
    operation_id="getRemoteRequestForVhlById",
    response_class=HalResponse,
    responses={
        200: hal(RemoteAction, "RemoteAction, with its event history"),
        **errors(*LOOKUP_ERRORS, E.REMOTE_NOT_FOUND),
    },
)
async def get_remote(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, vid: str, cbid: str, rid: str
) -> Response:
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        await get_vehicle(conn, fleet_id=fid, vehicle_id=vid)
        await get_callback(conn, fleet_id=fid, callback_id=cbid)
        remote, events = await service.get_remote(
            conn, fleet_id=fid, vehicle_id=vid, callback_id=cbid, remote_id=rid
        )
    return HalResponse(views.remote_action(base_url(request, ctx), remote, events))
