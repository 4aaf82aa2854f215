"""Pydantic shapes of the user face's read answers, used only to document ``/openapi.json``.

They mirror the b2c schemas (``User``, ``Status``) the handlers' plain dicts follow; the
vehicle and collection shapes are the fleet face's (``api.docs_models``). ``user_errors``
documents what the v4 gate (``api.user_access``) adds to a route's own errors: the realm's 400
and a 401 that is either an ``xError`` (no ``client_id``) or the gateway's body (a refused
Bearer token, decision 28).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyfob.api.docs_models import Link, XError, errors
from keyfob.errors import ErrorCode


class User(BaseModel):
    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    email: str
    firstName: str | None = None
    lastName: str | None = None
    createdAt: str


class UserVehicleStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    createdAt: str


class GatewayUnauthorized(BaseModel):
    """The API gateway's 401 body for a refused Bearer token (decision 28)."""

    httpCode: str = Field(description='Always "401".')
    httpMessage: str = Field(description='Always "Unauthorized".')
    moreInformation: str = Field(description='Always "Token is invalid".')


def user_errors(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """``docs_models.errors`` for a route behind ``CurrentUser``."""
    documented = errors(ErrorCode.UNKNOWN_REALM, *codes)
    schema = {
        "title": "XError or GatewayUnauthorized",
        "anyOf": [XError.model_json_schema(), GatewayUnauthorized.model_json_schema()],
    }
    documented[401] = {
        "description": f"{ErrorCode.UNAUTHENTICATED.code}: the client_id query parameter is "
        "missing (xError); a missing, expired, revoked, other-realm or other-client Bearer "
        "token: the gateway's body, exactly (decision 28).",
        "content": {"application/json": {"schema": schema}},
    }
    return documented
