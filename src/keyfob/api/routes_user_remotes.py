"""User face: remote actions (§2.4). POST answers 202 once the remote is durably stored.

The remote goes through the same acceptor as the fleet face's (``remotes.accept``, group
commit), as a ``UserAcceptRequest``: the vehicle must be linked to the caller, the callback
the caller's, and the token must carry the action's scope (403 otherwise, nothing stored).
Reads see only the caller's own remotes, including those that went through a callback the
caller deleted since (decision 24: they stay readable).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from keyfob.api import dry_run as api_dry_run
from keyfob.api import remote_post
from keyfob.api import views_user_callbacks as views
from keyfob.api.deps import Ctx, base_url
from keyfob.api.docs_models import Collection, RemoteAction, RemotePostResponse, hal
from keyfob.api.docs_user import user_errors
from keyfob.api.http import HalResponse, json_body
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.request_schemas import request_body
from keyfob.api.request_schemas_user import USER_REMOTE
from keyfob.api.routes_remotes import Budget, DryRun, ExpiresAt, NotBefore
from keyfob.api.routes_user_callbacks import owner
from keyfob.api.user_access import CurrentUser
from keyfob.callbacks.user_service import get_user_callback
from keyfob.errors import ErrorCode as E
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.remotes import service
from keyfob.remotes.control.window import time_window
from keyfob.vehicles.user_vehicles import get_user_vehicle

router = APIRouter(prefix="/connectedcar/v4", tags=["Remote"])
PATH = "/user/vehicles/{id}/callbacks/{cbid}/remotes"
LOOKUP_ERRORS = (E.INVALID_PATH_ID, E.VEHICLE_NOT_FOUND, E.CALLBACK_NOT_FOUND)


@router.post(
    PATH,
    operation_id="sendUserRemoteToVhl",
    response_class=HalResponse,
    status_code=202,
    responses={
        200: api_dry_run.DOCUMENTED,
        202: hal(RemotePostResponse, "Accepted: the remote is stored and will be processed"),
        **user_errors(
            *LOOKUP_ERRORS,
            E.BAD_REQUEST,
            E.MALFORMED_JSON,
            E.INVALID_BODY,
            E.LEGACY_FIELD,
            E.UNKNOWN_VARIABLE,
            E.REMOTE_TYPE_NOT_IN_CALLBACK,
            E.NOT_SUPPORTED_BY_VEHICLE,
            E.MISSING_SCOPE,
            E.CALLBACK_NOT_RUNNING,
            E.IDEMPOTENCY_KEY_REUSED,
            E.UNSUPPORTED_MEDIA_TYPE,
            E.BODY_TOO_LARGE,
        ),
    },
    openapi_extra=request_body(USER_REMOTE),
)
async def post_remote(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    id: str,
    cbid: str,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    dry_run: DryRun = False,
    expires_at: ExpiresAt = None,
    not_before: NotBefore = None,
    budget: Budget = None,
) -> Response:
    key = remote_post.idempotency_key(idempotency_key)
    data = await json_body(request)
    window = time_window(expires_at, not_before, now=ctx.clock())
    if dry_run:  # extension: every check, nothing stored (docs/extensions.md)
        href = views.remotes_href(base_url(request, ctx, "v4"), id, cbid)
        return await api_dry_run.user(
            ctx, href=href, caller=caller, vehicle_id=id, callback_id=cbid, data=data
        )
    posted = await remote_post.accept_user(
        ctx,
        caller=caller,
        vehicle_id=id,
        callback_id=cbid,
        key=key,
        data=data,
        window=window,
        budget=budget is not None,
    )
    body, headers = remote_post.user_answer(base_url(request, ctx, "v4"), id, cbid, posted)
    return HalResponse(body, status_code=202, headers=headers)


@router.get(
    PATH,
    operation_id="getUserRemoteRequestsForVhl",
    response_class=HalResponse,
    responses={
        200: hal(Collection, "RemoteActions"),
        **user_errors(*LOOKUP_ERRORS, E.INVALID_QUERY, E.INVALID_PAGE_TOKEN),
    },
)
async def list_remotes(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    id: str,
    cbid: str,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    scope = f"user-remotes:{caller.client_id}:{caller.user_id}:{id}:{cbid}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        await get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
        await get_user_callback(conn, owner=owner(caller), callback_id=cbid, include_deleted=True)
        size, found = await service.list_remotes(conn, vehicle_id=id, callback_id=cbid, page=page)
    base = base_url(request, ctx, "v4")
    body = collection(
        href=views.remotes_href(base, id, cbid),
        query={},
        request=page,
        info=page_info(page, size),
        scope=scope,
        key="remoteActions",
        items=[views.remote_action(base, remote) for remote in found],
    )
    return HalResponse(body)


@router.get(
    PATH + "/{rid}",
    operation_id="getUserRemoteRequestForVhlById",
    response_class=HalResponse,
    responses={
        200: hal(RemoteAction, "RemoteAction, with its event history"),
        **user_errors(*LOOKUP_ERRORS, E.REMOTE_NOT_FOUND),
    },
)
async def get_remote(
    request: Request, ctx: Ctx, caller: CurrentUser, id: str, cbid: str, rid: str
) -> Response:
    async with ctx.database.read() as conn:
        await get_user_vehicle(conn, user_id=caller.user_id, vehicle_id=id)
        await get_user_callback(conn, owner=owner(caller), callback_id=cbid, include_deleted=True)
        remote, events = await service.get_user_remote(
            conn, owner=owner(caller), vehicle_id=id, callback_id=cbid, remote_id=rid
        )
    return HalResponse(views.remote_action(base_url(request, ctx, "v4"), remote, events))
