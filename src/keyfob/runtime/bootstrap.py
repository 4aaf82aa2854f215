"""Getting a database ready to serve: migrations, a first signing key, then the demo tenant
(partner, fleet, vehicles, an end user and their app) on an empty database."""

from __future__ import annotations

import json
from collections.abc import Callable

from keyfob.config import Settings
from keyfob.runtime import demo
from keyfob.runtime.context import AppContext
from keyfob.store import migrate


async def prepare_database(ctx: AppContext, *, announce: Callable[[str], None]) -> None:
    await migrate.upgrade(ctx.database)
    async with ctx.database.transaction() as conn:
        # The first signing key, so the JWKS is never empty (no-op once one exists).
        await ctx.user_auth.keys.signing_key(conn, now=ctx.clock())
    if ctx.settings.vehicles <= 0:
        return
    async with ctx.database.transaction() as conn:
        if not await demo.database_is_empty(conn):
            return
        tenant = await demo.provision_demo(
            conn, vehicles=ctx.settings.vehicles, now=ctx.clock(), seed=ctx.settings.sim_seed
        )
    document = tenant.as_json(ctx.settings.root_url)
    demo.write_credentials(ctx.settings.credentials_file, document)
    announce(provision_message(document, ctx.settings))


def provision_message(document: dict[str, object], settings: Settings) -> str:
    return (
        "Provisioned a demo partner, fleet and vehicles, and an end user with an OAuth client "
        f"(also written to {settings.credentials_file}):\n{json.dumps(document, indent=2)}"
    )
