"""The console's fleet campaigns: their progress, and cancelling one.

Read through the same service as ``GET .../remote/campaigns/{cid}`` and cancelled through the
same ``cancel_campaign``, behind the same tenant check (``remotes.control.campaigns``);
campaigns are created through the API (docs/extensions.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyfob.api.console import pages, readable
from keyfob.api.console.guard import CurrentVisitor, check_csrf
from keyfob.api.deps import Ctx
from keyfob.remotes.control import campaigns as service
from keyfob.vehicles.service import get_fleet

router = APIRouter(route_class=pages.ConsoleRoute)
PATH = "/fleets/{fid}/campaigns"


@router.get(PATH)
async def campaign_list(request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str) -> Response:
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        found = await service.list_campaigns(conn, fleet_id=fid)
    return pages.render(
        request,
        "campaigns.html",
        visitor=visitor,
        fleet=fleet,
        campaigns=found,
        active=service.ACTIVE,
        when=readable.when,
    )


@router.post(PATH + "/{cid}/cancel")
async def cancel(
    request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str, cid: str
) -> Response:
    sent = await pages.read_form(request)
    check_csrf(visitor.session, sent)
    async with ctx.database.transaction() as conn:
        await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        campaign = await service.get_campaign(conn, fleet_id=fid, campaign_id=cid)
        await service.cancel_campaign(conn, campaign, now=ctx.clock())
    return pages.see_other(request, f"/fleets/{fid}/campaigns")
