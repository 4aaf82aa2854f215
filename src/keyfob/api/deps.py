"""Request dependencies: the shared context, the authenticated partner, the rate budget."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPBasic, HTTPBasicCredentials

from keyfob.api.context import AppContext
from keyfob.auth.service import Partner, authenticate
from keyfob.errors import ErrorCode, KeyfobError

basic = HTTPBasic(auto_error=False, description="Partner login and password.")
client_id_query = APIKeyQuery(
    name="client_id", auto_error=False, description="The partner's application id."
)


NUL = "\x00"


def refuse_nul(request: Request) -> None:
    """Refuse U+0000 in path and query parameters.

    No identifier or parameter of this API holds one and PostgreSQL cannot compare one, so it
    is invalid input (400) rather than a failed query (500).
    """
    for name, value in request.path_params.items():
        if NUL in str(value):
            raise KeyfobError(ErrorCode.INVALID_PATH_ID, f"path {name}: must not contain U+0000")
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            raise KeyfobError(
                ErrorCode.INVALID_QUERY, f"query {name.replace(NUL, '')}: must not contain U+0000"
            )


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
    if credentials is None:
        raise KeyfobError(
            ErrorCode.UNAUTHENTICATED,
            "send HTTP Basic credentials (Authorization: Basic ...)",
            headers={"WWW-Authenticate": 'Basic realm="keyfob"'},
        )
    if not client_id:
        raise KeyfobError(ErrorCode.UNAUTHENTICATED, "the client_id query parameter is required")
    if NUL in credentials.username + credentials.password + client_id:
        raise KeyfobError(ErrorCode.BAD_CREDENTIALS)
    refuse_nul(request)
    found = ctx.credentials.get(credentials.username, credentials.password, client_id)
    if found is None:
        async with ctx.database.read() as conn:
            found = await authenticate(
                conn,
                login=credentials.username,
                password=credentials.password,
                client_id=client_id,
                cache=ctx.credentials,
            )
    limits = ctx.settings.rate_limit
    verdict = ctx.limiter.check(
        found.id,
        day_limit=found.rate_limit_day or limits.day,
        burst_limit=found.rate_limit_burst or limits.burst,
        now=ctx.clock().timestamp(),
    )
    request.state.rate_headers = verdict.headers()
    if not verdict.allowed:
        raise KeyfobError(
            ErrorCode.RATE_LIMITED,
            f"request budget exhausted; retry in {verdict.retry_after} s",
            headers=verdict.headers(),
        )
    return found


CurrentPartner = Annotated[Partner, Depends(partner)]


def base_url(request: Request, ctx: AppContext, version: str = "v3") -> str:
    root = ctx.settings.public_url or str(request.base_url)
    return f"{root.rstrip('/')}/connectedcar/{version}"
