"""``create_app(settings)``: the one place the HTTP application is assembled.

The lifespan applies migrations, provisions the demo tenant on an empty database, then starts
whatever background roles the caller passes in (dispatcher, delivery worker, simulator) and
stops them in reverse order on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

import keyfob
from keyfob import migrate, provision
from keyfob.api import (
    errors,
    routes_admin,
    routes_callbacks,
    routes_deliveries,
    routes_fleets,
    routes_ops,
    routes_remotes,
)
from keyfob.api.context import AppContext
from keyfob.api.lean import LeanRemotePost
from keyfob.api.middleware import RateLimitHeaders
from keyfob.callbacks.targets import TargetPolicy
from keyfob.config import Settings
from keyfob.db import Database
from keyfob.kit.clock import Clock, utcnow
from keyfob.remotes.accept import Acceptor

log = logging.getLogger("keyfob")

Role = Callable[[AppContext], AbstractAsyncContextManager[object]]


def target_policy(settings: Settings) -> TargetPolicy:
    return TargetPolicy(
        allow_hosts=frozenset(h.lower() for h in settings.delivery.allowed_hosts),
        allow_private=settings.delivery.allow_private_webhooks,
    )


async def prepare_database(ctx: AppContext, *, announce: Callable[[str], None]) -> None:
    await migrate.upgrade(ctx.database)
    if ctx.settings.vehicles <= 0:
        return
    async with ctx.database.transaction() as conn:
        if not await provision.database_is_empty(conn):
            return
        tenant = await provision.provision_demo(
            conn, vehicles=ctx.settings.vehicles, now=ctx.clock(), seed=ctx.settings.sim_seed
        )
    root = ctx.settings.public_url or f"http://{ctx.settings.host}:{ctx.settings.port}"
    document = tenant.as_json(f"{root.rstrip('/')}/connectedcar/v3")
    provision.write_credentials(ctx.settings.credentials_file, document)
    announce(provision_message(document, ctx.settings))


def provision_message(document: dict[str, object], settings: Settings) -> str:
    import json

    return (
        "Provisioned a demo partner, fleet and vehicles "
        f"(also written to {settings.credentials_file}):\n{json.dumps(document, indent=2)}"
    )


class KeyfobApp(FastAPI):
    """FastAPI, except that POST remote takes the lean path when one is set (``api.lean``)."""

    lean: LeanRemotePost | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lean is not None:
            ids = self.lean.match(scope)
            if ids is not None:
                await self.lean(scope, receive, send, ids)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock = utcnow,
    roles: Sequence[Role] = (),
    announce: Callable[[str], None] = print,
) -> FastAPI:
    db = database or Database(settings.db, pool_size=settings.db_pool_size)
    ctx = AppContext(
        settings=settings,
        database=db,
        clock=clock,
        target_policy=target_policy(settings),
        acceptor=Acceptor(
            db, clock=clock, idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_s)
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_database(ctx, announce=announce)
        ctx.acceptor.start()
        try:
            async with AsyncExitStack() as stack:
                for role in roles:
                    await stack.enter_async_context(role(ctx))
                yield
        finally:
            await ctx.acceptor.stop()
        if database is None:
            await ctx.database.dispose()

    app = KeyfobApp(
        title="keyfob",
        version=keyfob.__version__,
        summary="Remote commands for connected vehicles, with webhook notifications.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    if settings.lean_accept:
        app.lean = LeanRemotePost(ctx)
    errors.install(app)
    app.add_middleware(RateLimitHeaders)
    for router in (
        routes_callbacks.router,
        routes_remotes.router,
        routes_fleets.router,
        routes_deliveries.router,
        routes_admin.router,
        routes_ops.router,
    ):
        app.include_router(router)
    return app
