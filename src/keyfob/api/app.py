"""``create_app(settings)``: the one place the HTTP application is assembled.

POST remote is served by ``api.lean``, the router's first route (unless
``Settings.lean_accept`` is off), so like every other endpoint it runs inside every middleware.
The lifespan applies migrations, provisions the demo tenant on an empty database, then starts
whatever background roles the caller passes in (dispatcher, delivery worker, simulator) and
stops them in reverse order on shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

import keyfob
from keyfob.api import (
    console,
    docs_pages,
    errors,
    oauth,
    routes_admin,
    routes_callbacks,
    routes_campaigns,
    routes_control,
    routes_deliveries,
    routes_fleets,
    routes_ops,
    routes_remotes,
    routes_streams,
    routes_user,
    routes_user_callbacks,
    routes_user_control,
    routes_user_remotes,
)
from keyfob.api.lean import LeanRemotePost
from keyfob.api.lean_user import LeanUserRemotePost
from keyfob.api.limits import BodyLimit
from keyfob.api.middleware import RateLimitHeaders
from keyfob.config import Settings
from keyfob.kit.clock import Clock, utcnow
from keyfob.notifications.broadcast import Broadcaster, StreamOptions
from keyfob.runtime.bootstrap import prepare_database
from keyfob.runtime.context import build_context
from keyfob.runtime.roles import Role, hosting
from keyfob.store.engine import Database
from keyfob.store.nudge import EVENTS_STORED, EVENTS_TAKEN, REMOTES_DUE, listening
from keyfob.vehicles.budget import wake_limits

log = logging.getLogger("keyfob")


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock = utcnow,
    roles: Sequence[Role] = (),
    announce: Callable[[str], None] = print,
    streams: StreamOptions | None = None,
) -> FastAPI:
    ctx = build_context(settings, database=database, clock=clock)
    ctx.acceptor.wake_limits = wake_limits(settings.vehicle)  # budget headers (extensions)
    # The event streams' one reader of new notifications (api.routes_streams); woken with
    # delivery whenever remote events are stored here, and while anyone subscribes, by events
    # stored and remotes accepted in other processes.
    broadcaster = Broadcaster(
        ctx.database,
        clock=clock,
        options=streams,
        listen=lambda wake: listening(ctx.database, wake, EVENTS_STORED, EVENTS_TAKEN, REMOTES_DUE),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_database(ctx, announce=announce)
        ctx.acceptor.start()
        ctx.stream_wakers.append(broadcaster.wake)
        try:
            async with hosting(ctx, roles):
                yield
        finally:
            ctx.stream_wakers.remove(broadcaster.wake)
            await broadcaster.stop()
            await ctx.acceptor.stop()
        if database is None:
            await ctx.database.dispose()

    app = FastAPI(
        title="keyfob",
        version=keyfob.__version__,
        summary="Remote commands for connected vehicles, with webhook notifications.",
        lifespan=lifespan,
        # keyfob publishes its own Prometheus metrics; FastAPI's OpenTelemetry probe would
        # otherwise ask the global providers on every request whether anyone is listening.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # /docs and /redoc are keyfob's own (api.docs_pages): FastAPI's load from CDNs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.streams = broadcaster
    errors.install(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(BodyLimit)  # the outermost: a refused body costs no routing or auth
    if settings.lean_accept:
        # The first route, so POST remote skips FastAPI's routing but no middleware (api.lean).
        app.router.routes.insert(0, LeanRemotePost(ctx))
        app.router.routes.insert(1, LeanUserRemotePost(ctx))
    for router in (
        routes_callbacks.router,
        routes_remotes.router,
        routes_fleets.router,
        routes_user.router,
        routes_user_callbacks.router,
        routes_user_remotes.router,
        routes_streams.router,
        routes_control.router,
        routes_campaigns.router,
        routes_user_control.router,
        routes_deliveries.router,
        routes_admin.router,
        routes_ops.router,
        oauth.router,
        console.router,
        docs_pages.router,
    ):
        app.include_router(router)
    app.router.routes.append(docs_pages.assets())
    return app
