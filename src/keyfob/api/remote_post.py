"""The steps of POST remote, shared by the documented routes and the lean ones.

``routes_remotes.post_remote`` and ``routes_user_remotes.post_remote`` (FastAPI, documented in
``/openapi.json``) and ``lean`` / ``lean_user`` (the same endpoints without the framework's
routing and dependency solving) call these, so a request gets the same answer whichever
serves it.
"""

from __future__ import annotations

from typing import Any

from keyfob.api import views
from keyfob.api import views_user_callbacks as user_views
from keyfob.auth.principal import UserPrincipal
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.accept import AcceptRequest, Posted, UserAcceptRequest
from keyfob.remotes.staging import ANY_TIME, TimeWindow
from keyfob.runtime.context import AppContext

REPLAYED = {"Idempotent-Replayed": "true"}


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise KeyfobError(
            ErrorCode.BAD_REQUEST, "Idempotency-Key must be 1 to 255 printable characters"
        )
    return value


async def accept(
    ctx: AppContext,
    *,
    partner_id: str,
    ids: tuple[str, str, str],
    key: str | None,
    data: object,
    window: TimeWindow = ANY_TIME,
    budget: bool = False,
) -> Posted:
    """Stored and committed (group commit) when this returns; wakes the dispatcher."""
    fleet_id, vehicle_id, callback_id = ids
    posted = await ctx.acceptor.accept(
        AcceptRequest(
            partner_id=partner_id,
            fleet_id=fleet_id,
            vehicle_id=vehicle_id,
            callback_id=callback_id,
            data=data,
            idempotency_key=key,
            window=window,
            budget=budget,
        )
    )
    ctx.wake_accepted()
    return posted


def answer(
    base: str, ids: tuple[str, str, str], posted: Posted
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The 202 ``RemotePostResponse`` body and its extra headers."""
    fleet_id, vehicle_id, callback_id = ids
    body = views.remote_post_response(
        base,
        fleet_id=fleet_id,
        vehicle_id=vehicle_id,
        callback_id=callback_id,
        remote_id=posted.remote_id,
        type_=posted.type,
    )
    return body, _headers(posted)


def _headers(posted: Posted) -> dict[str, str] | None:
    """``Idempotent-Replayed`` on a replay; the vehicle's wake-up budgets when read."""
    if posted.budget is None:
        return REPLAYED if posted.replayed else None
    headers = posted.budget.headers()
    if posted.replayed:
        headers.update(REPLAYED)
    return headers


async def accept_user(
    ctx: AppContext,
    *,
    caller: UserPrincipal,
    vehicle_id: str,
    callback_id: str,
    key: str | None,
    data: object,
    window: TimeWindow = ANY_TIME,
    budget: bool = False,
) -> Posted:
    """The user face's ``accept``: stored and committed when this returns; wakes the dispatcher."""
    posted = await ctx.acceptor.accept(
        UserAcceptRequest(
            client_id=caller.client_id,
            user_id=caller.user_id,
            scopes=caller.scopes,
            vehicle_id=vehicle_id,
            callback_id=callback_id,
            data=data,
            idempotency_key=key,
            window=window,
            budget=budget,
        )
    )
    ctx.wake_accepted()
    return posted


def user_answer(
    base: str, vehicle_id: str, callback_id: str, posted: Posted
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The user face's 202 ``RemotePostResponse`` body and its extra headers."""
    body = user_views.remote_post_response(
        base,
        vehicle_id=vehicle_id,
        callback_id=callback_id,
        remote_id=posted.remote_id,
        type_=posted.type,
    )
    return body, _headers(posted)
