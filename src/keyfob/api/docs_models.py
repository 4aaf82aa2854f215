"""Pydantic shapes of the answers, used only to document them in ``/openapi.json``.

Handlers build plain dicts (no response validation on the hot path); these models mirror the
contract's schemas so the published OpenAPI describes every answer, errors included.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keyfob.errors import ErrorCode
from keyfob.vocabulary import CallbackStatus, RemoteType


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Link(_Open):
    href: str
    templated: bool | None = None


class XError(BaseModel):
    code: int = Field(description="HTTP status x 100 + a two-digit reason (docs/errors.md).")
    uuid: str
    message: str
    timestamp: str


class CallbackRef(_Open):
    links: dict[str, Link] = Field(alias="_links")
    callbackId: str
    status: CallbackStatus
    secret: str | None = Field(None, description="keyfob extension: signing secret, shown once.")


class RemoteCallback(_Open):
    links: dict[str, Link] = Field(alias="_links")
    id: str
    subscribe: dict[str, Any]
    status: CallbackStatus


class Collection(_Open):
    links: dict[str, Link] = Field(alias="_links")
    total: int
    totalPage: int
    currentPage: int
    embedded: dict[str, list[dict[str, Any]]] = Field(alias="_embedded")


class RemotePostResponse(_Open):
    links: dict[str, Link] = Field(alias="_links")
    remoteActionId: str
    type: RemoteType


class RemoteAction(_Open):
    links: dict[str, Link] = Field(alias="_links")
    remoteActionId: str
    type: RemoteType
    remote: dict[str, Any]
    status: str
    failureCause: str | None = None
    feedbackDetail: str | None = None
    events: list[dict[str, Any]] | None = Field(
        None, description="keyfob extension: the ordered event history."
    )


class Fleet(_Open):
    links: dict[str, Link] = Field(alias="_links")
    id: str
    name: str | None = None


class Vehicle(_Open):
    links: dict[str, Link] = Field(alias="_links")
    id: str
    vin: str
    motorization: str


class VehicleStatus(_Open):
    links: dict[str, Link] = Field(alias="_links")
    vin: str
    createdAt: str


class StolenContext(_Open):
    links: dict[str, Link] = Field(alias="_links")
    id: str
    state: bool
    startedAt: str


class VehicleCapabilities(_Open):
    vin: str
    motorization: str
    createdAt: str


def hal(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description, "content": {"application/hal+json": {}}}


def errors(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """Document each status the route can answer with, always in the xError shape."""
    by_status: dict[int, list[ErrorCode]] = {}
    every_route = (
        ErrorCode.INVALID_QUERY,  # a query parameter holding U+0000 (api.deps.refuse_nul)
        ErrorCode.INVALID_PATH_ID,  # a path segment holding U+0000
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.BAD_CREDENTIALS,
        ErrorCode.RATE_LIMITED,
        ErrorCode.SIGN_IN_THROTTLED,  # failed logins (api.access.verify_partner)
        ErrorCode.INTERNAL,
    )
    for code in dict.fromkeys((*every_route, *codes)):
        by_status.setdefault(code.status, []).append(code)
    documented: dict[int | str, dict[str, Any]] = {
        status: _xerror("; ".join(f"{c.code}: {c.meaning}" for c in found))
        for status, found in sorted(by_status.items())
    }
    # As in the official contract: any other answer is an xError too. It also keeps FastAPI
    # from documenting its own 422 body, which keyfob never sends (invalid input is a 400).
    documented["default"] = _xerror("Any other error (docs/errors.md).")
    return documented


def _xerror(description: str) -> dict[str, Any]:
    """One documented error answer: an xError in plain ``application/json``.

    The schema is given inline: with a ``model`` FastAPI would file it under the route's own
    media type, ``application/hal+json``, which error answers never use.
    """
    schema = XError.model_json_schema()
    return {"description": description, "content": {"application/json": {"schema": schema}}}
