"""Request dependencies: the shared context, the authenticated partner, the rate budget."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPBasic, HTTPBasicCredentials

from keyfob.api import access
from keyfob.auth.service import Partner
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.runtime.context import AppContext

basic = HTTPBasic(auto_error=False, description="Partner login and password.")
client_id_query = APIKeyQuery(
    name="client_id", auto_error=False, description="The partner's application id."
)


def refuse_nul(request: Request) -> None:
    """U+0000 in the request's path or query parameters is a 400 (``api.access.refuse_nul``)."""
    access.refuse_nul(request.path_params, request.query_params.multi_items())


async def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(context)]


async def partner(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    client_id: Annotated[str | None, Depends(client_id_query)],
) -> Partner:
    """The authenticated partner; its rate headers are left for ``RateLimitHeaders``."""
    pair = None if credentials is None else (credentials.username, credentials.password)
    try:
        found, headers = await access.admit(
            ctx,
            pair,
            client_id,
            path_params=request.path_params,
            query=request.query_params.multi_items(),
            address=request.client.host if request.client else None,
        )
    except KeyfobError as refusal:
        if refusal.error is ErrorCode.RATE_LIMITED:
            request.state.rate_headers = refusal.headers
        raise
    request.state.rate_headers = headers
    return found


CurrentPartner = Annotated[Partner, Depends(partner)]


def base_url(request: Request, ctx: AppContext, version: str = "v3") -> str:
    root = ctx.settings.public_url or str(request.base_url)
    return f"{root.rstrip('/')}/connectedcar/{version}"
