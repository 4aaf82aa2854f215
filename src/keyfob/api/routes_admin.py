"""Admin face: provisioning partners, fleets and vehicles, behind a bearer admin token.

Disabled (403) unless ``KEYFOB_ADMIN_TOKEN`` is set; the ``keyfob admin`` commands work on the
database directly and need no token.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from keyfob.api.deps import Ctx, base_url, refuse_nul
from keyfob.api.docs_models import errors
from keyfob.api.http import json_body
from keyfob.api.views import fleet_view, vehicle_view
from keyfob.auth.passwords import new_password
from keyfob.auth.service import create_partner, get_partner_by_login
from keyfob.errors import ErrorCode as E
from keyfob.errors import KeyfobError
from keyfob.kit.hal import link
from keyfob.kit.text import shown
from keyfob.vehicles.capabilities import capabilities_for
from keyfob.vehicles.service import create_fleet, create_vehicle, fleet_exists
from keyfob.vehicles.vins import check_digit
from keyfob.vocabulary import Motorization


async def admin(
    request: Request, ctx: Ctx, authorization: Annotated[str | None, Header()] = None
) -> None:
    token = ctx.settings.admin_token
    if not token:
        raise KeyfobError(E.FORBIDDEN, "the admin API is disabled; set KEYFOB_ADMIN_TOKEN")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise KeyfobError(E.UNAUTHENTICATED, "send Authorization: Bearer <admin token>")
    refuse_nul(request)


router = APIRouter(prefix="/admin", tags=["Admin"], dependencies=[Depends(admin)])


class NewPartner(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    login: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=200)
    clientId: str | None = Field(None, min_length=1, max_length=128)


class NewFleet(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class NewVehicle(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    vin: str = Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")
    # JSON carries the enum as text; strict mode alone would demand a Motorization instance.
    motorization: Annotated[Motorization, Strict(False)]
    id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise KeyfobError(E.INVALID_BODY, problems) from None


ADMIN_ERRORS = errors(E.FORBIDDEN, E.INVALID_BODY, E.ALREADY_EXISTS, E.NOT_FOUND)


@router.post("/partners", status_code=201, responses=ADMIN_ERRORS)
async def add_partner(request: Request, ctx: Ctx) -> Response:
    spec = _parse(NewPartner, await json_body(request))
    password = spec.password or new_password()
    async with ctx.database.transaction() as conn:
        partner = await create_partner(
            conn,
            login=spec.login,
            password=password,
            name=spec.name,
            now=ctx.clock(),
            client_id=spec.clientId,
        )
    body: dict[str, Any] = {"id": partner.id, "login": partner.login, "clientId": partner.client_id}
    if spec.password is None:
        body["password"] = password
    return JSONResponse(body, status_code=201)


@router.post("/partners/{login}/fleets", status_code=201, responses=ADMIN_ERRORS)
async def add_fleet(request: Request, ctx: Ctx, login: str) -> Response:
    spec = _parse(NewFleet, await json_body(request))
    async with ctx.database.transaction() as conn:
        partner = await get_partner_by_login(conn, login)
        if partner is None:
            raise KeyfobError(E.NOT_FOUND, f"no partner with login {shown(login)}")
        fleet = await create_fleet(
            conn, partner_id=partner.id, name=spec.name, now=ctx.clock(), fleet_id=spec.id
        )
    return JSONResponse(fleet_view(base_url(request, ctx), fleet), status_code=201)


@router.post("/fleets/{fid}/vehicles", status_code=201, responses=ADMIN_ERRORS)
async def add_vehicle(request: Request, ctx: Ctx, fid: str) -> Response:
    spec = _parse(NewVehicle, await json_body(request))
    if check_digit(spec.vin[:8] + "0" + spec.vin[9:]) != spec.vin[8]:
        raise KeyfobError(E.INVALID_BODY, f"vin: {spec.vin} has a wrong check digit (position 9)")
    async with ctx.database.transaction() as conn:
        if not await fleet_exists(conn, fid):
            raise KeyfobError(E.NOT_FOUND, f"no fleet {shown(fid)}")
        vehicle = await create_vehicle(
            conn,
            fleet_id=fid,
            vin=spec.vin,
            motorization=spec.motorization.value,
            capabilities=capabilities_for(spec.motorization),
            now=ctx.clock(),
            vehicle_id=spec.id,
        )
    body = vehicle_view(base_url(request, ctx), vehicle)
    body["_links"]["capabilities"] = link(f"{base_url(request, ctx)}/vehicles/{vehicle.vin}")
    return JSONResponse(body, status_code=201)
