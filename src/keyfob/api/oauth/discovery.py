"""OpenID Connect discovery and the JWKS: what a client or a resource server reads to trust
keyfob's tokens without being told anything by hand.

The JWKS lists every key still trusted (``auth.keys``): the one signing now and the replaced
ones whose tokens may not have expired yet, so a rotation never breaks a verifier that
caches the document for a while.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keyfob.api.deps import Ctx
from keyfob.auth.keys import ALGORITHM
from keyfob.auth.scopes import ALL_SCOPES

router = APIRouter(tags=["Authorization server"], include_in_schema=False)

JWKS_PATH = "/am/oauth2/connect/jwk_uri"
CLIENT_AUTH = ["client_secret_basic", "client_secret_post", "none"]
CACHE = {"Cache-Control": "public, max-age=300"}


def _configuration(issuer: str, root: str) -> dict[str, Any]:
    base = f"{root}/am/oauth2"
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/access_token",
        "revocation_endpoint": f"{base}/token/revoke",
        "jwks_uri": f"{root}{JWKS_PATH}",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "scopes_supported": sorted(ALL_SCOPES),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "azp",
            "exp",
            "iat",
            "nonce",
            "email",
            "given_name",
            "family_name",
        ],
        "request_parameter_supported": False,
        "claims_parameter_supported": False,
    }


@router.get("/.well-known/openid-configuration")
@router.get("/am/oauth2/.well-known/openid-configuration")
async def openid_configuration(request: Request, ctx: Ctx) -> JSONResponse:
    root = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
    return JSONResponse(_configuration(ctx.user_auth.policy.issuer, root), headers=CACHE)


@router.get(JWKS_PATH)
async def jwks(ctx: Ctx) -> JSONResponse:
    async with ctx.database.read() as conn:
        document = await ctx.user_auth.keys.jwks(conn, now=ctx.clock())
    return JSONResponse(document, headers=CACHE, media_type="application/jwk-set+json")
