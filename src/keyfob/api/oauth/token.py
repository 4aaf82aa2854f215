"""``/am/oauth2/access_token`` and ``/am/oauth2/token/revoke``: the client-facing endpoints.

Parameters come from the form body or the query (``api.oauth.params``); the grants and the
revocation are ``auth.oauth``'s. A refused grant can still have written something that must
stay written (a reused code or refresh token revokes the grant it started, RFC 6749
§4.1.2), so a refusal is caught inside the unit of work, which then commits, and answered
after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.api.deps import Ctx
from keyfob.api.oauth.params import (
    NO_STORE,
    ClientCredentials,
    client_credentials,
    error_response,
    read_params,
)
from keyfob.auth import oauth
from keyfob.auth.clients import OAuthClient, authenticate_client
from keyfob.auth.oauth_errors import OAuthError, invalid_client
from keyfob.auth.realms import find_realm
from keyfob.auth.scopes import parse_scopes
from keyfob.kit.text import shown
from keyfob.runtime.context import AppContext

router = APIRouter(prefix="/am/oauth2", tags=["Authorization server"], include_in_schema=False)

GRANTS = ("authorization_code", "refresh_token")
Work = Callable[[AsyncConnection, OAuthClient, dict[str, str]], Awaitable[Any]]


async def _client(conn: AsyncConnection, credentials: ClientCredentials) -> OAuthClient:
    """The authenticated client; a Basic secret is also tried as RFC 6749 §2.3.1 encodes it."""
    for secret in (credentials.secret, *credentials.alternatives):
        try:
            return await authenticate_client(conn, client_id=credentials.client_id, secret=secret)
        except OAuthError as refusal:
            if refusal.error != "invalid_client":
                raise
    raise invalid_client()


async def _as_client(request: Request, ctx: AppContext, work: Work) -> Any | OAuthError:
    """``work``'s answer for the authenticated client, or the refusal; what ``work`` wrote
    is committed either way."""
    try:
        params = await read_params(request)
        credentials = client_credentials(request, params)
        async with ctx.database.transaction() as conn:
            try:
                client = await _client(conn, credentials)
                return await work(conn, client, params)
            except OAuthError as refusal:
                return refusal
    except OAuthError as refusal:
        return refusal


def _check_realm(given: str | None, client: OAuthClient) -> None:
    if given is None:
        return
    realm = find_realm(given)
    if realm is None:
        raise OAuthError("invalid_request", f"no realm is named {shown(given)}")
    if realm.name != client.realm:
        raise OAuthError("invalid_grant", "this client's tokens are issued in another realm")


@router.post("/access_token")
async def access_token(request: Request, ctx: Ctx) -> Response:
    async def grant(conn: AsyncConnection, client: OAuthClient, params: dict[str, str]) -> Any:
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "the grant_type parameter is missing")
        if grant_type not in GRANTS:
            raise OAuthError("unsupported_grant_type", f"use one of {', '.join(GRANTS)}")
        if grant_type == "authorization_code":
            _check_realm(params.get("realm"), client)
            return await oauth.exchange_code(
                conn,
                auth=ctx.user_auth,
                client=client,
                code=params.get("code"),
                redirect_uri=params.get("redirect_uri"),
                code_verifier=params.get("code_verifier"),
                now=ctx.clock(),
            )
        return await oauth.refresh(
            conn,
            auth=ctx.user_auth,
            client=client,
            refresh_token=params.get("refresh_token"),
            scope=parse_scopes(params.get("scope")),
            realm=params.get("realm"),
            now=ctx.clock(),
        )

    answer = await _as_client(request, ctx, grant)
    if isinstance(answer, OAuthError):
        return error_response(answer)
    return JSONResponse(answer.as_json(), headers=NO_STORE)


@router.post("/token/revoke")
async def revoke(request: Request, ctx: Ctx) -> Response:
    """RFC 7009: ``token`` (or ``refresh_token``, as some clients send it); 200 also for a
    token that is unknown or already revoked."""

    async def revoke_one(conn: AsyncConnection, client: OAuthClient, params: dict[str, str]) -> Any:
        token, alias = params.get("token"), params.get("refresh_token")
        if token is not None and alias is not None and token != alias:
            raise OAuthError("invalid_request", "send the token as token or refresh_token")
        await oauth.revoke(
            conn,
            auth=ctx.user_auth,
            client=client,
            token=token or alias,
            token_type_hint=params.get("token_type_hint") or ("refresh_token" if alias else None),
            realm=params.get("realm"),
            now=ctx.clock(),
        )
        return None

    answer = await _as_client(request, ctx, revoke_one)
    if isinstance(answer, OAuthError):
        return error_response(answer)
    return Response(status_code=200, headers=NO_STORE)
