"""The web console under ``/console``: a partner signs in with its fleet-face credentials and
sees and drives its fleets in a browser, served by ``keyfob serve`` with nothing to build; an
end user signs in through keyfob's own OAuth login (``/console/user/...``) and sees and drives
their own vehicles, scoped as the user face is.

Server-rendered pages (Jinja2, autoescaped) that work without JavaScript; one small script of
the package's own adds the live remote timeline (Server-Sent Events). Every page reads through
the same services as the API, with the signed-in partner in every look-up. The console is not
on the lean fast path of POST remote (``api.lean``): a pyproject contract keeps it off.
"""

from __future__ import annotations

from fastapi import APIRouter

from keyfob.api.console import (
    routes_callbacks,
    routes_campaigns,
    routes_deliveries,
    routes_login,
    routes_overview,
    routes_timeline,
    routes_user_callbacks,
    routes_user_login,
    routes_user_vehicles,
    routes_vehicles,
)

router = APIRouter(prefix="/console", include_in_schema=False)
for _part in (
    routes_login.router,
    routes_vehicles.router,
    routes_timeline.router,
    routes_callbacks.router,
    routes_campaigns.router,
    routes_deliveries.router,
    routes_overview.router,
    routes_user_login.router,
    routes_user_vehicles.router,
    routes_user_callbacks.router,
):
    router.include_router(_part)
