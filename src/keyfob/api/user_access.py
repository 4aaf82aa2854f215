"""Who is calling the user face (``/connectedcar/v4``), and may they: the v4 gate.

Every v4 route takes ``CurrentUser``. A request must name its OAuth client (``client_id``
query parameter), its brand realm (``x-introspect-realm``, documented or short spelling,
decision 27) and carry ``Authorization: Bearer <access token>`` issued to that client for
that realm. The checks, in order, and what a failure answers:

    client_id missing ─────────────────────────────► 401 xError 40100
    U+0000 in the path or query ───────────────────► 400 xError 40006 / 40007
    x-introspect-realm missing or unknown ─────────► 400 xError 40011
    Bearer token missing, malformed, expired,
      revoked, another realm, another client ──────► 401 gateway body (decision 28)
    the OAuth client's request budget spent ───────► 429 xError 42900

A partner's HTTP Basic credentials are no Bearer token: they open nothing here. Budgets are
counted per OAuth client, the subscription of §9.1 (with the partners' default numbers), and
their ``X-RateLimit-*`` headers go on every answer once the token is accepted. ``admit_user``
does the work without FastAPI, for a lean handler as well as the dependency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from keyfob.api import access
from keyfob.api.deps import Ctx
from keyfob.auth.principal import UserPrincipal
from keyfob.auth.realms import find_realm
from keyfob.errors import ErrorCode, InvalidToken, KeyfobError
from keyfob.runtime.context import AppContext

REALM_HEADER = "x-introspect-realm"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="UserBearer",
    description="An access token of the authorization server (/am/oauth2), or of the "
    "configured external OpenID Connect issuer.",
)
oauth_client_query = APIKeyQuery(
    name="client_id",
    auto_error=False,
    scheme_name="OAuthClientId",
    description="The OAuth client the access token was issued to.",
)
realm_header = APIKeyHeader(
    name=REALM_HEADER,
    auto_error=False,
    scheme_name="IntrospectRealm",
    description="The brand realm, e.g. clientsB2CPeugeot or clientsB2CPeugot/OTPPeugeot.",
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, ``None`` for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def rate_key(client_id: str) -> str:
    """The budget's key in ``ctx.limiter`` (partners are keyed by their id, 32 hex digits)."""
    return f"oauth-client:{client_id}"


async def admit_user(
    ctx: AppContext,
    *,
    token: str | None,
    client_id: str | None,
    realm: str | None,
    path_params: Mapping[str, object],
    query: Iterable[tuple[str, str]],
) -> tuple[UserPrincipal, dict[str, str]]:
    """The caller and its ``X-RateLimit-*`` headers, or the refusal (see the module)."""
    if not client_id:
        raise KeyfobError(ErrorCode.UNAUTHENTICATED, "the client_id query parameter is required")
    access.refuse_nul(path_params, query)
    found = find_realm(realm)
    if found is None:
        raise KeyfobError(
            ErrorCode.UNKNOWN_REALM,
            f"send {REALM_HEADER} with a brand realm, e.g. clientsB2CPeugeot"
            if realm is None
            else f"{REALM_HEADER}: no realm is named {realm[:80]!r}",
        )
    if token is None:
        raise InvalidToken("no bearer token")
    principal = await ctx.user_auth.principal(token)
    if principal.realm != found.name:
        raise InvalidToken("issued for another realm")
    if principal.client_id != client_id:
        raise InvalidToken("issued to another client")
    limits = ctx.settings.rate_limit
    verdict = ctx.limiter.check(
        rate_key(client_id),
        day_limit=limits.day,
        burst_limit=limits.burst,
        now=ctx.clock().timestamp(),
    )
    headers = verdict.headers()
    if not verdict.allowed:
        raise KeyfobError(
            ErrorCode.RATE_LIMITED,
            f"request budget exhausted; retry in {verdict.retry_after} s",
            headers=headers,
        )
    return principal, headers


async def current_user(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    client_id: Annotated[str | None, Depends(oauth_client_query)],
    realm: Annotated[str | None, Depends(realm_header)],
) -> UserPrincipal:
    """The signed-in user; the rate headers are left for ``RateLimitHeaders``."""
    try:
        principal, headers = await admit_user(
            ctx,
            token=None if credentials is None else credentials.credentials,
            client_id=client_id,
            realm=realm,
            path_params=request.path_params,
            query=request.query_params.multi_items(),
        )
    except KeyfobError as refusal:
        if refusal.error is ErrorCode.RATE_LIMITED:
            request.state.rate_headers = refusal.headers
        raise
    request.state.rate_headers = headers
    return principal


CurrentUser = Annotated[UserPrincipal, Depends(current_user)]
