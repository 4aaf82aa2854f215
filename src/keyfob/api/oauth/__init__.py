"""The authorization server's HTTP side under ``/am/oauth2`` (decision 29), as the brand login
servers lay it out: the sign-in pages, the token and revocation endpoints, OIDC discovery and
the JWKS. None of it asks for partner credentials; the logic is in ``keyfob.auth``."""

from __future__ import annotations

from fastapi import APIRouter

from keyfob.api.oauth import authorize, discovery, token

router = APIRouter()
for _part in (authorize.router, token.router, discovery.router):
    router.include_router(_part)
