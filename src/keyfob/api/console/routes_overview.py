"""The console's overview of a fleet: remotes per minute, how they ended, failing deliveries
(``console.figures``), behind the same tenant check as every page."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyfob.api.console import figures, pages
from keyfob.api.console.guard import CurrentVisitor
from keyfob.api.deps import Ctx
from keyfob.vehicles.service import get_fleet

router = APIRouter(route_class=pages.ConsoleRoute)


@router.get("/fleets/{fid}/overview")
async def overview(request: Request, ctx: Ctx, visitor: CurrentVisitor, fid: str) -> Response:
    async with ctx.database.read() as conn:
        fleet = await get_fleet(conn, partner_id=visitor.partner.id, fleet_id=fid)
        found = await figures.overview(conn, fleet_id=fid, now=ctx.clock())
    return pages.render(request, "overview.html", visitor=visitor, fleet=fleet, figures=found)
