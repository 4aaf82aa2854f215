"""Fleet face: campaigns, one remote body to many vehicles at a pace (docs/extensions.md).

Thin, as every route: the rules and checks are ``remotes.control.campaigns``, the pacing
``remotes.control.campaign_runner``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.api.deps import Ctx, CurrentPartner, base_url
from keyfob.api.docs_models import Link, errors, hal
from keyfob.api.http import HalResponse, json_body
from keyfob.api.views import fleet_href
from keyfob.callbacks.service import get_callback
from keyfob.errors import ErrorCode as E
from keyfob.kit.clock import isoformat
from keyfob.kit.hal import link
from keyfob.remotes.control import campaigns as service
from keyfob.vehicles.service import get_fleet

router = APIRouter(prefix="/connectedcar/v3", tags=["Extensions"])
PATH = "/fleets/{fid}/remote/campaigns"


class CampaignProgress(BaseModel):
    """A campaign, its rules and how far it went."""

    model_config = ConfigDict(extra="allow")
    links: dict[str, Link] = Field(alias="_links")
    campaignId: str
    status: str
    targets: dict[str, int]
    remotes: dict[str, Any]


def view(base: str, found: service.Progress) -> dict[str, Any]:
    campaign = found.campaign
    href = f"{fleet_href(base, campaign.fleet_id)}/remote/campaigns/{campaign.id}"
    return {
        "_links": {
            "self": link(href),
            "cancel": link(f"{href}/cancel"),
            "callback": link(
                f"{fleet_href(base, campaign.fleet_id)}/remote/callbacks/{campaign.callback_id}"
            ),
        },
        "campaignId": campaign.id,
        "type": campaign.type,
        "status": campaign.status,
        "reason": campaign.reason,
        "rate": {"perMinute": campaign.per_minute, "rampMinutes": campaign.ramp_s // 60},
        "abortThreshold": None
        if campaign.abort_percent is None
        else {
            "failedPercent": campaign.abort_percent,
            "minFinished": campaign.abort_min_finished,
        },
        "startsAt": isoformat(campaign.starts_at),
        "createdAt": isoformat(campaign.created_at),
        "finishedAt": None if campaign.finished_at is None else isoformat(campaign.finished_at),
        "targets": {"total": sum(found.targets.values()), **found.targets},
        "remotes": {"byStatus": found.by_status, "byFailureCause": found.by_cause},
    }


async def _campaign(conn: AsyncConnection, partner_id: str, fid: str, cid: str) -> service.Campaign:
    """The fleet's campaign, if the fleet is the partner's: a 404 otherwise."""
    await get_fleet(conn, partner_id=partner_id, fleet_id=fid)
    return await service.get_campaign(conn, fleet_id=fid, campaign_id=cid)


@router.post(
    PATH,
    operation_id="createFleetCampaign",
    response_class=HalResponse,
    status_code=202,
    responses={
        202: hal(CampaignProgress, "The campaign, stored; it starts at startsAt"),
        **errors(
            E.MALFORMED_JSON,
            E.INVALID_BODY,
            E.LEGACY_FIELD,
            E.BAD_REQUEST,
            E.FLEET_NOT_FOUND,
            E.CALLBACK_NOT_FOUND,
            E.INVALID_PATH_ID,
            E.REMOTE_TYPE_NOT_IN_CALLBACK,
            E.NOT_SUPPORTED_BY_VEHICLE,
            E.CALLBACK_NOT_RUNNING,
            E.UNSUPPORTED_MEDIA_TYPE,
        ),
    },
)
async def create_campaign(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str
) -> Response:
    """Send one remote body to many of the fleet's vehicles, at a rate, with an abort rule."""
    parsed = service.parse_campaign_body(await json_body(request))
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=partner.id, fleet_id=fid)
        callback = await get_callback(conn, fleet_id=fid, callback_id=parsed.callbackId)
        campaign = await service.create_campaign(
            conn,
            partner_id=partner.id,
            fleet_id=fid,
            callback=callback,
            parsed=parsed,
            now=ctx.clock(),
        )
        found = await service.progress(conn, campaign)
    return HalResponse(view(base_url(request, ctx), found), status_code=202)


@router.get(
    PATH + "/{cid}",
    operation_id="getFleetCampaign",
    response_class=HalResponse,
    responses={
        200: hal(CampaignProgress, "The campaign and its progress"),
        **errors(E.FLEET_NOT_FOUND, E.CAMPAIGN_NOT_FOUND),
    },
)
async def get_campaign(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cid: str
) -> Response:
    async with ctx.database.read() as conn:
        found = await service.progress(conn, await _campaign(conn, partner.id, fid, cid))
    return HalResponse(view(base_url(request, ctx), found))


@router.post(
    PATH + "/{cid}/cancel",
    operation_id="cancelFleetCampaign",
    response_class=HalResponse,
    responses={
        200: hal(CampaignProgress, "The campaign, Cancelled"),
        **errors(E.FLEET_NOT_FOUND, E.CAMPAIGN_NOT_FOUND, E.CAMPAIGN_FINISHED),
    },
)
async def cancel_campaign(
    request: Request, ctx: Ctx, partner: CurrentPartner, fid: str, cid: str
) -> Response:
    """Stop starting remotes; those already started run on."""
    async with ctx.database.transaction() as conn:
        campaign = await _campaign(conn, partner.id, fid, cid)
        await service.cancel_campaign(conn, campaign, now=ctx.clock())
        found = await service.progress(
            conn, await service.get_campaign(conn, fleet_id=fid, campaign_id=cid)
        )
    return HalResponse(view(base_url(request, ctx), found))
