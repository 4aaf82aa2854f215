"""Both faces: the event streams a consumer dials itself (an extension, docs/extensions.md).

A consumer that cannot take a webhook (a home server behind NAT) dials out instead and reads
the notifications its callback produces: Server-Sent Events at ``.../events/stream``, a
WebSocket at ``.../events/ws``, or pages at ``.../events?after=``. Each route authenticates
like its face and sees only the caller's callbacks (anyone else's is a 404); the transport is
``api.streams``'s. The webhook, if any, is delivered as before: a stream only reads.

The faces differ only in who the caller is and which callbacks are theirs, so each route
passes that check (``Check``, ``Admit``) to one body per transport below; the cursor is read
first, then the check, then the stream, on both faces alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket

from keyfob.api import access, streams
from keyfob.api.deps import Ctx, CurrentPartner
from keyfob.api.docs_models import errors
from keyfob.api.docs_user import user_errors
from keyfob.api.errors import token_invalid_response
from keyfob.api.routes_user_callbacks import owner
from keyfob.api.user_access import REALM_HEADER, CurrentUser, admit_user, bearer_token
from keyfob.auth.principal import UserPrincipal
from keyfob.callbacks.service import get_callback
from keyfob.callbacks.user_service import get_user_callback
from keyfob.errors import ErrorCode as E
from keyfob.errors import InvalidToken, KeyfobError
from keyfob.runtime.context import AppContext
from keyfob.vehicles.service import get_fleet

router = APIRouter(tags=["Event streams (extension)"])
FLEET = "/connectedcar/v3/fleets/{fid}/remote/callbacks/{cbid}/events"
USER = "/connectedcar/v4/user/callbacks/{cbid}/events"
FLEET_ERRORS = errors(E.INVALID_QUERY, E.FLEET_NOT_FOUND, E.CALLBACK_NOT_FOUND)
USER_ERRORS = user_errors(E.INVALID_QUERY, E.CALLBACK_NOT_FOUND)
JSON_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": '`{"items": [{"id", "data"}], "next"}`'}
}
FLEET_ITEM = "Each item's `data` is the `RemoteEvents` body the webhook would get for that event."
USER_ITEM = "Each item's `data` is the `Message` the webhook would get for that event."

Check = Callable[[], Awaitable[None]]
"""The face's check that the callback is the caller's (a 404 otherwise)."""
Admit = Callable[[AppContext], Awaitable[None]]
"""A WebSocket's check: authenticate the caller from the upgrade request, then ``Check``."""


def _poll_doc(item: str, refusals: dict[int | str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": "Poll a callback's notifications after a cursor",
        "description": item,
        "responses": {**JSON_PAGE, **refusals},
    }


def _sse_doc(item: str, refusals: dict[int | str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": "A callback's notifications as Server-Sent Events",
        "description": item,
        "response_class": Response,
        "responses": {**streams.SSE_RESPONSES, **refusals},
    }


def _ws_doc(item: str, refusals: dict[int | str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": "A callback's notifications over a WebSocket",
        "description": f"{streams.WS_DESCRIPTION} {item}",
        "response_class": Response,
        "responses": {101: {"description": "Switching to the WebSocket."}, **refusals},
    }


async def _fleet_callback(ctx: AppContext, partner_id: str, fid: str, cbid: str) -> None:
    async with ctx.database.read() as conn:
        await get_fleet(conn, partner_id=partner_id, fleet_id=fid)
        await get_callback(conn, fleet_id=fid, callback_id=cbid)


async def _user_callback(ctx: AppContext, caller: UserPrincipal, cbid: str) -> None:
    async with ctx.database.read() as conn:
        await get_user_callback(conn, owner=owner(caller), callback_id=cbid)


# -- one body per transport, both faces -------------------------------------------------------


async def _poll(
    request: Request, ctx: AppContext, cbid: str, after: str | None, limit: str | None, check: Check
) -> Response:
    mark, count = streams.cursor(after), streams.limit_of(limit)
    await check()
    body = await streams.page(ctx, streams.broadcaster(request), cbid, mark, count)
    return Response(body, media_type="application/json")


async def _stream(
    request: Request,
    ctx: AppContext,
    cbid: str,
    after: str | None,
    last_event_id: str | None,
    check: Check,
) -> Response:
    mark = streams.cursor(after, last_event_id)
    await check()
    return streams.sse_response(ctx, streams.broadcaster(request), cbid, streams.start(mark))


async def _ws_document(after: str | None, check: Check) -> Response:
    """The ``/ws`` path called without the upgrade: the same checks, then a 400."""
    streams.cursor(after)
    await check()
    raise KeyfobError(E.BAD_REQUEST, "this is a WebSocket: send the upgrade headers")


async def _refuse(websocket: WebSocket, refusal: KeyfobError | InvalidToken) -> None:
    """The answer the REST route would give, instead of the upgrade. ``InvalidToken`` comes
    only from the user face's Bearer check: the gateway's own 401, as on every user route."""
    if isinstance(refusal, InvalidToken):
        await websocket.send_denial_response(token_invalid_response())
    else:
        await streams.refuse(websocket, refusal)


async def _websocket(websocket: WebSocket, cbid: str, admit: Admit) -> None:
    ctx: AppContext = websocket.app.state.ctx
    try:
        mark = streams.cursor(websocket.query_params.get("after"))
        await admit(ctx)
    except (InvalidToken, KeyfobError) as refusal:
        await _refuse(websocket, refusal)
        return
    await streams.serve_websocket(websocket, ctx, cbid, streams.start(mark))


# -- the fleet face -------------------------------------------------------------------------


@router.get(FLEET, operation_id="pollFleetCallbackEvents", **_poll_doc(FLEET_ITEM, FLEET_ERRORS))
async def fleet_poll(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    cbid: str,
    after: streams.After = None,
    limit: streams.Limit = None,
) -> Response:
    return await _poll(
        request, ctx, cbid, after, limit, lambda: _fleet_callback(ctx, partner.id, fid, cbid)
    )


@router.get(
    FLEET + "/stream",
    operation_id="streamFleetCallbackEvents",
    **_sse_doc(FLEET_ITEM, FLEET_ERRORS),
)
async def fleet_stream(
    request: Request,
    ctx: Ctx,
    partner: CurrentPartner,
    fid: str,
    cbid: str,
    after: streams.After = None,
    last_event_id: streams.LastEventId = None,
) -> Response:
    return await _stream(
        request,
        ctx,
        cbid,
        after,
        last_event_id,
        lambda: _fleet_callback(ctx, partner.id, fid, cbid),
    )


@router.get(
    FLEET + "/ws", operation_id="websocketFleetCallbackEvents", **_ws_doc(FLEET_ITEM, FLEET_ERRORS)
)
async def fleet_ws_document(
    ctx: Ctx, partner: CurrentPartner, fid: str, cbid: str, after: streams.After = None
) -> Response:
    return await _ws_document(after, lambda: _fleet_callback(ctx, partner.id, fid, cbid))


@router.websocket(FLEET + "/ws")
async def fleet_ws(websocket: WebSocket, fid: str, cbid: str) -> None:
    async def admit(ctx: AppContext) -> None:
        partner, _ = await access.admit(
            ctx,
            access.basic_credentials(websocket.headers.get("authorization")),
            websocket.query_params.get("client_id"),
            path_params=websocket.path_params,
            query=websocket.query_params.multi_items(),
            address=websocket.client.host if websocket.client else None,
        )
        await _fleet_callback(ctx, partner.id, fid, cbid)

    await _websocket(websocket, cbid, admit)


# -- the user face --------------------------------------------------------------------------


@router.get(USER, operation_id="pollUserCallbackEvents", **_poll_doc(USER_ITEM, USER_ERRORS))
async def user_poll(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    cbid: str,
    after: streams.After = None,
    limit: streams.Limit = None,
) -> Response:
    return await _poll(request, ctx, cbid, after, limit, lambda: _user_callback(ctx, caller, cbid))


@router.get(
    USER + "/stream", operation_id="streamUserCallbackEvents", **_sse_doc(USER_ITEM, USER_ERRORS)
)
async def user_stream(
    request: Request,
    ctx: Ctx,
    caller: CurrentUser,
    cbid: str,
    after: streams.After = None,
    last_event_id: streams.LastEventId = None,
) -> Response:
    return await _stream(
        request, ctx, cbid, after, last_event_id, lambda: _user_callback(ctx, caller, cbid)
    )


@router.get(
    USER + "/ws", operation_id="websocketUserCallbackEvents", **_ws_doc(USER_ITEM, USER_ERRORS)
)
async def user_ws_document(
    ctx: Ctx, caller: CurrentUser, cbid: str, after: streams.After = None
) -> Response:
    return await _ws_document(after, lambda: _user_callback(ctx, caller, cbid))


@router.websocket(USER + "/ws")
async def user_ws(websocket: WebSocket, cbid: str) -> None:
    async def admit(ctx: AppContext) -> None:
        caller, _ = await admit_user(
            ctx,
            token=bearer_token(websocket.headers.get("authorization")),
            client_id=websocket.query_params.get("client_id"),
            realm=websocket.headers.get(REALM_HEADER),
            path_params=websocket.path_params,
            query=websocket.query_params.multi_items(),
        )
        await _user_callback(ctx, caller, cbid)

    await _websocket(websocket, cbid, admit)
