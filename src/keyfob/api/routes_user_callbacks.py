"""User face: callbacks (§2.3). Thin: parse, call a service in one unit of work, render.

Every route takes the caller from ``CurrentUser`` and sees only the callbacks that caller (the
user, through this OAuth client) created: anyone else's is a 404 (§2.4). Create answers 202
(decision 1), replace and status 202, delete 204 even with a remote in flight (decision 24).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from keyfob.api import views_user_callbacks as views
from keyfob.api.deps import Ctx, base_url
from keyfob.api.docs_models import CallbackRef, Collection, Link, hal
from keyfob.api.docs_user import user_errors
from keyfob.api.http import HalResponse, json_body
from keyfob.api.paging import IndexRange, PageSize, PageToken, page_request
from keyfob.api.request_schemas import request_body
from keyfob.api.request_schemas_user import CALLBACKS_STATUS_SETTER, USER_CALLBACK_SUBSCRIBE
from keyfob.api.user_access import CurrentUser
from keyfob.auth.principal import UserPrincipal
from keyfob.callbacks import user_service as service
from keyfob.callbacks.schemas import parse_status_setter
from keyfob.callbacks.user_schemas import CallbackType, parse_user_callback_body
from keyfob.callbacks.user_service import Owner
from keyfob.errors import ErrorCode as E
from keyfob.kit.hal import collection
from keyfob.kit.paging import page_info
from keyfob.notifications.outbox import drop_pending
from keyfob.vocabulary import CallbackStatus

router = APIRouter(prefix="/connectedcar/v4", tags=["Subscribe"])
PATH = "/user/callbacks"
BODY_ERRORS = (
    E.MALFORMED_JSON,
    E.INVALID_BODY,
    E.UNKNOWN_VARIABLE,
    E.INVALID_WEBHOOK_TARGET,
    E.UNSUPPORTED_MEDIA_TYPE,
    E.BODY_TOO_LARGE,
)


class UserCallback(BaseModel):
    """The b2c ``UserCallback``, for the published document only."""

    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    label: str | None = None
    id: str
    subscribe: dict[str, Any]
    status: CallbackStatus


def owner(caller: UserPrincipal) -> Owner:
    return Owner(client_id=caller.client_id, user_id=caller.user_id)


@router.get(
    PATH,
    operation_id="getUsertRemotes",
    response_class=HalResponse,
    responses={
        200: hal(Collection, "UserCallbacks"),
        **user_errors(E.INVALID_QUERY, E.INVALID_PAGE_TOKEN),
    },
)
async def list_callbacks(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    types: Annotated[list[CallbackType] | None, Query()] = None,
    index_range: IndexRange = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    wanted = sorted(set(types or []))
    scope = f"user-callbacks:{caller.client_id}:{caller.user_id}:{','.join(wanted)}"
    page = page_request(index_range, page_size, page_token, scope=scope)
    async with ctx.database.read() as conn:
        size, found = await service.list_user_callbacks(
            conn, owner=owner(caller), types=wanted, page=page
        )
    base = base_url(request, ctx, "v4")
    body = collection(
        href=views.callbacks_href(base),
        query={"types": [kind.value for kind in wanted] or None},
        request=page,
        info=page_info(page, size),
        scope=scope,
        key="callbacks",
        items=[views.user_callback(base, callback) for callback in found],
    )
    return HalResponse(body)


@router.post(
    PATH,
    operation_id="setUsertVehicleRemote",
    response_class=HalResponse,
    status_code=202,
    responses={
        202: hal(CallbackRef, "CallbackRef, with the signing secret"),
        **user_errors(*BODY_ERRORS),
    },
    openapi_extra=request_body(USER_CALLBACK_SUBSCRIBE),
)
async def create_callback(request: Request, ctx: Ctx, caller: CurrentUser) -> Response:
    parsed = parse_user_callback_body(
        await json_body(request),
        target_policy=ctx.target_policy,
        push_offered=ctx.settings.push.configured,
    )
    async with ctx.database.transaction() as conn:
        callback, secret = await service.create_user_callback(
            conn, owner=owner(caller), parsed=parsed, now=ctx.clock()
        )
    base = base_url(request, ctx, "v4")
    return HalResponse(views.callback_ref(base, callback, secret), status_code=202)


@router.get(
    PATH + "/{cbid}",
    operation_id="getUsertRemotebyId",
    response_class=HalResponse,
    responses={
        200: hal(UserCallback, "UserCallback"),
        **user_errors(E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
)
async def get_callback(request: Request, ctx: Ctx, caller: CurrentUser, cbid: str) -> Response:
    async with ctx.database.read() as conn:
        callback = await service.get_user_callback(conn, owner=owner(caller), callback_id=cbid)
    return HalResponse(views.user_callback(base_url(request, ctx, "v4"), callback))


@router.put(
    PATH + "/{cbid}",
    operation_id="setUsertVehicleRemoteById",
    response_class=HalResponse,
    status_code=202,
    responses={
        202: hal(CallbackRef, "CallbackRef"),
        **user_errors(*BODY_ERRORS, E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
    openapi_extra=request_body(USER_CALLBACK_SUBSCRIBE),
)
async def replace_callback(request: Request, ctx: Ctx, caller: CurrentUser, cbid: str) -> Response:
    parsed = parse_user_callback_body(
        await json_body(request),
        target_policy=ctx.target_policy,
        push_offered=ctx.settings.push.configured,
    )
    async with ctx.database.transaction() as conn:
        current = await service.get_user_callback(conn, owner=owner(caller), callback_id=cbid)
        callback = await service.replace_user_callback(
            conn, callback=current, parsed=parsed, now=ctx.clock()
        )
    base = base_url(request, ctx, "v4")
    return HalResponse(views.callback_ref(base, callback), status_code=202)


@router.delete(
    PATH + "/{cbid}",
    operation_id="deleteUsertRemote",
    status_code=204,
    response_class=Response,
    responses={
        204: {
            "description": "Deleted; a remote in flight stays readable, its later "
            "notifications are dropped"
        },
        **user_errors(E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
)
async def remove_callback(ctx: Ctx, caller: CurrentUser, cbid: str) -> Response:
    now = ctx.clock()
    async with ctx.database.transaction() as conn:
        callback = await service.get_user_callback(conn, owner=owner(caller), callback_id=cbid)
        await service.delete_user_callback(conn, callback=callback, now=now)
        await drop_pending(conn, callback_id=callback.id, now=now)
    return Response(status_code=204)


@router.put(
    PATH + "/{cbid}/status",
    operation_id="setUserCallbackStatus",
    response_class=HalResponse,
    status_code=202,
    responses={
        202: hal(CallbackRef, "CallbackRef"),
        **user_errors(*BODY_ERRORS, E.INVALID_PATH_ID, E.CALLBACK_NOT_FOUND),
    },
    openapi_extra=request_body(CALLBACKS_STATUS_SETTER),
)
async def set_status(request: Request, ctx: Ctx, caller: CurrentUser, cbid: str) -> Response:
    status = parse_status_setter(await json_body(request))
    async with ctx.database.transaction() as conn:
        current = await service.get_user_callback(conn, owner=owner(caller), callback_id=cbid)
        callback = await service.set_user_status(
            conn, callback=current, status=status, now=ctx.clock()
        )
    base = base_url(request, ctx, "v4")
    return HalResponse(views.callback_ref(base, callback), status_code=202)
